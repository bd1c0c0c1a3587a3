"""The CLI through Typer's runner: happy paths, --json contracts and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields

import pytest
import torch
from typer.testing import CliRunner

from core import ModelMetadata, get_model_registry
from inference.architectures import build_model
from inference.weights import state_dict_to_bytes
from nightscan_tui.cli import app

runner = CliRunner()
LABELS = "owl,hawk,sparrow,robin,background"


def nightscan(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def weights_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    path.write_bytes(state_dict_to_bytes(build_model("small_cnn", 5)))
    return path


@pytest.fixture
def two_versions(sqlite_ctx, weights_file, tmp_path):
    for version, acc in (("v2.0.0", 0.8), ("v2.1.0", 0.9)):
        meta = tmp_path / f"{version}.json"
        meta.write_text(json.dumps({"metrics": {"accuracy": acc, "inference_time": 0.02}}))
        result = nightscan(
            "registry", "register", f"wildlife_detector:{version}",
            "--weights", str(weights_file), "--labels", LABELS,
            "--metadata", str(meta), "--tag", "cli",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "sha256:" in result.output


def test_list_json_uses_the_seed_field_names(two_versions):
    result = nightscan("registry", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [r["version"] for r in rows] == ["v2.0.0", "v2.1.0"]
    assert set(rows[0]) == {f.name for f in fields(ModelMetadata)}
    assert len(rows[0]["checksum"]) == 64 and rows[0]["file_size_bytes"] > 0
    assert rows[0]["status"] == "validation"


def test_list_table_filters(two_versions):
    result = nightscan(
        "registry", "list", "--model-id", "wildlife_detector", "--status", "deployed"
    )
    assert result.exit_code == 0 and "no model versions match" in result.output
    result = nightscan("registry", "list", "--tag", "cli")
    assert "v2.0.0" in result.output and "v2.1.0" in result.output


def test_show_compare_promote(two_versions):
    result = nightscan("registry", "show", "wildlife_detector:v2.1.0", "--json")
    data = json.loads(result.output)
    assert data["metrics"]["accuracy"] == 0.9
    assert data["status_history"][0]["to_status"] == "validation"

    result = nightscan(
        "registry", "compare", "wildlife_detector:v2.0.0", "wildlife_detector:v2.1.0"
    )
    assert result.exit_code == 0 and "+12.50%" in result.output
    result = nightscan(
        "registry", "compare", "wildlife_detector:v2.0.0", "wildlife_detector:v2.1.0", "--json"
    )
    diff = json.loads(result.output)["metric_differences"]["accuracy"]
    assert diff["percentage_improvement"] == pytest.approx(12.5)

    result = nightscan("registry", "promote", "wildlife_detector:v2.1.0", "testing")
    assert result.exit_code == 0 and "TESTING" in result.output
    assert get_model_registry().get_model("wildlife_detector", "v2.1.0").status.value == "testing"

    # DEPLOYED is what a deploy does: by hand it is refused, with one line saying so.
    result = nightscan("registry", "promote", "wildlife_detector:v2.1.0", "deployed")
    assert result.exit_code == 4 and "nightscan deploy wildlife_detector v2.1.0" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["registry", "show", "wildlife_detector"], 2, "expected MODEL_ID:VERSION"),
        (["registry", "show", "nope:v1"], 3, "nope:v1 is not registered"),
        (["registry", "promote", "wildlife_detector:v2.0.0", "validation"], 4, "allowed from"),
        (["registry", "promote", "wildlife_detector:v2.0.0", "live"], 2, "unknown status"),
        (["registry", "compare", "wildlife_detector:v2.0.0", "x:y"], 3, "not registered"),
        (["registry", "list", "--status", "sideways"], 2, "unknown status"),
        (["registry", "delete", "nope:v1", "--yes"], 3, "not registered"),
        (["registry", "history", "wildlife_detector", "--at", "yesterday"], 2, "ISO time"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(two_versions, args, code, message):
    result = nightscan(*args)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_register_errors(sqlite_ctx, tmp_path, weights_file):
    result = nightscan("registry", "register", "m:v1", "--weights", str(tmp_path / "missing.pt"))
    assert result.exit_code == 3 and "not found" in result.output
    result = nightscan("registry", "register", "m:v1", "--weights", str(weights_file))
    assert result.exit_code == 2 and "labels" in result.output
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint")
    result = nightscan(
        "registry", "register", "m:v1", "--weights", str(garbage), "--labels", LABELS
    )
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_verify_detects_tampering(two_versions, sqlite_ctx):
    assert nightscan("registry", "verify", "wildlife_detector:v2.0.0").exit_code == 0
    meta = get_model_registry().get_model("wildlife_detector", "v2.0.0")
    path = sqlite_ctx.artifacts.path(meta.checksum)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    result = nightscan("registry", "verify", "wildlife_detector:v2.0.0")
    assert result.exit_code == 5
    assert "checksum mismatch for wildlife_detector:v2.0.0" in result.output
    result = nightscan("audit", "--action", "model.integrity", "--json")
    assert json.loads(result.output)[0]["entity_id"] == "wildlife_detector:v2.0.0"


def test_train_registers_a_model_with_measured_metrics(sqlite_ctx):
    result = nightscan(
        "train", "--model-id", "tiny", "--version", "v0.1.0",
        "--epochs", "1", "--samples-per-class", "16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = get_model_registry().get_model("tiny", "v0.1.0")
    assert set(meta.metrics) >= {"accuracy", "precision", "recall", "f1_score"}
    assert all(0.0 <= meta.metrics[k] <= 1.0 for k in ("accuracy", "f1_score"))
    assert meta.training_config["epochs"] == 1 and meta.dataset_version
    result = nightscan("train", "--model-id", "tiny", "--version", "v0.1.0", "--epochs", "1")
    assert result.exit_code == 4 and "already registered" in result.output
    result = nightscan("train", "--model-id", "t", "--version", "v1", "--architecture", "vgg")
    assert result.exit_code == 2 and "unknown architecture" in result.output


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_imports_neither_torch_nor_sqlalchemy():
    mods = _modules_after(
        "from nightscan_tui.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert "torch" not in mods and "sqlalchemy" not in mods


def test_registry_list_does_not_import_torch(tmp_path):
    mods = _modules_after(
        f"import os; os.environ['NIGHTSCAN_HOME'] = {str(tmp_path / 'h')!r}\n"
        "from nightscan_tui.cli import app\n"
        "try:\n    app(['registry', 'list'])\nexcept SystemExit:\n    pass"
    )
    assert "core.registry" in mods and "torch" not in mods


def test_core_never_imports_textual_and_inference_never_imports_core():
    assert "textual" not in _modules_after("import core, core.registry")
    mods = _modules_after(
        "import inference.architectures, inference.training, inference.weights, inference.audio"
    )
    assert not any(m == "core" or m.startswith(("core.", "data.")) for m in mods)
