"""Simulated experiments through the real decision code: A/A false-winner rate, time-uniform
coverage of the absolute and relative confidence sequences, futility and power, for a
stationary split, drift with a manual reallocation, and Thompson sampling with drift.

    .venv/bin/python benchmarks/experiments_sim.py [--runs 1000] [--seed 1] [--no-append]

Every look calls ``core.experiments.inference.infer_metric`` and ``auto_stop_decision`` (what
``analyze_experiment`` and the monitor run) on per-allocation-epoch sufficient statistics; a
Thompson run reallocates with ``core.stats.thompson_sampling_allocation`` on the pooled arms,
as the bandit does. "Pooled" is the old analysis: one mSPRT on all units, epochs ignored.
``tests/core/test_experiments_simulation.py`` runs the same scenarios, smaller.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.experiments.config import ExperimentConfig  # noqa: E402
from core.experiments.inference import infer_metric, pooled  # noqa: E402
from core.experiments.stopping import auto_stop_decision  # noqa: E402
from core.stats import (  # noqa: E402
    BinaryStats,
    ContinuousStats,
    sequential_test,
    thompson_sampling_allocation,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LOGNORMAL_MEAN = math.exp(0.5)  # mean of exp(N(0, 1))
THOMPSON_DRAWS = 1000  # Monte-Carlo draws per reallocation (the service uses 20,000)


@dataclass(frozen=True)
class Scenario:
    """``lift`` is relative (treatment = base x (1 + lift)) unless ``additive``; ``base`` drifts
    linearly from ``base[0]`` to ``base[1]`` over the run (``step``: from epoch to epoch);
    ``shares`` are the treatment's share per allocation epoch (``thompson``: the first; later
    ones come from the bandit)."""

    name: str
    lift: float = 0.0
    additive: bool = False
    kind: str = "binary"  # or "lognormal" (base multiplies exp(N(0, 1)))
    base: tuple[float, float] = (0.10, 0.10)
    shares: tuple[float, ...] = (0.5,)
    thompson: bool = False
    epochs: int = 1
    step: bool = False  # base constant within an epoch, moving from epoch to epoch
    looks_per_epoch: int = 20
    units_per_look: int = 400
    minimum_sample_size: int = 1000
    mde: float = 0.10

    @property
    def looks(self) -> int:
        return self.epochs * self.looks_per_epoch


@dataclass
class Tally:
    runs: int = 0
    winner: int = 0  # auto-stop with the treatment as winner
    loser: int = 0  # auto-stop with the control as winner
    pooled_winner: int = 0  # the old pooled mSPRT, epochs ignored, stop on any winner
    abs_miss: int = 0  # absolute sequence ever excluded the true difference
    rel_miss: int = 0  # relative sequence ever excluded the true lift
    futile: int = 0  # "stop, no difference" ever said
    abs_defined: bool = True
    rel_defined: bool = True
    extra: dict = field(default_factory=dict)


def config_for(s: Scenario) -> ExperimentConfig:
    metric = "accuracy" if s.kind == "binary" else "confidence"
    return ExperimentConfig(
        experiment_id="sim",
        model_variants={"control": "m:1", "treatment": "m:2"},
        traffic_allocation={"control": 50.0, "treatment": 50.0},
        success_metrics=[metric],
        minimum_sample_size=s.minimum_sample_size,
        minimum_detectable_effect=s.mde,
        confidence_level=0.95,
    ).normalized()


def _means(s: Scenario, look: int) -> tuple[float, float]:
    if s.step:
        frac = (look // s.looks_per_epoch) / max(s.epochs - 1, 1)
    else:
        frac = look / max(s.looks - 1, 1)
    base = s.base[0] + (s.base[1] - s.base[0]) * frac
    treated = base + s.lift if s.additive else base * (1.0 + s.lift)
    return base, treated


def _draw(s: Scenario, rng: np.random.Generator, n: int, mean: float) -> tuple[int, float, float]:
    if n == 0:
        return 0, 0.0, 0.0
    if s.kind == "binary":
        k = float(rng.binomial(n, mean))
        return n, k, k
    x = rng.lognormal(0.0, 1.0, n) * (mean / LOGNORMAL_MEAN)
    return n, float(x.sum()), float((x * x).sum())


def _stats(s: Scenario, acc: list[float]) -> BinaryStats | ContinuousStats:
    n = int(acc[0])
    if s.kind == "binary":
        return BinaryStats(n, min(acc[1], float(n)))
    return ContinuousStats(n, acc[1], acc[2])


def simulate(s: Scenario, runs: int, seed: int) -> Tally:
    """``runs`` experiments of scenario ``s`` (see the module docstring)."""
    cfg = config_for(s)
    metric = cfg.primary
    rng = np.random.default_rng(seed)
    t = Tally(runs=runs)
    # The sequences' estimands: with a relative lift the ratio of the epoch-weighted means is
    # exactly 1 + lift whatever the weights; with an additive one the difference is exactly
    # lift. The other is weight-dependent under drift, so it is only checked when stationary.
    stationary = s.base[0] == s.base[1]
    t.abs_defined = s.additive or stationary or s.lift == 0.0
    t.rel_defined = not s.additive or stationary or s.lift == 0.0
    true_abs = s.lift if s.additive else s.base[0] * s.lift
    true_rel = s.lift if not s.additive else s.lift / s.base[0]
    for _ in range(runs):
        arms: dict[str, list[list[float]]] = {"control": [], "treatment": []}
        share = s.shares[0]
        stopped = pooled_stopped = abs_miss = rel_miss = futile = False
        for look in range(s.looks):
            epoch = look // s.looks_per_epoch
            if look % s.looks_per_epoch == 0:
                if epoch > 0:
                    if s.thompson:
                        now = {
                            v: _stats(s, [sum(e[i] for e in a) for i in range(3)])
                            for v, a in arms.items()
                        }
                        share = thompson_sampling_allocation(
                            now, floor=0.05, draws=THOMPSON_DRAWS, rng=rng
                        )["treatment"]
                    else:
                        share = s.shares[min(epoch, len(s.shares) - 1)]
                for a in arms.values():
                    a.append([0, 0.0, 0.0])
            m_c, m_t = _means(s, look)
            n_t = int(rng.binomial(s.units_per_look, share))
            for arm, n, mean in (("control", s.units_per_look - n_t, m_c), ("treatment", n_t, m_t)):
                add = _draw(s, rng, n, mean)
                cur = arms[arm][-1]
                for i in range(3):
                    cur[i] += add[i]
            strata = {v: tuple(_stats(s, e) for e in a) for v, a in arms.items()}
            inference = infer_metric(cfg, metric, strata)
            d = auto_stop_decision(cfg, strata, NOW, NOW, inference=inference)
            seq = inference["treatment"].sequential
            if not stopped and d.stop:
                stopped = True
                t.winner += d.winner == "treatment"
                t.loser += d.winner == "control"
            futile = futile or d.futile
            if t.abs_defined and not seq.cs_low <= true_abs <= seq.cs_high:
                abs_miss = True
            low, high = seq.relative_cs_low, seq.relative_cs_high
            if t.rel_defined and low is not None and not low <= true_rel <= high:
                rel_miss = True
            if not pooled_stopped:
                c, tr = pooled(strata["control"]), pooled(strata["treatment"])
                enough = min(c.n, tr.n) >= s.minimum_sample_size
                p = sequential_test(c, tr, target_sample_size=2 * s.minimum_sample_size)
                pooled_stopped = enough and p.conclusive
        t.pooled_winner += pooled_stopped
        t.abs_miss += abs_miss
        t.rel_miss += rel_miss
        t.futile += futile
    return t


def binomial_upper(k: int, n: int, z: float = 1.96) -> float:
    """Wilson upper bound of a binomial proportion (what a table reader needs)."""
    if n == 0:
        return 1.0
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + spread) / (1 + z * z / n)


# 40,000 units per run when stationary, 80,000 with the manual reallocation (the issue's
# example: the pooled analysis then declares a winner almost always), 72,000 with Thompson.
STATIONARY = {"looks_per_epoch": 20, "units_per_look": 2000}
MANUAL = {
    "base": (0.10, 0.12),
    "step": True,
    "shares": (0.5, 0.9),
    "epochs": 2,
    "looks_per_epoch": 10,
    "units_per_look": 4000,
}
THOMPSON = {
    "base": (0.08, 0.14),
    "thompson": True,
    "epochs": 12,
    "looks_per_epoch": 3,
    "units_per_look": 2000,
}
SCENARIOS = (
    Scenario("stationary A/A", **STATIONARY),
    Scenario("stationary, lift = MDE (+10 %)", lift=0.10, **STATIONARY),
    Scenario(
        "stationary lognormal, lift +5 %",
        kind="lognormal",
        base=(1.0, 1.0),
        lift=0.05,
        looks_per_epoch=20,
        units_per_look=400,
    ),
    Scenario("drift 10->12 %, 50/50 -> 10/90, A/A", **MANUAL),
    Scenario("drift + reallocation, lift +10 %", lift=0.10, **MANUAL),
    Scenario("drift + reallocation, +1 point", lift=0.01, additive=True, **MANUAL),
    Scenario("Thompson, drift 8->14 %, A/A", **THOMPSON),
    Scenario("Thompson, drift 8->14 %, lift +10 %", lift=0.10, **THOMPSON),
)


def _rate(k: int, n: int) -> str:
    return f"{k / n:.3f} (<= {binomial_upper(k, n):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-append", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    from machine import RESULTS, cpu_model
    from rich.console import Console
    from rich.table import Table

    console = Console()
    header = (
        "scenario",
        "stop: treatment wins",
        "stop: control wins",
        "pooled (old) winner",
        "abs CS ever misses",
        "rel CS ever misses",
        "'no difference' said",
    )
    rows = []
    started = time.perf_counter()
    for i, s in enumerate(SCENARIOS):
        t = simulate(s, args.runs, args.seed + i)
        rows.append(
            (
                s.name,
                _rate(t.winner, t.runs),
                _rate(t.loser, t.runs),
                _rate(t.pooled_winner, t.runs),
                _rate(t.abs_miss, t.runs) if t.abs_defined else "n/a",
                _rate(t.rel_miss, t.runs) if t.rel_defined else "n/a",
                _rate(t.futile, t.runs),
            )
        )
        console.print(f"{s.name}: done ({time.perf_counter() - started:.0f} s)")
    table = Table(title=f"A/B decisions, {args.runs} runs per scenario", header_style="bold")
    for h in header:
        table.add_column(h)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if args.no_append:
        return
    command = " ".join([".venv/bin/python", "benchmarks/experiments_sim.py", *sys.argv[1:]])
    lines = [
        "",
        f"## A/B decisions by simulation ({datetime.now().strftime('%Y-%m-%d %H:%M')})",
        "",
        f"- machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}",
        f"- command: `{command}` ({time.perf_counter() - started:.0f} s)",
        "- rates with their 95 % Wilson upper bound; alpha = 0.05, MDE = 10 % relative,",
        "  minimum_sample_size = 1,000 per arm, a look after every 400 units (200 with Thompson)",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]
    with RESULTS.open("a") as fh:
        fh.write("\n".join(lines))
    console.print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
