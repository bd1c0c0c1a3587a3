"""Quality from the prediction log, on SQLite and PostgreSQL: predictions and feedback go
through the real PredictionLog (flush, first-label-wins claim), the numbers come back from the
hourly counts and the partial hour's raw rows, and they equal scikit-learn's on the same data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from core.deployments import prediction_log as plog
from core.quality.service import QualityService, parse_window
from core.quality.store import Scope

LABELS = ("owl", "hawk", "sparrow", "robin")
DEP = "quality_prod"
START = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(START)
    monkeypatch.setattr(plog, "utcnow", c)
    return c


def _traffic(ctx, clock: Clock, seed: int, n: int = 900, hours: float = 5.0):
    """Seeded predictions from two versions and an experiment, 60 % labelled, some labelled
    twice (the second label must not count) and one request id sent twice."""
    rng = np.random.default_rng(seed)
    log = plog.PredictionLog(ctx.db)
    rows = []
    for i in range(n):
        clock.now = START + timedelta(seconds=float(i) / n * hours * 3600)
        ref = "wildlife_detector:v1.0.0" if i % 3 else "wildlife_detector:v2.0.0"
        true = rng.choice(4, p=[0.1, 0.2, 0.5, 0.2])
        pred = true if rng.random() < (0.8 if ref.endswith("v1.0.0") else 0.6) else rng.choice(4)
        conf = float(rng.beta(4, 2))
        in_experiment = i % 2 == 1
        p = plog.Prediction(
            f"r{i}",
            DEP,
            ref,
            LABELS,
            LABELS[pred],
            experiment_id="exp" if in_experiment else None,
            variant=("a", "b")[i % 4 // 2] if in_experiment else None,
            confidence=conf,
        )
        log.remember(p)
        if i == 5:
            log.remember(p)  # a client retry with the same request id
        labelled = rng.random() < 0.6
        rows.append((clock.now, ref, int(true), int(pred), conf, labelled, i % 2 == 1))
        if i % 50 == 0:
            log.flush()
    log.flush()
    delays = []
    for i, (at, _ref, true, pred, _c, labelled, _e) in enumerate(rows):
        if labelled:
            clock.now = at + timedelta(minutes=float(i % 7))
            delays.append(float(i % 7) * 60)
            assert log.claim(f"r{i}", true == pred, LABELS[true]) == (True, true == pred)
            if i % 10 == 0:  # a second label never counts
                wrong = LABELS[(true + 1) % 4]
                assert log.claim(f"r{i}", wrong == LABELS[pred], wrong)[0] is False
    log.close()
    return rows


def _expect(rows, ref: str, since: datetime | None = None, experiment: bool | None = None):
    sel = [
        r for r in rows
        if r[1] == ref and (since is None or r[0] >= since) and (experiment is None or r[6])
    ]  # fmt: skip
    lab = [r for r in sel if r[5]]
    return sel, np.array([r[2] for r in lab]), np.array([r[3] for r in lab]), lab


@pytest.mark.parametrize("window", [None, "150m"])
def test_quality_equals_scikit_learn_on_the_logged_predictions(ctx, clock, window) -> None:
    rows = _traffic(ctx, clock, seed=4)
    now = START + timedelta(hours=5, minutes=10)
    span = parse_window(window)
    report = QualityService(ctx.db).report(Scope(deployment_id=DEP), span, now=now)
    assert [g.group for g in report.groups] == [
        "wildlife_detector:v1.0.0",
        "wildlife_detector:v2.0.0",
    ]
    for g in report.groups:
        sel, y_true, y_pred, lab = _expect(rows, g.group, now - span if span else None)
        assert g.coverage.predictions == len(sel)
        assert g.coverage.labelled == len(lab)
        ids = list(range(4))
        assert np.array_equal(
            np.array(g.quality.confusion), confusion_matrix(y_true, y_pred, labels=ids)
        )
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
        assert [c.precision for c in g.quality.per_class] == pytest.approx(p.tolist())
        assert [c.recall for c in g.quality.per_class] == pytest.approx(r.tolist())
        assert [c.f1 for c in g.quality.per_class] == pytest.approx(f.tolist())
        assert g.quality.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
        assert g.quality.accuracy == pytest.approx((y_true == y_pred).mean())
        conf = np.array([r[4] for r in lab])
        bins = np.minimum((conf * 10).astype(int), 9)
        correct = y_true == y_pred
        ece = sum(
            (bins == b).mean() * abs(correct[bins == b].mean() - conf[bins == b].mean())
            for b in range(10) if (bins == b).any()
        )  # fmt: skip
        assert g.calibration.ece == pytest.approx(ece)
        assert sum(g.predicted_mix.values()) == len(sel)
        assert g.coverage.max_delay_s == pytest.approx(360.0)
        assert 0 < g.coverage.mean_delay_s < 360.0


def test_quality_per_experiment_variant(ctx, clock) -> None:
    rows = _traffic(ctx, clock, seed=9, n=400)
    report = QualityService(ctx.db).report(Scope(experiment_id="exp", split_by="variant"))
    assert [g.group for g in report.groups] == ["a", "b"]
    total = sum(g.coverage.labelled for g in report.groups)
    assert total == sum(1 for r in rows if r[5] and r[6])


def test_parse_window_refuses_nonsense() -> None:
    from core.errors import ValidationError

    assert parse_window("90m") == timedelta(minutes=90)
    assert parse_window("all") is None
    for bad in ("1y", "-1h", "0h", "soon"):
        with pytest.raises(ValidationError, match="invalid window"):
            parse_window(bad)


def test_drift_alarm_fires_once_with_its_event(ctx, clock) -> None:
    """Three reference hours, a quiet fourth hour, then an hour where owls vanish: one alarm,
    one event, however often anyone looks."""
    from core.events import recent_events

    rng = np.random.default_rng(5)
    log = plog.PredictionLog(ctx.db)
    ref = "wildlife_detector:v1.0.0"
    for hour in range(5):
        mix = [0.25, 0.25, 0.25, 0.25] if hour < 4 else [0.01, 0.33, 0.33, 0.33]
        for i in range(300):
            clock.now = START + timedelta(hours=hour, seconds=i * 10)
            label = LABELS[rng.choice(4, p=mix)]
            log.remember(
                plog.Prediction(f"h{hour}-{i}", DEP, ref, LABELS, label, confidence=rng.random())
            )
        log.flush()
    log.close()
    service = QualityService(ctx.db)
    quiet = service.drift(DEP, ref, now=START + timedelta(hours=4, minutes=5))
    assert quiet.verdict is not None and not quiet.verdict.alarm
    assert quiet.reference_start == START and quiet.alarms == 0
    for _ in range(3):
        loud = service.drift(DEP, ref, now=START + timedelta(hours=5, minutes=1))
    assert loud.verdict.alarm and loud.verdict.reason == "class mix drifted"
    assert loud.alarms == 1
    drift_events = recent_events(kind="prediction_drift")
    assert len(drift_events) == 1 and drift_events[0].source == DEP


def test_rebuilt_counts_equal_the_incrementally_kept_ones(ctx, clock) -> None:
    from sqlalchemy import select

    from core.quality import rollup

    _traffic(ctx, clock, seed=6, n=300)

    def snapshot():
        with ctx.db.session() as s:
            conf = s.execute(
                select(*[c for c in rollup.CONFUSION.c if c.name != "id"]).where(
                    rollup.CONFUSION.c.n > 0
                )
            ).all()
            bins = s.execute(
                select(*[c for c in rollup.CONFIDENCE.c if c.name != "id"]).where(
                    rollup.CONFIDENCE.c.n > 0
                )
            ).all()
        return sorted(map(tuple, conf)), sorted(map(tuple, bins))

    kept = snapshot()
    with ctx.db.write() as s:
        rollup.rebuild(s)
    rebuilt = snapshot()
    assert len(kept[0]) > 20 and len(kept[1]) > 20
    for ours, theirs in zip(kept, rebuilt, strict=True):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert a == pytest.approx(b)


def _register_row(db, ref: str, training_config: dict) -> None:
    from data.tables import ModelVersionRow

    model_id, version = ref.rsplit(":", 1)
    with db.write() as session:
        session.add(
            ModelVersionRow(
                model_id=model_id, version=version, version_key=version, created_at=START,
                status="deployed", checksum="0" * 64, training_config=training_config,
            )
        )  # fmt: skip


def test_drift_uses_the_held_out_reference_stored_at_registration(ctx, clock) -> None:
    """A version registered with its held-out predictions is judged against them from its first
    completed hour (no three-hour wait); its first hours would have said "no drift" here,
    because the mix they see is the shifted one. Without a stored reference, the first hours
    are the reference, and the report says which is used."""
    from quality_seed import add_deployment

    from core.quality.service import (
        REFERENCE_FIRST_HOURS,
        REFERENCE_HELD_OUT,
        quality_for_deployment,
    )

    rng = np.random.default_rng(9)
    held, plain = "wildlife_detector:v3.0.0", "wildlife_detector:v4.0.0"
    bins = np.bincount(np.minimum((rng.random(400) * 10).astype(int), 9), minlength=10)
    reference = {"predicted": {label: 100 for label in LABELS}, "confidence_bins": bins.tolist()}
    _register_row(ctx.db, held, {"labels": list(LABELS), "held_out_reference": reference})
    _register_row(ctx.db, plain, {"labels": list(LABELS)})
    add_deployment(ctx.db, DEP, "wildlife_detector", "v3.0.0")
    log = plog.PredictionLog(ctx.db)
    for ref in (held, plain):
        for i in range(300):  # owls nearly vanish from the very first hour
            clock.now = START + timedelta(seconds=i * 10)
            label = LABELS[rng.choice(4, p=[0.01, 0.33, 0.33, 0.33])]
            log.remember(plog.Prediction(f"{ref}-{i}", DEP, ref, LABELS, label,
                                         confidence=float(rng.random())))  # fmt: skip
    log.flush()
    log.close()
    service = QualityService(ctx.db)
    now = START + timedelta(hours=1, minutes=5)
    judged = service.drift(DEP, held, now=now)
    assert judged.reference == REFERENCE_HELD_OUT and judged.reference_start is None
    assert judged.verdict.reference_n == 400 and judged.verdict.window_n == 300
    assert judged.verdict.alarm and judged.verdict.reason == "class mix drifted"
    waiting = service.drift(DEP, plain, now=now)
    assert waiting.reference == REFERENCE_FIRST_HOURS and waiting.verdict is None
    assert waiting.reference_start == START
    report = quality_for_deployment(ctx.db, DEP, None, None)
    assert {g.group: g.drift.reference for g in report.groups} == {
        held: REFERENCE_HELD_OUT,
        plain: REFERENCE_FIRST_HOURS,
    }
