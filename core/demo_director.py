"""Keeps the demo alive: traffic follows whatever experiment is running, and when none is (the
monitor stopped the last one, or someone did), a fresh one starts between the deployed version
and the newest other one; with no such version, traffic goes on without an experiment.

``next_experiment`` is the pure rule; ``DemoDirector`` is the loop that applies it and says what
it did (notices the console shows)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence

from core.experiments.config import ExperimentConfig
from core.experiments.models import ExperimentInfo, ExperimentStatus
from core.lifecycle import ModelStatus
from core.model_metadata import ModelMetadata
from core.semver import version_key

log = logging.getLogger(__name__)

# Versions an experiment may route traffic to (not TRAINING, FAILED or RETIRED).
SERVABLE = {ModelStatus.VALIDATION, ModelStatus.TESTING, ModelStatus.DEPLOYED}


def running_experiment(experiments: Sequence[ExperimentInfo]) -> str | None:
    """The experiment traffic should carry: the most recently started RUNNING one."""
    running = [e for e in experiments if e.status is ExperimentStatus.RUNNING]
    if not running:
        return None
    return max(running, key=lambda e: (e.started_at is not None, e.started_at)).experiment_id


def next_experiment(
    experiments: Sequence[ExperimentInfo],
    versions: Sequence[ModelMetadata],
    control_ref: str,
    base_id: str,
) -> ExperimentConfig | None:
    """The experiment to start now, or None (one is running, or nothing newer to test).

    Control is what the deployment serves; treatment is the newest servable version above it.
    The settings (split, metrics, sample size, duration) are the last ``base_id*`` experiment's,
    so a demo on a fast clock stays on it."""
    if running_experiment(experiments) is not None:
        return None
    control_version = control_ref.rsplit(":", 1)[1]
    newer = [
        m
        for m in versions
        if m.status in SERVABLE and version_key(m.version) > version_key(control_version)
    ]
    if not newer:
        return None
    treatment = max(newer, key=lambda m: version_key(m.version))
    ours = [e for e in experiments if e.experiment_id.startswith(base_id)]
    if not ours:
        return None  # nothing to copy the settings from: the seed creates the first one
    last = max(ours, key=lambda e: e.created_at)
    taken = {e.experiment_id for e in experiments}
    n = len(ours) + 1
    while f"{base_id}_{n}" in taken:
        n += 1
    control_variant, treatment_variant = _variant_names(last.config)
    return dataclasses.replace(
        last.config,
        experiment_id=f"{base_id}_{n}",
        name=f"{treatment.version} vs {control_version} (round {n})",
        model_variants={control_variant: control_ref, treatment_variant: treatment.ref},
    )


def _variant_names(config: ExperimentConfig) -> tuple[str, str]:
    names = list(config.model_variants)
    if "control" in names and "treatment" in names:
        return "control", "treatment"
    return names[0], names[1]


class DemoDirector:
    """Every ``interval_s`` (and at once when woken, e.g. on a refused request): point the
    traffic at the running experiment, or start the next one."""

    def __init__(
        self,
        model_id: str,
        deployment_id: str,
        base_experiment_id: str,
        set_target: Callable[[str | None], None],
        notify: Callable[[str, str], None],
        interval_s: float = 2.0,
    ) -> None:
        self.model_id = model_id
        self.deployment_id = deployment_id
        self.base_id = base_experiment_id
        self._set_target = set_target
        self._notify = notify
        self.interval_s = interval_s
        self.target: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DemoDirector:
        self.step()  # the traffic's first request already goes to the right place
        self._thread = threading.Thread(target=self._loop, name="demo-director", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def step(self) -> None:
        from core.deployments import get_deployment_manager
        from core.errors import NotFoundError
        from core.experiments import get_ab_test_manager
        from core.registry import get_model_registry

        ab = get_ab_test_manager()
        experiments = ab.list_experiments()
        try:
            control = get_deployment_manager().get_deployment(self.deployment_id).model_ref
        except NotFoundError:  # someone removed the demo's deployment: follow, start nothing
            control = None
        config = None
        if control is not None:
            versions = get_model_registry().list_models(model_id=self.model_id)
            config = next_experiment(experiments, versions, control, self.base_id)
        if config is not None:
            ab.create_experiment(config, actor="demo")
            ab.start_experiment(config.experiment_id, actor="demo")
            experiments = ab.list_experiments()
        target = running_experiment(experiments)
        if target != self.target:
            self._announce(self.target, target, experiments)
            self.target = target
        self._set_target(target)

    def _announce(
        self, before: str | None, after: str | None, experiments: Sequence[ExperimentInfo]
    ) -> None:
        ended = next((e for e in experiments if e.experiment_id == before), None)
        why = f" ({ended.status.value}: {ended.stop_reason})" if ended and ended.stop_reason else ""
        if after is None:
            self._notify(
                f"experiment {before} ended{why}; traffic goes on without an experiment",
                "information",
            )
        elif before is not None:
            self._notify(
                f"experiment {before} ended{why}; traffic now feeds {after}", "information"
            )

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.step()
            except Exception as exc:  # a busy database, a race with another process: retry
                log.warning("demo director step failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
