"""The demo's rollout: a canary of the candidate (v2.1.0) beside the production version (v2.0.0)
on the production deployment, with steps of minutes, so a person watching the console sees the
weight move 5 -> 25 -> 50 -> 100 and the promotion happen (about six minutes), each analysis
with its evidence. Its own labelled traffic keeps both arms fed while the A/B traffic follows
the experiments."""

from __future__ import annotations

from typing import Any

DEMO_MODEL = "wildlife_detector"
STABLE, CANDIDATE = "v2.0.0", "v2.1.0"
# Two minutes at each weight, an analysis every 15 s: slow enough to watch, fast enough to see.
DEMO_CANARY = {
    "steps": [5, 25, 50, 100],
    "step_seconds": 120.0,
    "analysis_interval_s": 15.0,
    "min_samples": 30,
    "min_feedback": 20,
    "calibration_samples": 50,
}


def start_demo_canary(deployment_id: str, canary: dict[str, Any] | None = None) -> str | None:
    """Start the candidate's canary when the deployment still serves the stable version and no
    canary runs; returns a line for the console, or None when there was nothing to start."""
    from core.deployments import DeploymentConfig, get_deployment_manager
    from core.errors import NightScanError

    manager = get_deployment_manager()
    try:
        info = manager.get_deployment(deployment_id)
    except NightScanError:
        return None
    if info.status != "running" or info.version != STABLE or manager.canaries.active(deployment_id):
        return None
    config = DeploymentConfig.from_dict(
        {**info.config.to_dict(), "version": CANDIDATE, "canary_deployment": True,
         "traffic_percentage": float((canary or DEMO_CANARY)["steps"][0]),
         "canary": canary or DEMO_CANARY}
    )  # fmt: skip
    try:
        manager.deploy_model(config, actor="demo")
    except NightScanError as exc:  # e.g. the candidate was retired by hand: no canary then
        return f"no canary of {DEMO_MODEL}:{CANDIDATE}: {exc}"
    steps = " -> ".join(f"{s:g}%" for s in config.canary.steps)
    return f"canary {DEMO_MODEL}:{CANDIDATE} started on {deployment_id} ({steps})"
