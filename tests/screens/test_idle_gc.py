"""Full garbage collections only while nobody types (nightscan_tui/idle_gc.py)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from nightscan_tui.app import make_app
from nightscan_tui.idle_gc import NEVER, IdleCollector


@pytest.fixture
def collector():
    saved = gc.get_threshold()
    c = IdleCollector(quiet_s=1.0, min_interval_s=5.0, max_interval_s=60.0)
    c.start()
    yield c
    c.stop()
    assert gc.get_threshold() == saved


def test_start_switches_off_automatic_full_collections(collector) -> None:
    assert gc.get_threshold()[2] == NEVER


def test_collects_only_when_idle_and_not_too_often(collector) -> None:
    now = collector.last_collect
    collector.last_collect = now - 10  # past the minimum interval
    collector.last_input = now  # but a key just came
    assert collector.tick() is False
    collector.last_input = now - 2  # idle for two seconds
    assert collector.tick() is True and collector.collections == 1
    collector.last_input -= 10  # still idle, but it just collected
    assert collector.tick() is False


def test_a_long_burst_of_typing_still_gets_a_collection(collector) -> None:
    collector.last_collect -= 61
    collector.touched()
    assert collector.tick() is True


def test_freeze_hides_existing_objects_from_later_collections(collector) -> None:
    collector.freeze()
    assert gc.get_freeze_count() > 0
    collector.stop()
    assert gc.get_freeze_count() == 0


@pytest.mark.anyio
async def test_the_console_owns_the_policy_while_it_runs(console_home: Path) -> None:
    saved = gc.get_threshold()
    app = make_app(cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert gc.get_threshold()[2] == NEVER
        before = app.collector.last_input
        await pilot.press("down")
        assert app.collector.last_input > before  # key presses postpone collections
    assert gc.get_threshold() == saved and gc.get_freeze_count() == 0
