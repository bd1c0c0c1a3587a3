"""Integers past what the database can hold are refused by the CLI as usage errors (exit 2, a
message naming the option), not as an OverflowError traceback (was: ``registry list --offset
99999999999999999999`` and ``audit --limit 99999999999999999999``)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from nightscan_tui.cli import app

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "args",
    [
        ["registry", "list", "--offset", HUGE],
        ["registry", "list", "--limit", HUGE],
        ["audit", "--limit", HUGE],
        ["events", "--limit", HUGE],
    ],
)
def test_huge_integers_are_usage_errors(sqlite_ctx, args: list[str]) -> None:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "OverflowError" not in result.output
    assert f"Invalid value for '{args[-2]}'" in result.output


def test_the_largest_offset_is_answered(sqlite_ctx) -> None:
    result = CliRunner().invoke(app, ["registry", "list", "--offset", str(2**63 - 1)])
    assert result.exit_code == 0, result.output
