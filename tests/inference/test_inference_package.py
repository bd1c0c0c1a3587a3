"""Package boundaries: pure ML, torch-free import of the package itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "inference"
FORBIDDEN = {"core", "data", "screens", "nightscan_tui"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_inference_never_imports_app_layers(path: Path) -> None:
    assert not _imported_roots(path) & FORBIDDEN


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE_DIR.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(out.stdout.split())


def test_importing_the_package_does_not_import_torch() -> None:
    modules = _modules_after_import("import inference")
    assert "inference" in modules
    assert "torch" not in modules


def test_audio_and_synthetic_stay_torch_free() -> None:
    # Lets the TUI / API decode uploads and make demo data without paying torch's import cost.
    modules = _modules_after_import("import inference.audio, inference.synthetic")
    assert "inference.audio" in modules and "torch" not in modules
