"""``nightscan quality``: the report from logged feedback, as JSON and as tables, one-line
errors for bad input, and no torch import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from quality_seed import LABELS, add_deployment, add_experiment, log_traffic, per_class_recall
from typer.testing import CliRunner

from nightscan_tui.cli import app

runner = CliRunner()
V1, V2 = "wildlife_detector:v1.0.0", "wildlife_detector:v2.0.0"


def nightscan(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "160"})


@pytest.fixture
def logged(sqlite_ctx):
    add_deployment(sqlite_ctx.db, "prod", "wildlife_detector", "v2.0.0")
    return log_traffic(sqlite_ctx.db, "prod", (V1, V2), 600, seed=3, weak_class=(V2, "owl"))


def test_json_report_per_version_matches_scikit_learn(logged) -> None:
    result = nightscan("quality", "prod", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    groups = {g["group"]: g for g in report["groups"]}
    assert set(groups) == {V1, V2}
    for ref in (V1, V2):
        recall = {c["label"]: c["recall"] for c in groups[ref]["quality"]["per_class"]}
        assert recall == pytest.approx(per_class_recall(logged, ref))
        assert groups[ref]["coverage"]["labelled"] == sum(
            1 for r in logged if r.labelled and r.model_ref == ref
        )
    # v2 is worse on owls only (the seeded data says by how much; the truth is checked above).
    owl = {ref: groups[ref]["quality"]["per_class"][0] for ref in (V1, V2)}
    assert owl[V2]["recall"] < owl[V1]["recall"] - 0.15
    assert owl[V2]["recall_ci"]["low"] <= owl[V2]["recall"] <= owl[V2]["recall_ci"]["high"]

    only = json.loads(nightscan("quality", "prod", "--version", "v1.0.0", "--json").output)
    assert [g["group"] for g in only["groups"]] == [V1]


def test_tables_show_every_class_and_the_averages(logged) -> None:
    result = nightscan("quality", "prod", "--window", "1h")
    assert result.exit_code == 0, result.output
    for text in (V1, V2, "macro-F1", "micro-F1", "ECE", "coverage", *LABELS):
        assert text in result.output
    assert "reference: first 3 hours in production" in " ".join(result.output.split())


def test_experiment_report_per_variant(sqlite_ctx) -> None:
    add_experiment(sqlite_ctx.db, "exp")
    logged = log_traffic(sqlite_ctx.db, "experiment", (V1, V2), 200, seed=4, experiment_id="exp")
    result = nightscan("quality", "--experiment", "exp", "--json")
    assert result.exit_code == 0, result.output
    groups = {g["group"]: g for g in json.loads(result.output)["groups"]}
    assert set(groups) == {"v0", "v1"}
    for variant, ref in (("v0", V1), ("v1", V2)):
        recall = {c["label"]: c["recall"] for c in groups[variant]["quality"]["per_class"]}
        assert recall == pytest.approx(per_class_recall(logged, ref))
    assert "variant v1" in nightscan("quality", "--experiment", "exp").output


@pytest.mark.parametrize(
    "args,message",
    [
        (("quality",), "name a deployment, or an experiment"),
        (("quality", "prod", "--experiment", "exp"), "name a deployment, or an experiment"),
        (("quality", "--experiment", "nope"), "experiment 'nope' not found"),
        (("quality", "nowhere"), "deployment 'nowhere' not found"),
        (("quality", "prod", "--window", "soon"), "invalid window 'soon'"),
        (("quality", "prod", "--version", "v9"), "no predictions of version 'v9'"),
    ],
)
def test_bad_input_is_one_readable_line(logged, args, message) -> None:
    result = nightscan(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_quality_does_not_import_torch(logged, sqlite_ctx) -> None:
    code = (
        "from nightscan_tui.cli import app\n"
        "try:\n    app(['quality', 'prod', '--json'])\nexcept SystemExit:\n    pass\n"
        "import sys, json; print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mods = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "core.quality.service" in mods and "torch" not in mods
