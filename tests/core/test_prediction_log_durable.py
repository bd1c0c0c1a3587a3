"""NIGHTSCAN_DURABLE_PREDICTIONS: a prediction is answered only once its row is committed, so a
process killed with -9 loses none it answered; concurrent requests share one commit."""

from __future__ import annotations

import asyncio

from core.deployments.prediction_log import DURABLE_ENV, Prediction, PredictionLog
from data.deployment_tables import PredictionRow


def _prediction(i: int) -> Prediction:
    return Prediction(f"req_{i}", "wd_prod", "wd:v1.0.0", ("owl", "hawk"), "owl", confidence=0.9)


def test_written_returns_once_the_rows_are_committed(ctx, monkeypatch) -> None:
    monkeypatch.setenv(DURABLE_ENV, "1")
    log = PredictionLog(ctx.db)
    assert log.durable and not PredictionLog(ctx.db, durable=False).durable
    reader = PredictionLog(ctx.db)  # another process: it reads the table only

    async def answer(i: int) -> str:
        await log.written(log.remember(_prediction(i)))
        with ctx.db.session() as session:  # what the answer acknowledges is in the table now
            assert session.get(PredictionRow, f"req_{i}") is not None
        return f"req_{i}"

    async def many() -> list[str]:
        return await asyncio.gather(*(answer(i) for i in range(40)))

    try:
        done = asyncio.run(many())
        assert sorted(done) == sorted(f"req_{i}" for i in range(40))
        assert all(reader.find(f"req_{i}") is not None for i in range(40))
        # Nothing is left to write: a later flush has no row and a written one returns at once.
        assert log.flush() == 0
        asyncio.run(log.written(1))
    finally:
        log.close()


def test_the_default_answers_without_waiting(ctx, monkeypatch) -> None:
    monkeypatch.delenv(DURABLE_ENV, raising=False)
    log = PredictionLog(ctx.db)
    assert not log.durable
    log.close()
