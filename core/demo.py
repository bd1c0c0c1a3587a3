"""The demo: a seeded home (two trained versions, a production deployment, a running 70/30
experiment between them) and the background services that make it live (the inference server,
a traffic simulator with feedback, the experiment monitor)."""

from __future__ import annotations

from collections.abc import Callable

from core.lifecycle import ModelStatus
from core.registry import get_model_registry
from core.training import train_and_register

DEMO_MODEL = "wildlife_detector"
DEMO_DEPLOYMENT = "wildlife_detector_prod"
DEMO_EXPERIMENT = "accuracy_improvement_test"
# v2.0.0: the production model, trained briefly on less data; v2.1.0: the candidate.
DEMO_VERSIONS = (
    ("v2.0.0", {"epochs": 2, "seed": 1, "samples_per_class": 40}, ["production"]),
    ("v2.1.0", {"epochs": 8, "seed": 2}, ["candidate", "high-accuracy"]),
)


def seed_demo(on_step: Callable[[str], None] = lambda _msg: None, **train_hooks) -> bool:
    """Create whatever part of the demo home is missing. Returns False if nothing was."""
    registry = get_model_registry()
    seeded = False
    for version, params, tags in DEMO_VERSIONS:
        if registry.exists(DEMO_MODEL, version):
            continue
        on_step(f"training {DEMO_MODEL}:{version}")
        train_and_register(
            DEMO_MODEL,
            version,
            tags=tags,
            status=ModelStatus.VALIDATION,
            description="demo model trained on synthetic night-time calls",
            **params,
            **train_hooks,
        )
        registry.update_status(DEMO_MODEL, version, ModelStatus.TESTING, "demo: staging checks")
        seeded = True
    seeded |= _seed_deployment(on_step)
    seeded |= _seed_experiment(on_step)
    from core.demo_quality import seed_owl_regression

    seeded |= seed_owl_regression(on_step)  # v2.1.1, worse on owls only, on staging
    return seeded


def _seed_deployment(on_step: Callable[[str], None]) -> bool:
    from core.deployments import DeploymentConfig, get_deployment_manager

    manager = get_deployment_manager()
    if any(d.deployment_id == DEMO_DEPLOYMENT for d in manager.list_deployments(True)):
        return False
    on_step(f"deploying {DEMO_MODEL}:v2.0.0 as {DEMO_DEPLOYMENT}")
    manager.deploy_model(
        DeploymentConfig(
            model_id=DEMO_MODEL,
            version="v2.0.0",
            deployment_id=DEMO_DEPLOYMENT,
            environment="production",
            health_check={"interval": 10, "timeout": 5, "failure_threshold": 3},
        )
    )
    return True


def _seed_experiment(on_step: Callable[[str], None]) -> bool:
    from core.errors import NotFoundError
    from core.experiments import ExperimentConfig, get_ab_test_manager

    ab = get_ab_test_manager()
    try:
        ab.get_experiment(DEMO_EXPERIMENT)
        return False
    except NotFoundError:
        pass
    on_step(f"starting experiment {DEMO_EXPERIMENT}")
    ab.create_experiment(
        ExperimentConfig(
            experiment_id=DEMO_EXPERIMENT,
            name="Test v2.1 vs v2.0 Accuracy",
            description="Compare new model version against current production",
            model_variants={
                "control": f"{DEMO_MODEL}:v2.0.0",
                "treatment": f"{DEMO_MODEL}:v2.1.0",
            },
            traffic_allocation={"control": 70.0, "treatment": 30.0},
            success_metrics=["accuracy", "confidence", "inference_time"],
            minimum_sample_size=1000,
            maximum_duration_days=14,
            confidence_level=0.95,
        )
    )
    ab.start_experiment(DEMO_EXPERIMENT)
    return True


class DemoServices:
    """Server + traffic + experiment monitor in background threads of this process."""

    def __init__(self, port: int = 0, rate_per_s: float = 8.0) -> None:
        self.port = port
        self.rate_per_s = rate_per_s
        self.server = None
        self.traffic = None
        self.staging_traffic = None
        self.monitor = None

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""

    def start(self) -> DemoServices:
        from core.experiments import ExperimentMonitor
        from core.server.runner import BackgroundServer
        from core.traffic import TrafficSimulator

        self.server = BackgroundServer(port=self.port).start()
        self.traffic = TrafficSimulator(
            self.url, rate_per_s=self.rate_per_s, experiment_id=DEMO_EXPERIMENT
        ).start()
        from core.demo_quality import FEEDBACK_LABEL_NOISE, STAGING_DEPLOYMENT

        # Labelled traffic for the staging deployment, so its quality (owls!) moves live.
        self.staging_traffic = TrafficSimulator(
            self.url,
            rate_per_s=max(1.0, self.rate_per_s / 4),
            deployment_id=STAGING_DEPLOYMENT,
            feedback_share=0.8,
            label_noise=FEEDBACK_LABEL_NOISE,
        ).start()
        self.monitor = ExperimentMonitor(interval=5.0).start()
        return self

    def stop(self) -> None:
        """Traffic first, then the monitor, then the server (which drains and flushes)."""
        for service in (self.traffic, self.staging_traffic, self.monitor, self.server):
            if service is not None:
                service.stop()
