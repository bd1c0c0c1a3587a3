"""The demo: a seeded home (two trained versions, a production deployment, a running 70/30
experiment between them) and the background services that make it live (the inference server,
a traffic simulator with feedback, the experiment monitor, and the director that starts the next
experiment when one ends)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.console_services import ServingServices
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


def reset_demo_home() -> Path:
    """Start the demo over: remove this home's SQLite database and artifacts, so the next
    ``seed_demo`` builds everything afresh. Refused for a PostgreSQL database (drop it yourself)
    and for a home that holds models other than the demo's (the audit log is append-only, so
    starting over means a new database; it must not be someone's real registry)."""
    import shutil

    from sqlalchemy.engine import make_url

    from core.context import close_context, get_context
    from core.errors import ConflictError

    ctx = get_context()
    home, url = ctx.settings.home, make_url(ctx.settings.database_url)
    path = url.database if url.get_backend_name() == "sqlite" else None
    if not path or path == ":memory:":
        raise ConflictError(
            "--reset starts over a SQLite demo home; this home's database is not SQLite "
            "(drop and recreate that database yourself)"
        )
    others = sorted({m.model_id for m in get_model_registry().list_models()} - {DEMO_MODEL})
    if others:
        raise ConflictError(
            f"{home} holds more than the demo ({', '.join(others)}); --reset only starts a "
            "demo home over: use an empty --home for the demo"
        )
    from core.server.presence import live_servers

    serving = live_servers(ctx.db)
    if serving:  # its files would vanish under it
        raise ConflictError(f"{serving[0].url} serves this home; stop it before --reset")
    artifacts = ctx.settings.artifacts_dir
    close_context()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(artifacts, ignore_errors=True)
    return home


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


class DemoServices(ServingServices):
    """Server + traffic + experiment monitor + the director that keeps experiments coming, in
    background threads of this process: ``ServingServices`` (what ``nightscan tui --serve``
    runs) plus the demo's traffic and director. ``notices()`` hands the console what it should
    say (an experiment ended, requests are being refused, requests are served again)."""

    kind = "demo"

    # Refusals in a row before the console hears of it: one or two happen each time an
    # experiment ends, until the director has pointed the traffic at the next one.
    REFUSALS_TO_REPORT = 5

    def __init__(
        self,
        port: int = 0,
        rate_per_s: float = 8.0,
        monitor_interval_s: float = 5.0,
        director_interval_s: float = 2.0,
        canary: dict | None = None,
        with_canary: bool = True,
    ) -> None:
        super().__init__(port=port, monitor_interval_s=monitor_interval_s)
        self.rate_per_s = rate_per_s
        self.director_interval_s = director_interval_s
        self.canary = canary  # the canary section for the demo's rollout (demo_canary.py)
        self.with_canary = with_canary
        self.canary_traffic = None
        self.traffic = None
        self.staging_traffic = None
        self.director = None
        self._reported_refusals = False

    def start(self) -> DemoServices:
        from core.demo_director import DemoDirector
        from core.traffic import TrafficSimulator

        self.start_server()
        self.traffic = TrafficSimulator(
            self.url, rate_per_s=self.rate_per_s, on_refused=self._on_refused
        )
        self.director = DemoDirector(
            DEMO_MODEL,
            DEMO_DEPLOYMENT,
            DEMO_EXPERIMENT,
            set_target=self._set_target,
            notify=self._notify,
            interval_s=self.director_interval_s,
        ).start()
        self.traffic.start()
        # The monitor's auto-stop wakes the director, so the next experiment starts at once.
        self.start_monitor(lambda _actions: self.director.wake())
        from core.demo_quality import FEEDBACK_LABEL_NOISE, STAGING_DEPLOYMENT

        # Labelled traffic for the staging deployment, so its quality (owls!) moves live.
        self.staging_traffic = TrafficSimulator(
            self.url,
            rate_per_s=max(1.0, self.rate_per_s / 4),
            deployment_id=STAGING_DEPLOYMENT,
            feedback_share=0.8,
            label_noise=FEEDBACK_LABEL_NOISE,
        ).start()
        if self.with_canary:
            self._start_canary(TrafficSimulator)
        return self

    def _start_canary(self, traffic_simulator) -> None:
        from core.demo_canary import start_demo_canary

        said = start_demo_canary(DEMO_DEPLOYMENT, self.canary)
        if said:
            self._notify(said, "information")
        # The deployment's own traffic (no experiment), labelled: both arms of a canary see it.
        self.canary_traffic = traffic_simulator(
            self.url,
            rate_per_s=max(1.0, self.rate_per_s / 2),
            deployment_id=DEMO_DEPLOYMENT,
            feedback_share=0.5,
        ).start()

    def _set_target(self, experiment_id: str | None) -> None:
        if self.traffic is not None:
            self.traffic.experiment_id = experiment_id
            if self._reported_refusals and self.traffic.refusal_streak == 0:
                self._reported_refusals = False
                self._notify("requests are served again", "information")

    def _on_refused(self, status: int, detail: str) -> None:
        if self.director is not None:
            self.director.wake()  # most often: the experiment ended, retarget now
        streak = self.traffic.refusal_streak if self.traffic else 0
        if streak >= self.REFUSALS_TO_REPORT and not self._reported_refusals:
            self._reported_refusals = True
            self._notify(f"requests are being refused ({status}: {detail})", "error")

    def _notify(self, message: str, severity: str) -> None:
        self.notify(message, severity)

    def stop(self) -> None:
        """Traffic first, then the director, then the monitor and the server (which drains
        and flushes)."""
        for service in (self.traffic, self.staging_traffic, self.canary_traffic, self.director):
            if service is not None:
                service.stop()
        super().stop()
