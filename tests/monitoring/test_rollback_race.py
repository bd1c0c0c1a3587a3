"""Two processes deciding to roll back at once must not roll back two versions."""

from __future__ import annotations

import pytest

from core.errors import ConflictError


def test_a_rollback_that_lost_the_race_changes_nothing(served):
    from core.deployments import DeploymentConfig
    from core.deployments.manager import DeploymentManager

    _, manager = served  # serves wd:v1 as "prod"
    manager.deploy_model(DeploymentConfig(model_id="wd", version="v2", deployment_id="prod"))
    other = DeploymentManager(manager.ctx)  # a second serving process on the same database

    original_load = manager.serving.load

    def load_then_lose_the_race(*args, **kwargs):
        served_model = original_load(*args, **kwargs)
        other.rollback_deployment("prod", "the other process was faster")
        return served_model

    manager.serving.load = load_then_lose_the_race
    with pytest.raises(ConflictError, match="changed while rolling back"):
        manager.rollback_deployment("prod", "health checks failed", failed=True)
    info = manager.get_deployment("prod")
    assert info.version == "v1"  # rolled back once, not twice (and not forward)
    assert [r.status for r in manager.revisions("prod")][-1] == "active"
    other.serving.close()
