"""nox sessions: tests (the CI gate), lint, bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"

# torch and torchvision pinned together: timm (Adan) and spandrel need torchvision, and PyPI's torchvision does
# not import beside other torch builds
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


@nox.session
def tests(session: nox.Session) -> None:
    """Full test suite (checks against ../shared reference data skip, saying why, where it is absent)."""
    session.install(*TORCH)
    session.install("-e", ".[test]")
    args = session.posargs or ["-n", "2", "--durations=15"]
    session.run("pytest", *args, env={"OMP_NUM_THREADS": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run(
        "ruff", "check", "lmfn", "baselines", "harness", "reports", "tests", "benchmarks", "noxfile.py"
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Speed and memory targets: each script prints ratios measured in one run."""
    session.install(*TORCH)
    session.install("-e", ".")
    import glob

    for script in sorted(glob.glob("benchmarks/bench_*.py")):
        session.run("python", script, *session.posargs)


@nox.session
def gpu(session: nox.Session) -> None:
    """The prepared GPU check (benchmarks/gpu_check.py): on a machine without CUDA, its CPU plumbing run."""
    session.install(*TORCH)
    session.install("-e", ".")
    session.run("python", "benchmarks/gpu_check.py", *(session.posargs or ["gpu-check-out"]))
