"""Regenerate the console screenshots in docs/screenshots/ (SVG, Textual's own export).

Seeds a demo home in a temporary folder (two trained versions, a production deployment, a
running 70/30 experiment), starts the demo services (inference server, traffic simulator with
feedback, experiment monitor) so the live panel and the statistics are real, lets traffic flow
for a while, then visits every screen at 120x40 and saves one SVG each.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--warmup 40] [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (120, 40)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--home", type=Path, help="Demo home to use (default: a temp folder).")
    parser.add_argument(
        "--warmup", type=float, default=40.0, help="Seconds of traffic before the first shot."
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    home = (args.home or Path(tempfile.mkdtemp(prefix="nightscan-shots-"))).resolve()
    os.environ["NIGHTSCAN_HOME"] = str(home)
    sys.path.insert(0, str(ROOT))

    from core.demo import DEMO_EXPERIMENT, DemoServices, seed_demo
    from nightscan_tui.app import make_app

    print(f"home: {home}")
    started = time.monotonic()
    seed_demo(on_step=lambda msg: print(f"  {msg}"))
    print(f"seeded in {time.monotonic() - started:.0f} s")

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    services = DemoServices()
    app = make_app(home, services=services, cursor_blink=False)
    saved: list[str] = []

    async def settle(pilot) -> None:
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)

    def shot(name: str) -> None:
        app.save_screenshot(f"{name}.svg", str(out))
        saved.append(name)

    async def tour(pilot) -> None:
        while not app.services_settled.is_set():
            await pilot.pause(0.2)
        print(f"services: {services.url}; {args.warmup:.0f} s of traffic")
        app.clear_notifications()
        await pilot.pause(args.warmup)
        app.clear_notifications()

        await settle(pilot)
        screen = app.screen
        shot("registry")
        table = screen.main_widget
        for row in range(min(2, table.row_count)):
            table.move_cursor(row=row)
            await settle(pilot)
            await pilot.press("space")
            await settle(pilot)
        shot("registry-compare")
        await pilot.press("escape")

        await pilot.press("2")
        await settle(pilot)
        table = app.screen.main_widget
        if DEMO_EXPERIMENT in table.rows:
            table.move_cursor(row=table.get_row_index(DEMO_EXPERIMENT))
        await pilot.pause(2.5)  # one more analysis poll on the latest results
        await settle(pilot)
        shot("experiments")
        await pilot.press("enter")
        await settle(pilot)
        shot("experiment-detail")
        await pilot.press("escape")

        await pilot.press("3")
        await pilot.pause(2.5)  # a few live polls
        await settle(pilot)
        shot("deployments")

        await pilot.press("4")
        await settle(pilot)
        shot("events")

        await pilot.press("1", "question_mark")
        await settle(pilot)
        shot("help")
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(1.0)
        shot("palette")
        app.exit()

    try:
        app.run(headless=True, size=SIZE, auto_pilot=tour)
    finally:
        app.services_settled.wait(timeout=120)
        services.stop()
    for name in saved:
        print(f"wrote {out / name}.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
