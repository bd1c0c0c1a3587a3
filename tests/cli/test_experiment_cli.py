"""``nightscan experiment``: a walk from create to export, and one-line errors."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nightscan_tui.cli import app

runner = CliRunner()
MODEL = "wildlife_detector"

CONFIG_TOML = f"""
experiment_id = "cli_walk"
name = "CLI walk"
success_metrics = ["accuracy", "inference_time"]
minimum_sample_size = 100

[model_variants]
control = "{MODEL}:v2.0.0"
treatment = "{MODEL}:v2.1.0"

[traffic_allocation]
control = 50.0
treatment = 50.0
"""


def nightscan(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def models(ctx):
    from core import ModelMetadata, get_model_registry
    from inference.architectures import build_model
    from inference.weights import state_dict_to_bytes

    weights = state_dict_to_bytes(build_model("small_cnn", 2))
    for v in ("v2.0.0", "v2.1.0"):
        get_model_registry().register_weights(
            weights,
            ModelMetadata(model_id=MODEL, version=v, training_config={"labels": ["owl", "hawk"]}),
        )


def test_walk_create_start_record_analyze_stop_export(models, tmp_path) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG_TOML)
    result = nightscan("experiment", "create", "--file", str(config))
    assert result.exit_code == 0, result.output
    assert "created experiment cli_walk (DRAFT)" in result.output
    assert nightscan("experiment", "start", "cli_walk").exit_code == 0

    result = nightscan("experiment", "assign", "cli_walk", "user-1")
    assert result.exit_code == 0 and "user-1 -> " in result.output
    result = nightscan(
        "experiment", "record", "cli_walk", "--request-id", "r-1", "--variant", "control",
        "accuracy=1", "inference_time=0.25",
    )  # fmt: skip
    assert result.exit_code == 0 and "2 new metric values" in result.output
    rng = np.random.default_rng(4)
    lines = [
        json.dumps(
            {
                "request_id": f"{v}{i}",
                "variant": v,
                "metrics": {"accuracy": float(rng.random() < p), "inference_time": 0.2},
            }
        )
        for v, p in (("control", 0.6), ("treatment", 0.9))
        for i in range(150)
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("\n".join(lines) + "\n")
    result = nightscan("experiment", "record", "cli_walk", "--file", str(results))
    assert result.exit_code == 0 and "recorded 300 results (600 new" in result.output

    result = nightscan("experiment", "analyze", "cli_walk")
    assert result.exit_code == 0, result.output
    assert "SRM" in result.output and "recommendation" in result.output
    assert "STOP WINNER" in result.output and "treatment_vs_control" in result.output
    result = nightscan("experiment", "analyze", "cli_walk", "--json")
    analysis = json.loads(result.output)
    comparison = analysis["comparisons"]["treatment_vs_control"]["metric_comparisons"]
    assert comparison["accuracy"]["winner"] == "treatment"

    result = nightscan("experiment", "allocate", "cli_walk", "control=30", "treatment=70")
    assert result.exit_code == 0 and "allocation v2" in result.output
    result = nightscan("experiment", "status", "cli_walk")
    assert result.exit_code == 0 and "RUNNING" in result.output and "manual" in result.output
    status = json.loads(nightscan("experiment", "status", "cli_walk", "--json").output)
    assert status["units"] == {"control": 151, "treatment": 150}
    assert [h["version"] for h in status["allocation_history"]] == [1, 2]

    listing = json.loads(nightscan("experiment", "list", "--json").output)
    assert [e["experiment_id"] for e in listing] == ["cli_walk"]

    result = nightscan("experiment", "stop", "cli_walk", "--reason", "Sufficient data collected")
    assert result.exit_code == 0 and "STOPPED" in result.output

    result = nightscan("experiment", "export", "cli_walk", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 602 and rows[0]["request_id"] == "r-1"
    out = tmp_path / "export.jsonl"
    result = nightscan("experiment", "export", "cli_walk", "--format", "jsonl", "-o", str(out))
    assert result.exit_code == 0 and "exported 602 results" in result.output
    assert len(out.read_text().splitlines()) == 602


def test_check_runs_the_auto_stop_pass(models, tmp_path) -> None:
    config = tmp_path / "exp.json"
    data = {
        "experiment_id": "checked",
        "model_variants": {"control": f"{MODEL}:v2.0.0", "treatment": f"{MODEL}:v2.1.0"},
        "traffic_allocation": {"control": 50, "treatment": 50},
        "success_metrics": ["accuracy"],
        "minimum_sample_size": 50,
    }
    config.write_text(json.dumps(data))
    assert nightscan("experiment", "create", "--file", str(config), "--start").exit_code == 0
    assert "nothing to do" in nightscan("experiment", "check").output
    from core import get_ab_test_manager

    get_ab_test_manager().record_results(
        [("checked", f"c{i}", "control", {"accuracy": float(i % 4 == 0)}) for i in range(200)]
        + [("checked", f"t{i}", "treatment", {"accuracy": float(i % 4 != 0)}) for i in range(200)]
    )
    result = nightscan("experiment", "check")
    assert result.exit_code == 0 and "checked: auto stopped" in result.output
    assert json.loads(nightscan("experiment", "status", "checked", "--json").output)["status"] == (
        "completed"
    )


BAD_INPUT = [
    (["experiment", "status", "nope"], 3, "experiment nope does not exist"),
    (["experiment", "start", "nope"], 3, "does not exist"),
    (["experiment", "create", "--file", "/no/such/file.toml"], 2, "cannot read"),
    (["experiment", "allocate", "cli_walk", "control=abc"], 2, "must be a number"),
    (["experiment", "allocate", "cli_walk", "control"], 2, "NAME=VALUE"),
    (["experiment", "export", "cli_walk", "--format", "xml"], 2, "unknown export format"),
    (["experiment", "record", "cli_walk", "--request-id", "r"], 2, "give --request-id"),
]


def test_bad_input_is_one_line_and_an_exit_code(models, tmp_path) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG_TOML)
    nightscan("experiment", "create", "--file", str(config))
    for args, code, message in BAD_INPUT:
        result = runner.invoke(app, args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output
        assert "Traceback" not in result.output


def test_invalid_config_lists_every_fault(models, tmp_path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        CONFIG_TOML.replace("treatment = 50.0", "treatment = 60.0").replace(
            "minimum_sample_size = 100", "minimum_sample_size = 100\nconfidence_level = 1.5"
        )
    )
    result = runner.invoke(app, ["experiment", "create", "--file", str(config)])
    assert result.exit_code == 2
    assert "must sum to 100, got 110" in result.output and "confidence_level" in result.output
    assert "Traceback" not in result.output
