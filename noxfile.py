"""nox sessions: tests (the CI gate), lint, bench."""

from __future__ import annotations

import nox
from nox.command import CommandFailed

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
    """Speed and memory targets: every benchmarks/bench_*.py runs and prints its figures (each measures 1 thread
    and the default count in one run); a script that misses fails the session at the end, not at once."""
    session.install(*TORCH)
    session.install("-e", ".")
    import glob

    missed = []
    for script in sorted(glob.glob("benchmarks/bench_*.py")):
        session.log(f"--- {script}")
        try:
            session.run("python", script, *session.posargs)
        except CommandFailed:
            missed.append(script)
    if missed:
        session.error(f"missed targets (or failed): {', '.join(missed)}")


@nox.session
def gpu(session: nox.Session) -> None:
    """The prepared GPU check (benchmarks/gpu_check.py): on a machine without CUDA, its CPU plumbing run."""
    session.install(*TORCH)
    session.install("-e", ".")
    session.run("python", "benchmarks/gpu_check.py", *(session.posargs or ["gpu-check-out"]))
