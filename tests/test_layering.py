"""The import rules of DESIGN.md as a test: every import of every module (function-level ones too) is read
with ``ast``, so a rule broken anywhere fails here rather than in review."""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lmfn", "baselines", "harness", "reports")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(name: str) -> str:
    """``pkg.attr`` -> ``pkg`` unless ``pkg.attr`` is a module of ours."""
    return name if name in modules() or name.split(".")[0] not in PACKAGES else name.rsplit(".", 1)[0]


@cache
def imports(mod: str) -> frozenset[str]:
    path = modules()[mod]
    tree = ast.parse(path.read_text(), str(path))
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.update(_resolve(f"{base}.{a.name}") for a in node.names)
            found.add(base)
    return frozenset(n for n in found if n and n != "__future__")


def _first_party(names: frozenset[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] in PACKAGES}


def _third_party(names: frozenset[str]) -> set[str]:
    tops = {n.split(".")[0] for n in names}
    return {t for t in tops if t not in PACKAGES and t not in sys.stdlib_module_names}


def test_models_import_only_torch_and_lmfn_blocks() -> None:
    bad = []
    for mod in modules():
        if mod.split(".")[0] not in ("lmfn", "baselines"):
            continue
        names = imports(mod)
        if _third_party(names) - {"torch"}:
            bad.append(f"{mod}: {sorted(_third_party(names) - {'torch'})}")
        ours = _first_party(names)
        allowed = (lambda n: n.startswith("lmfn")) if mod.startswith("lmfn") else (lambda n: n == "lmfn.blocks")
        bad += [f"{mod} imports {n}" for n in ours if not (allowed(n) or n == mod.split(".")[0])]
    assert not bad, bad


def test_report_tables_render_and_figure_import_no_harness() -> None:
    pure = [m for m in modules() if m.startswith("reports.") and m != "reports.inputs"]
    assert {"reports.tables", "reports.render", "reports.figure"} <= set(pure)
    bad = [f"{m} imports {n}" for m in pure for n in _first_party(imports(m)) if not n.startswith("reports")]
    assert not bad, bad


def test_nothing_imports_the_cli_and_the_harness_core_never_imports_reports() -> None:
    bad = []
    for mod in modules():
        if mod.startswith("harness.cli"):
            continue
        bad += [f"{mod} imports {n}" for n in imports(mod) if n.startswith("harness.cli")]
        if mod.startswith("harness"):
            bad += [f"{mod} imports {n}" for n in imports(mod) if n.startswith("reports")]
    assert not bad, bad


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _layer(mod: str) -> str:
    return "harness.cli" if mod.startswith("harness.cli") else mod.split(".")[0]


def test_no_import_cycles_between_modules_or_layers() -> None:
    graph = {m: {n for n in _first_party(imports(m)) if n in modules() and n != m} for m in modules()}
    # a package's __init__ importing its own submodules is not a cycle of the design
    graph = {m: {n for n in ns if not (n.startswith(m + ".") or m.startswith(n + "."))} for m, ns in graph.items()}
    assert not _cycles(graph)
    layers: dict[str, set[str]] = {}
    for m, ns in graph.items():
        layers.setdefault(_layer(m), set()).update(_layer(n) for n in ns if _layer(n) != _layer(m))
    assert not _cycles(layers), layers


def _declared() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def test_every_third_party_import_is_a_declared_dependency() -> None:
    dists = packages_distributions()
    declared = _declared()
    missing = []
    for mod in modules():
        for top in _third_party(imports(mod)):
            names = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
            if not names & declared:
                missing.append(f"{mod}: {top} ({', '.join(sorted(names))})")
    assert not missing, f"imported but not in pyproject dependencies: {missing}"
