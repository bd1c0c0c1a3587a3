"""``nightscan canary simulate``: the policy's odds before a rollout, from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from core.deployments.canary_simulation import binomial_interval
from nightscan_tui.cli import app

runner = CliRunner()


def nightscan(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def one_line_error(result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_simulate_json_reports_a_twice_as_faulty_canary_aborted_early():
    result = nightscan("canary", "simulate", "--rps", "10", "--error-rate", "0.04",
                       "--rollouts", "30", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rollouts"] == 30 and data["interval_s"] == 60.0
    assert data["scenario"]["canary_error_rate"] == 0.04
    # Guarantee >= 95 % before 50 % traffic: fail only if the exact interval excludes it.
    assert binomial_interval(data["aborted_below_50"], 30)[1] >= 0.95
    assert data["abort_metrics"] == {"error_rate": data["aborted"]}
    assert data["median_abort_s"] < 16 * 3600


def test_simulate_reads_the_canary_keys_of_a_config_file(tmp_path: Path):
    path = tmp_path / "deploy.toml"
    path.write_text(
        textwrap.dedent(
            """
            model_id = "wildlife_detector"
            version = "v2.0.0"
            canary_duration_hours = 3.0
            [canary]
            analysis_interval_s = 1800
            """
        )
    )
    result = nightscan("canary", "simulate", "--config", str(path), "--rps", "5",
                       "--rollouts", "20")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "analysis every 30m, schedule 3.0h to 100%" in result.output
    assert "false abort (canary = stable):" in result.output
    assert "promoted: 20/20, median 3.0h (max 3.0h)" in result.output


def test_simulate_refuses_bad_input_in_one_line(tmp_path: Path):
    one_line_error(nightscan("canary", "simulate", "--rps", "0"), 2, "rps must be > 0")
    one_line_error(
        nightscan("canary", "simulate", "--rps", "1", "--error-rate", "1.5"),
        2, "error rates must lie in [0, 1]",
    )  # fmt: skip
    one_line_error(
        nightscan("canary", "simulate", "--rps", "1", "--rollouts", "0"), 2, "rollouts must lie"
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"canary": {"alpha": 0.9}}))
    one_line_error(
        nightscan("canary", "simulate", "--rps", "1", "--config", str(bad)), 2, "canary.alpha"
    )


def test_simulate_does_not_import_torch():
    code = textwrap.dedent(
        """
        import sys
        from typer.testing import CliRunner
        from nightscan_tui.cli import app
        r = CliRunner().invoke(app, ["canary", "simulate", "--rps", "2", "--rollouts", "2",
                                     "--interval", "3600", "--json"])
        assert r.exit_code == 0, r.output
        print("torch" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
