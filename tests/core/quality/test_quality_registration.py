"""Registration records per-class held-out metrics that equal scikit-learn's on the project's
own synthetic calls, and ``registry compare`` shows them per class."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support
from typer.testing import CliRunner

from core.quality.registration import per_class_metrics
from core.training import train_and_register

MODEL = "wildlife_detector"


def _held_out_predictions(meta, model):
    """Rebuild the held-out split from the recorded config and predict it again."""
    from core.demo_quality import held_out_split
    from inference.training import predict_proba

    x, y, labels = held_out_split(meta.training_config)
    return y, predict_proba(model, x).argmax(axis=1), labels


def test_registered_per_class_metrics_match_scikit_learn_on_synthetic_calls(sqlite_ctx) -> None:
    from core import get_model_registry

    metas = [
        train_and_register(MODEL, v, epochs=3, samples_per_class=24, seed=seed)
        for v, seed in (("v1.0.0", 0), ("v1.1.0", 5))
    ]
    registry = get_model_registry()
    for meta in metas:
        y_true, y_pred, labels = _held_out_predictions(
            meta, registry.load_model(MODEL, meta.version)
        )
        ids = list(range(len(labels)))
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=ids, zero_division=np.nan
        )
        for i, label in enumerate(labels):
            assert meta.metrics[f"recall/{label}"] == pytest.approx(r[i])
            assert meta.metrics[f"f1/{label}"] == pytest.approx(f[i])
            if np.isnan(p[i]):
                assert f"precision/{label}" not in meta.metrics
            else:
                assert meta.metrics[f"precision/{label}"] == pytest.approx(p[i])
        assert meta.metrics["macro_f1"] == pytest.approx(
            f1_score(y_true, y_pred, labels=sorted(set(y_true) | set(y_pred)), average="macro")
        )
        stored = registry.get_model(MODEL, meta.version).training_config["held_out_confusion"]
        assert np.array(stored).sum() == len(y_true)

    comparison = registry.compare_models((MODEL, "v1.0.0"), (MODEL, "v1.1.0"))
    owl = comparison["per_class"]["owl"]["recall"]
    assert owl["difference"] == pytest.approx(owl["model_b"] - owl["model_a"])

    from nightscan_tui.cli import app

    result = CliRunner().invoke(
        app, ["registry", "compare", f"{MODEL}:v1.0.0", f"{MODEL}:v1.1.0"],
        env={"COLUMNS": "200"}, catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "per class (held-out set at registration)" in result.output
    assert "recall/owl" not in result.output  # moved out of the metric table
    for label in metas[0].labels:  # the console's width is fixed by earlier tests: a prefix
        assert label[:4] in result.output


def test_per_class_metrics_leave_undefined_rates_out() -> None:
    metrics = per_class_metrics(["owl", "hawk"], [[3, 1], [0, 0]])
    assert metrics["recall/owl"] == 0.75 and "recall/hawk" not in metrics
    assert metrics["precision/hawk"] == 0.0 and per_class_metrics(["owl"], []) == {}


def test_registration_stores_the_held_out_drift_reference(sqlite_ctx) -> None:
    """The predicted-class counts and confidence histogram of the held-out predictions are
    stored with the version and equal a re-prediction of the held-out split."""
    from core import get_model_registry
    from inference.training import predict_proba

    meta = train_and_register(MODEL, "v3.0.0", epochs=3, samples_per_class=24, seed=3)
    registry = get_model_registry()
    stored = registry.get_model(MODEL, "v3.0.0").training_config["held_out_reference"]
    from core.demo_quality import held_out_split

    x, _, labels = held_out_split(meta.training_config)
    proba = predict_proba(registry.load_model(MODEL, "v3.0.0"), x)
    predicted = np.bincount(proba.argmax(axis=1), minlength=len(labels))
    assert stored["predicted"] == {
        label: int(n) for label, n in zip(labels, predicted, strict=True)
    }
    top = proba.max(axis=1)
    expected = np.bincount(np.minimum((top * 10).astype(int), 9), minlength=10)
    assert stored["confidence_bins"] == expected.tolist()
