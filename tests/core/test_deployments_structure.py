"""The deployments package keeps its shape (issue: one owner of what a process serves): no import
cycle inside it, counting lazy and TYPE_CHECKING imports; no helper reaching back into the
manager; nobody outside serving.py touching the serving lock; monitoring on a narrow interface."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "core" / "deployments"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (functions and TYPE_CHECKING blocks too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def package_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    graph = {}
    for path in PACKAGE.glob("*.py"):
        deps = set()
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[:2] == ["core", "deployments"]:
                deps.add(parts[2] if len(parts) > 2 and parts[2] in modules else "__init__")
        graph[path.stem] = deps - {path.stem}
    return graph


def test_no_import_cycle_inside_the_deployments_package() -> None:
    graph = package_graph()
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        assert node not in visiting, f"import cycle: {' -> '.join([*visiting, node])}"
        if node in done:
            return
        visiting.append(node)
        for dep in sorted(graph.get(node, ())):
            visit(dep)
        visiting.pop()
        done.add(node)

    for module in sorted(graph):
        visit(module)
    assert graph["__init__"] == set()  # its exports load lazily


def test_no_helper_reaches_back_into_the_manager() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.stem in ("manager", "__init__"):
            continue
        assert "core.deployments.manager" not in imported_modules(path), path.name
        assert "manager._" not in path.read_text(), path.name


def test_only_serving_takes_the_serving_lock() -> None:
    for folder in ("core", "nightscan_tui", "screens"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == PACKAGE / "serving.py":
                continue
            text = path.read_text()
            assert "pool.lock" not in text and "serving._" not in text, path


def test_monitoring_depends_on_a_narrow_interface() -> None:
    for path in (ROOT / "core" / "monitoring").glob("*.py"):
        assert not any(m.startswith("core.deployments") for m in imported_modules(path)), path
