"""The quality screen: from the deployments screen, ``m`` opens the selected deployment's
quality, drawn from feedback logged through the real prediction log; ``v`` and ``w`` move
between versions and windows; Esc goes back."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import open_screen, settle
from quality_seed import LABELS, log_traffic, per_class_recall
from textual.widgets import Label, Static

from nightscan_tui.app import make_app
from screens.panels.quality_panel import calibration_curve, class_bars, confusion_heatmap
from screens.quality import QualityScreen

pytestmark = pytest.mark.anyio
SIZE = (120, 60)
DEPLOYMENT = "wildlife_prod"
V1, V2 = "wildlife_detector:v1.0.0", "wildlife_detector:v1.1.0"


def _plain(renderable) -> str:
    from rich.console import Console

    console = Console(width=120, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


async def test_quality_screen_shows_each_version(console_home: Path) -> None:
    from core.context import get_context

    logged = log_traffic(get_context().db, DEPLOYMENT, (V1, V2), 300, seed=2,
                         weak_class=(V2, "owl"))  # fmt: skip
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3")
        assert app.screen.selected == DEPLOYMENT
        await pilot.press("m")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QualityScreen)
        groups = {g["group"]: g for g in screen.report["groups"]}
        assert set(groups) == {V1, V2}
        title = str(screen.query_one("#quality-title", Label).render())
        assert V1 in title and "window all" in title
        recall = {c["label"]: c["recall"] for c in groups[V2]["quality"]["per_class"]}
        assert recall.pop("background") is None  # registered, never labelled
        assert recall == pytest.approx(per_class_recall(logged, V2))

        await pilot.press("v")
        await pilot.pause()
        assert V2 in str(screen.query_one("#quality-title", Label).render())
        shown = _plain(screen.query_one("#quality-panel", Static).content)
        for text in ("confusion", "calibration", "precision", *LABELS):
            assert text in shown

        await pilot.press("w")
        await settle(pilot)
        assert screen.window == "24h" and screen.report["since"] is not None
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, QualityScreen)


def test_panels_draw_the_numbers_they_are_given() -> None:
    quality = {
        "labels": ["owl", "hawk"],
        "confusion": [[8, 2], [1, 9]],
        "per_class": [
            {"label": "owl", "support": 10, "precision": 8 / 9, "precision_ci": None,
             "recall": 0.8, "recall_ci": {"low": 0.5, "high": 0.95}, "f1": 0.84, "f1_ci": None},
            {"label": "hawk", "support": 10, "precision": None, "precision_ci": None,
             "recall": 0.9, "recall_ci": None, "f1": None, "f1_ci": None},
        ],
    }  # fmt: skip
    heat = _plain(confusion_heatmap(quality))
    assert "owl" in heat and "9" in heat
    bars = _plain(class_bars(quality))
    assert "80.0%" in bars and "no data" in bars
    curve = _plain(calibration_curve({"ece": 0.05, "bins": [
        {"low": 0.0, "high": 0.5, "n": 0, "accuracy": None, "mean_confidence": None},
        {"low": 0.5, "high": 1.0, "n": 40, "accuracy": 0.5, "mean_confidence": 0.75},
    ]}))  # fmt: skip
    assert "ECE 5.0%" in curve and "▲" in curve and "50.0%" in curve
    row = next(line for line in curve.splitlines() if line.strip().startswith("0.5-1.0"))
    assert row.index("▲") > row.index("█")  # over-confident: the marker is past the bar
