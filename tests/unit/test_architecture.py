"""The layering holds, and its checks can fail: import contracts (import-linter, as ./dev check runs
them) on the real tree and on copies with one deliberate violation each, and an independent check
that no two modules import each other in a circle, deferred imports included."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("edge", "origin", "rules", "sitemaps")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]
    return subprocess.run([*command, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_contracts_hold():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout
    assert "7 kept, 0 broken" in run.stdout


# (contract name, file, what a careless change adds to it)
VIOLATIONS = [
    ("edge on top, rules and sitemaps in the middle", "sitemaps/pages.py", "import edge.urls"),
    ("origin is layered inside", "origin/imaging/encode.py", "import origin.plan"),
    ("the features see only origin's vocabulary", "rules/srcset.py", "import origin.masters.index"),
    ("only edge serves HTTP", "origin/plan.py", "import starlette.responses"),
    ("edge does not touch pixels", "edge/headers.py", "import pyvips"),
    ("origin.core is the standard library", "origin/core/keys.py", "import cachetools"),
    # A deferred import closes a circle as surely as one at the top.
    ("no cycles between the modules", "origin/core/paths.py", "def _late() -> None:\n    import origin.core.keys"),
]


@pytest.mark.parametrize(("contract", "path", "addition"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_a_deliberate_violation_breaks_its_contract(tmp_path: Path, contract: str, path: str, addition: str):
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.onnx", "demo", "__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    if contract.startswith("no cycles"):
        with (tmp_path / "origin/core/keys.py").open("a") as f:
            f.write("\nimport origin.core.paths\n")
    with (tmp_path / path).open("a") as f:
        f.write(f"\n{addition}\n")
    run = lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout
    report = run.stdout.split("Broken contracts", 1)[1]
    assert contract in report, run.stdout


def strongly_connected(graph: grimp.ImportGraph, modules: set[str]) -> list[set[str]]:
    """Tarjan's algorithm over direct imports: every group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module) & modules:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == module:
                    break
            groups.append(group)

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return groups


def test_no_import_cycle_between_any_two_modules():
    graph = grimp.build_graph(*PACKAGES)  # every import statement, those inside functions included
    modules = set(graph.modules)
    assert "origin.core.errors" in modules and "edge.http.app" in modules
    cycles = [group for group in strongly_connected(graph, modules) if len(group) > 1]
    assert cycles == []


def test_the_cycle_check_finds_a_cycle():
    graph = grimp.build_graph("origin")
    graph.add_import(importer="origin.core.errors", imported="origin.render")
    cycles = [group for group in strongly_connected(graph, set(graph.modules)) if len(group) > 1]
    assert cycles and {"origin.core.errors", "origin.render"} <= cycles[0]
