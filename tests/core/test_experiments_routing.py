"""Routing: test vectors, bucket maps, minimal moves, determinism across processes, the split."""

from __future__ import annotations

import json
import random

import pytest
from scipy import stats
from test_experiments_support import config_dict, register_models, run_child

from core.experiments.routing import (
    BUCKETS,
    bucket_counts,
    bucket_of,
    build_map,
    initial_map,
    rebalance,
    snap_to_buckets,
)

VECTORS = [
    ("accuracy_improvement_test", "user_123_request_456", 768),
    ("exp", "0", 3997),
    ("exp", "unit-42", 101),
    ("démo", "ünïcode", 4746),
    ("exp1", "", 619),
]


@pytest.mark.parametrize(("experiment_id", "unit_id", "bucket"), VECTORS)
def test_bucket_test_vectors(experiment_id: str, unit_id: str, bucket: int) -> None:
    assert bucket_of(experiment_id, unit_id) == bucket


def test_bucket_counts_largest_remainder() -> None:
    assert bucket_counts(["a", "b"], {"a": 70, "b": 30}) == [7000, 3000]
    assert bucket_counts(["a", "b", "c"], {"a": 1, "b": 1, "c": 1}) == [3334, 3333, 3333]
    assert sum(bucket_counts(["a", "b", "c"], {"a": 33.333, "b": 33.333, "c": 33.334})) == BUCKETS
    assert bucket_counts(["a", "b"], {"a": 0.7, "b": 0.3}) == [7000, 3000]  # fractions too
    assert snap_to_buckets(["a", "b", "c"], {"a": 1, "b": 1, "c": 1}) == {
        "a": 33.34,
        "b": 33.33,
        "c": 33.33,
    }


def test_initial_map_is_contiguous_in_variant_order() -> None:
    m = initial_map(["control", "treatment"], {"control": 70.0, "treatment": 30.0})
    assert len(m) == BUCKETS
    assert set(m[:7000]) == {0} and set(m[7000:]) == {1}


def _moved(a: bytes, b: bytes) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def test_reallocation_moves_only_what_must_move() -> None:
    variants = ["a", "b"]
    m1 = initial_map(variants, {"a": 50, "b": 50})
    m2 = rebalance(m1, variants, {"a": 30, "b": 70})
    assert _moved(m1, m2) == 2000
    # Every moved bucket went from the shrinking variant to the growing one.
    assert all(x == 0 and y == 1 for x, y in zip(m1, m2, strict=True) if x != y)
    assert rebalance(m2, variants, {"a": 30, "b": 70}) == m2  # no change, no move


@pytest.mark.parametrize("seed", range(5))
def test_random_reallocations_are_minimal_and_exact(seed: int) -> None:
    rng = random.Random(seed)
    variants = ["a", "b", "c", "d"]
    current = initial_map(variants, {v: 25 for v in variants})
    for _ in range(20):
        raw = [rng.random() for _ in variants]
        allocation = {v: x / sum(raw) * 100 for v, x in zip(variants, raw, strict=True)}
        before = [current.count(i) for i in range(len(variants))]
        target = bucket_counts(variants, allocation)
        nxt = rebalance(current, variants, allocation)
        assert [nxt.count(i) for i in range(len(variants))] == target
        assert _moved(current, nxt) == sum(
            max(b - t, 0) for b, t in zip(before, target, strict=True)
        )
        current = nxt


def test_replay_equals_incremental_application() -> None:
    variants = ["a", "b", "c"]
    history = [
        {"a": 34, "b": 33, "c": 33},
        {"a": 10, "b": 45, "c": 45},
        {"a": 60, "b": 20, "c": 20},
    ]
    step = initial_map(variants, history[0])
    for allocation in history[1:]:
        step = rebalance(step, variants, allocation)
    assert build_map(variants, history) == step


def test_split_matches_allocation_within_sampling_error(ctx) -> None:
    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    cfg = config_dict(
        "split",
        model_variants={
            "a": "wildlife_detector:v2.0.0",
            "b": "wildlife_detector:v2.1.0",
            "c": "wildlife_detector:v2.2.0",
        },
        traffic_allocation={"a": 50.0, "b": 30.0, "c": 20.0},
    )
    manager.create_experiment(cfg)
    manager.start_experiment("split")
    n = 30_000
    counts = {"a": 0, "b": 0, "c": 0}
    for i in range(n):
        counts[manager.assign("split", f"request-{i}")[0]] += 1
    chi2 = stats.chisquare([counts["a"], counts["b"], counts["c"]], [0.5 * n, 0.3 * n, 0.2 * n])
    assert chi2.pvalue > 0.001, counts
    # Sticky: the same unit always gets the same answer, and the seed's call agrees.
    for i in range(100):
        variant, ref = manager.assign("split", f"request-{i}")
        assert manager.get_model_for_request(f"request-{i}", "split") == ref
        assert cfg["model_variants"][variant] == ref
    # A user id overrides the request id, so one user sees one variant.
    refs = {manager.get_model_for_request(f"r{i}", "split", user_id="user-7") for i in range(50)}
    assert len(refs) == 1


CHILD = """
import json, sys
from core import get_ab_test_manager
m = get_ab_test_manager()
print(json.dumps([m.assign(sys.argv[1], f"unit-{i}")[0] for i in range(2000)]))
"""


def test_routing_is_identical_in_other_processes_and_after_reallocation(ctx) -> None:
    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("sticky"))
    manager.start_experiment("sticky")
    here = [manager.assign("sticky", f"unit-{i}")[0] for i in range(2000)]
    assert json.loads(run_child(CHILD, "sticky").stdout) == here

    manager.set_allocation("sticky", {"control": 20.0, "treatment": 80.0})
    after = [manager.assign("sticky", f"unit-{i}")[0] for i in range(2000)]
    # Only control units moved, all of them to treatment, and about 60% of control's units did.
    moved = [i for i in range(2000) if here[i] != after[i]]
    assert all(here[i] == "control" and after[i] == "treatment" for i in moved)
    assert 0.5 < len(moved) / here.count("control") < 0.7
    # A fresh process replays the history and lands on exactly the same map.
    assert json.loads(run_child(CHILD, "sticky").stdout) == after
    version, bucket_map = manager.router.bucket_map("sticky")
    assert version == 2 and bucket_map.count(1) == 8000


def test_routing_refuses_experiments_that_are_not_running(ctx) -> None:
    from core import ConflictError, NotFoundError, get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("draft"))
    with pytest.raises(ConflictError, match="DRAFT, not RUNNING"):
        manager.get_model_for_request("r1", "draft")
    with pytest.raises(NotFoundError):
        manager.get_model_for_request("r1", "missing")
    manager.start_experiment("draft")
    manager.get_model_for_request("r1", "draft")
    manager.stop_experiment("draft", "done")
    with pytest.raises(ConflictError, match="STOPPED"):
        manager.get_model_for_request("r1", "draft")


def test_router_notices_changes_made_by_another_process(ctx) -> None:
    """The cached map refreshes once the refresh interval has passed."""
    from core.experiments import ABTestManager

    register_models()
    writer = ABTestManager(ctx)
    reader = ABTestManager(ctx, refresh_interval=0.0)  # check on every call
    try:
        writer.create_experiment(config_dict("refresh"))
        writer.start_experiment("refresh")
        assert reader.router.bucket_map("refresh")[0] == 1
        writer.set_allocation("refresh", {"control": 0.0, "treatment": 100.0})
        assert {reader.assign("refresh", f"u{i}")[0] for i in range(200)} == {"treatment"}
        writer.stop_experiment("refresh", "done")
        with pytest.raises(Exception, match="STOPPED"):
            reader.assign("refresh", "u1")
    finally:
        writer.close()
        reader.close()
