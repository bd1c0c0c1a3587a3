"""The live panel of one deployment: per-second series over the last minutes as sparklines
(requests/s, average and p95 latency, error rate, CPU, memory), queue depth and batch sizes.

Request series come from the tracker's per-second history (per-interval values, never
cumulative counters). The tracker keeps no CPU or memory history, so the panel remembers the
readings of its own polls, keyed by second, for the same window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from statistics import fmean
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, Sparkline, Static

from screens import fmt
from screens.tones import Tones

WINDOW_S = 300


def _mean(values: Sequence[float]) -> float:
    return fmean(values) if values else 0.0


def _max(values: Sequence[float]) -> float:
    return max(values) if values else 0.0


# key, label, unit, summary used when several seconds share one column
SERIES: list[tuple[str, str, str, Callable[[Sequence[float]], float]]] = [
    ("rps", "requests/s", "", _mean),
    ("avg", "avg latency", "ms", _mean),
    ("p95", "p95 latency", "ms", _max),
    ("err", "error rate", "%", _mean),
    ("cpu", "CPU", "%", _mean),
    ("mem", "memory", "MB", _max),
]
# One way to write each series' number, for the current value and its max alike (a current
# "408 MB" beside "max 407.7 MB" read as a current value above its max).
FORMATS: dict[str, str] = {
    "rps": "{:,.1f}/s",
    "avg": "{:,.1f} ms",
    "p95": "{:,.1f} ms",
    "err": "{:.2f}%",
    "cpu": "{:.0f}%",
    "mem": "{:,.0f} MB",
}


def per_second(samples: list[Any], now: float, window: int = WINDOW_S) -> dict[str, list[float]]:
    """Dense per-second arrays ending at the last whole second; a second without traffic is 0."""
    end = int(now)
    start = end - window + 1
    out = {k: [0.0] * window for k in ("rps", "avg", "p95", "err")}
    for s in samples:
        i = int(s.t) - start
        if 0 <= i < window:
            out["rps"][i] = float(s.requests)
            out["avg"][i] = float(s.average_latency_ms)
            out["p95"][i] = float(s.p95_latency_ms)
            out["err"][i] = s.errors / s.requests * 100 if s.requests else 0.0
    return out


def carried(readings: deque[tuple[int, float]], now: float, window: int = WINDOW_S) -> list[float]:
    """Gauge readings by second, each carried forward until the next one."""
    end = int(now)
    start = end - window + 1
    values = [0.0] * window
    ordered = sorted(readings)
    # Before the first reading, the lowest one: no cliff from zero, and no tall wall from a
    # noisy first CPU sample.
    it = iter(ordered)
    current, last = next(it, None), (min(v for _s, v in ordered) if ordered else 0.0)
    for i in range(window):
        second = start + i
        while current is not None and current[0] <= second:
            last = current[1]
            current = next(it, None)
        values[i] = last
    return values


def batch_chart(distribution: dict[int, int], queue: int, capacity: int, tones: Tones) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, justify="right")
    frac = queue / capacity if capacity else 0.0
    tone = "bad" if frac > 0.8 else "warn" if frac > 0.5 else "good"
    grid.add_row(
        Text("queue", style="bold"),
        Text(fmt.bar(frac, 20), style=tones.style(tone)),
        f"{queue} / {capacity}",
    )
    total = sum(distribution.values())
    if not total:
        grid.add_row(Text("batches", style="bold"), Text("none yet", style=tones.style("muted")))
        return grid
    top = max(distribution.values())
    for i, size in enumerate(sorted(distribution)[:8]):
        count = distribution[size]
        grid.add_row(
            Text("batch size" if i == 0 else "", style="bold") + Text(f" {size:>3}"),
            Text(fmt.bar(count / top, 20), style=tones.style("accent")),
            f"{count:,} ({count / total:.0%})",
        )
    return grid


def _seconds(s: float) -> str:
    s = int(round(s))
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s / 3600:.1f}h"


def canary_block(c: dict[str, Any], tones: Tones) -> Text:
    """A running canary: weight on its steps, the judge's counters and last verdict."""
    steps = " → ".join(f"[{w:g}]" if w == c["weight"] else f"{w:g}" for w in c.get("steps", []))
    text = Text.assemble(
        ("Canary ", "bold"),
        (c["canary"], "bold"),
        f" at {c['weight']:g}% · ",
        tones.status(c["state"], upper=False),
        f" · stable {c['stable']}",
        (f"\nsteps {steps}", tones.style("muted")),
    )
    if c["state"] in ("progressing", "paused"):
        text.append(
            f" · {_seconds(c['seconds_at_weight'])} of {_seconds(c['step_seconds'])} at this "
            f"weight · "
            + (
                f"next analysis in {_seconds(c['next_analysis_in_s'])}"
                if c["next_analysis_in_s"] is not None
                else "paused: nothing is judged"
            ),
            style=tones.style("muted"),
        )
    requests = c.get("requests") or {}
    text.append(
        f"\nanalyses {c['checks']}: {c['passes']} within every margin, {c['fails']} worse, "
        f"{c['inconclusive']} inconclusive · requests stable {requests.get('stable', 0):,}, "
        f"canary {requests.get('canary', 0):,} · aborts only when a confidence sequence "
        f"excludes a margin (α {c['alpha']:g} over the rollout)"
    )
    if c.get("quality_metrics"):
        text.append(
            f"\nquality from labelled feedback: {', '.join(c['quality_metrics'])} "
            f"(margin {c['quality_margin']:g} each)"
        )
    last = c.get("last_verdict")
    if last:
        tone = {"PASS": "good", "FAIL": "bad"}.get(last.get("verdict", ""), "warn")
        text.append("\nlast verdict ")
        text.append(last.get("verdict", "?"), style=tones.style(tone, bold=True))
        text.append(f" {last.get('reason', '')}")
    return text


def process_table(processes: dict[str, Any], tones: Tones) -> Text:
    """Each serving process's last snapshot (``serve --workers N``, several hosts); the
    numbers above are their sum."""
    text = Text(f"Host total above, over {len(processes)} processes:\n", style="bold")
    text.append(f"{'process':<28} {'req/s':>8} {'p95 ms':>8} {'err %':>6} {'cpu %':>6}\n",
                style=tones.style("muted"))  # fmt: skip
    for key in sorted(processes):
        m = processes[key]
        text.append(
            f"{key[-28:]:<28} {m.requests_per_second:>8,.1f} {m.p95_latency_ms:>8,.1f} "
            f"{m.error_rate:>6.1f} {m.cpu_usage_percent:>6.0f}\n"
        )
    return text


class LivePanel(VerticalScroll):
    ALLOW_MAXIMIZE = True
    DEFAULT_CSS = """
    LivePanel {
        border: round $primary 40%;
        border-title-color: $text-primary;
        padding: 0 1;
    }
    LivePanel:focus { border: round $primary; }
    LivePanel .live-row { height: 2; }
    LivePanel .live-label { width: 13; color: $text-muted; }
    LivePanel .live-value { width: 24; padding-left: 1; }
    LivePanel Sparkline { width: 1fr; height: 2; }
    LivePanel #live-head { margin-bottom: 1; }
    LivePanel #live-batches { margin-top: 1; height: auto; }
    LivePanel #live-canary { height: auto; margin-bottom: 1; display: none; }
    LivePanel #live-canary.-active { display: block; }
    LivePanel #live-processes { height: auto; margin-top: 1; display: none; }
    LivePanel #live-processes.-active { display: block; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Live"
        self.deployment_id: str | None = None
        self.cpu: deque[tuple[int, float]] = deque(maxlen=WINDOW_S)
        self.mem: deque[tuple[int, float]] = deque(maxlen=WINDOW_S)
        self.updates = 0  # tests watch this
        self.last: dict[str, list[float]] = {}

    def compose(self) -> ComposeResult:
        yield Static("Select a deployment.", id="live-head")
        yield Static("", id="live-canary")
        for key, label, _unit, summary in SERIES:
            with Horizontal(classes="live-row"):
                yield Label(label, classes="live-label")
                yield Sparkline([], summary_function=summary, id=f"spark-{key}")
                yield Static("", id=f"value-{key}", classes="live-value")
        yield Static("", id="live-batches")
        yield Static("", id="live-processes")

    def watch_deployment(self, deployment_id: str | None) -> None:
        """A different deployment: forget the previous one's gauge readings."""
        if deployment_id != self.deployment_id:
            self.deployment_id = deployment_id
            self.cpu.clear()
            self.mem.clear()
            self.last = {}

    def show(
        self,
        info: Any,
        metrics: Any | None,
        samples: list[Any],
        now: float,
        tones: Tones,
        canary: dict[str, Any] | None = None,
        processes: dict[str, Any] | None = None,
    ) -> None:
        self.watch_deployment(info.deployment_id)
        self.border_title = f"Live · {info.deployment_id} · last {WINDOW_S // 60} min"
        if metrics is not None:
            second = int(now)
            self.cpu.append((second, float(metrics.cpu_usage_percent)))
            self.mem.append((second, float(metrics.memory_usage_mb)))
        series = per_second(samples, now)
        series["cpu"] = carried(self.cpu, now)
        series["mem"] = carried(self.mem, now)
        self.last = series
        current = self._current(metrics)
        stale = metrics is not None and fmt.is_stale(metrics.timestamp, fmt.now())
        for key, _label, _unit, _summary in SERIES:
            self.query_one(f"#spark-{key}", Sparkline).data = series[key]
            peak = max(series[key]) if series[key] else 0.0
            value = Text(current.get(key, "—"), style=tones.style("muted") if stale else "bold")
            value.append(f"  max {FORMATS[key].format(peak)}", style=tones.style("muted"))
            self.query_one(f"#value-{key}", Static).update(value)
        serving = getattr(self.app, "live_short", "")  # "serving :8000" when this console serves
        self.query_one("#live-head", Static).update(self._head(info, metrics, tones, serving))
        block = self.query_one("#live-canary", Static)
        block.set_class(canary is not None, "-active")
        if canary is not None:
            block.update(canary_block(canary, tones))
        capacity = info.config.batching.queue_capacity
        dist = metrics.batch_size_distribution if metrics else {}
        queue = metrics.queue_depth if metrics else 0
        self.query_one("#live-batches", Static).update(batch_chart(dist, queue, capacity, tones))
        several = processes is not None and len(processes) > 1
        block = self.query_one("#live-processes", Static)
        block.set_class(several, "-active")
        if several:
            block.update(process_table(processes, tones))
        self.updates += 1

    @staticmethod
    def _current(m: Any | None) -> dict[str, str]:
        if m is None:
            return {}
        values = {
            "rps": m.requests_per_second,
            "avg": m.average_latency_ms,
            "p95": m.p95_latency_ms,
            "err": m.error_rate,
            "cpu": m.cpu_usage_percent,
            "mem": m.memory_usage_mb,
        }
        return {key: FORMATS[key].format(value) for key, value in values.items()}

    @staticmethod
    def _head(info: Any, m: Any | None, tones: Tones, serving: str = "") -> Text:
        stale = m is not None and fmt.is_stale(m.timestamp, fmt.now())
        # Stale figures say nothing about health now: the verdict is muted, not green.
        health = Text(info.health.upper(), style=tones.style("muted")) if stale else None
        text = Text.assemble(
            (info.model_ref, "bold"),
            "  ",
            tones.status(info.status),
            "  ",
            health or tones.status(info.health),
            f"  traffic {info.config.traffic_percentage:g}%",
        )
        if m is not None:  # on the first line: the figures below are as old as this says
            age = fmt.figures_age(m.timestamp, fmt.now())
            if stale:
                age += " (no server is counting now)"
            text.append(f"  figures: {age}", style=tones.style("warn" if stale else "muted"))
        if m is None:
            why = (
                f"this console serves it on :{serving.rsplit(':', 1)[-1]}; it is idle"
                if serving
                else "no server is serving it, or it is idle"
            )
            text.append(
                f"\nno traffic recorded in the last minute ({why})", style=tones.style("muted")
            )
            return text
        accuracy = (
            f"accuracy {m.accuracy:.1%} on {m.feedback_in_window} labelled"
            if m.accuracy is not None
            else "no feedback yet"
        )
        text.append(
            f"\n{m.requests_in_window:,} requests in the last {m.window_seconds:.0f} s · "
            f"p50 {m.p50_latency_ms:.1f} ms · p99 {m.p99_latency_ms:.1f} ms · "
            f"{m.errors_in_window} errors · {accuracy}",
            style=tones.style("muted"),
        )
        return text
