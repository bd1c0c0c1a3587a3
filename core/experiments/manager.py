"""``ABTestManager``: the seed's A/B testing API over the store, the router and the writer.

Seed calls (``create_experiment``, ``start_experiment``, ``stop_experiment(id, reason)``,
``get_model_for_request(request_id, experiment_id)``, ``record_result(...)``,
``analyze_experiment(id)``) keep their names and argument names; everything else is additive.
Errors are ``NightScanError``s: ValidationError for bad input, NotFoundError for an unknown
experiment, ConflictError when the experiment's state forbids the call (e.g. routing a request
for an experiment that is not RUNNING).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import IO, Any

from core.context import Context, get_context
from core.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from core.experiments.config import (
    ALLOCATION_TOLERANCE,
    ConfigValidationError,
    ExperimentConfig,
    MetricSpec,
    registry_problems,
)
from core.experiments.export import export_results
from core.experiments.models import (
    AllocationChange,
    CheckAction,
    ExperimentInfo,
    ExperimentStatus,
)
from core.experiments.results import ResultItem, ResultWriter, validate_result
from core.experiments.routing import ExperimentRouter, snap_to_buckets
from core.experiments.store import ExperimentStore
from data.types import utcnow

ResultLike = dict[str, Any] | tuple[str, str, str, dict[str, float]]

_STATISTICS_LOCK = threading.Lock()


def load_statistics() -> None:
    """Import the analysis, stopping and bandit modules (scipy: about a second) if they are not
    yet loaded. Not at module import, so `experiment list` never pays for them; and one thread
    at a time, because scipy's import breaks when two threads run it at once (a partially
    initialised module). Servers call this before their background threads start."""
    with _STATISTICS_LOCK:
        import core.experiments.analysis  # noqa: F401
        import core.experiments.bandit  # noqa: F401
        import core.experiments.stopping  # noqa: F401


class ABTestManager:
    def __init__(
        self,
        ctx: Context,
        clock: Callable[[], datetime] | None = None,
        refresh_interval: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.clock: Callable[[], datetime] = clock or utcnow  # tests inject a fake clock
        self.store = ExperimentStore(ctx.db, ctx.audit, self._now)
        self.writer = ResultWriter(ctx.db, self._now)
        self.router = ExperimentRouter(
            self.store.routing_state, self._history_pairs, self._variant_pairs, refresh_interval
        )
        self._configs: dict[str, ExperimentConfig] = {}  # immutable once created
        self._specs: dict[str, dict[str, MetricSpec]] = {}

    def _now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        self.writer.close()

    # ---- definitions and lifecycle ------------------------------------------------------------

    def _registry(self):
        from core.registry import ModelRegistry

        return self.ctx.service("registry", ModelRegistry)

    def create_experiment(
        self, config: ExperimentConfig | dict[str, Any], actor: str | None = None
    ) -> ExperimentInfo:
        """Validate (every fault, one message each) and store the experiment as DRAFT."""
        if isinstance(config, dict):
            config = ExperimentConfig.from_dict(config)
        problems = config.problems()
        if isinstance(config.model_variants, dict):
            problems += registry_problems(config, self._registry())
        if problems:
            raise ConfigValidationError(str(config.experiment_id), problems)
        normalized = config.normalized()
        self.store.create(normalized, actor)
        return self.get_experiment(normalized.experiment_id)

    def start_experiment(self, experiment_id: str, actor: str | None = None) -> ExperimentInfo:
        """DRAFT -> RUNNING. The models are checked again: one may have been retired since."""

        def precheck(info: ExperimentInfo) -> None:
            problems = registry_problems(info.config, self._registry())
            if problems:
                raise ConflictError(f"cannot start {experiment_id}: " + "; ".join(problems))

        self.store.transition(
            experiment_id,
            ExperimentStatus.RUNNING,
            "started",
            actor,
            event=("experiment.started", "info", f"experiment {experiment_id} started"),
            precheck=precheck,
        )
        self.router.invalidate(experiment_id)
        return self.get_experiment(experiment_id)

    def stop_experiment(
        self, experiment_id: str, reason: str = "", actor: str | None = None
    ) -> ExperimentInfo:
        """RUNNING -> STOPPED, with the reason and who."""
        reason = reason.strip() or "stopped manually"
        self.store.transition(
            experiment_id,
            ExperimentStatus.STOPPED,
            reason,
            actor,
            event=("experiment.stopped", "info", f"experiment {experiment_id} stopped: {reason}"),
        )
        self.router.invalidate(experiment_id)
        return self.get_experiment(experiment_id)

    def get_experiment(self, experiment_id: str) -> ExperimentInfo:
        return self.store.get(experiment_id)

    def list_experiments(
        self, status: ExperimentStatus | str | None = None
    ) -> list[ExperimentInfo]:
        return self.store.list(ExperimentStatus.parse(status) if status else None)

    def allocation_history(self, experiment_id: str) -> list[AllocationChange]:
        self._config(experiment_id)
        return self.store.history(experiment_id)

    def get_experiment_status(self, experiment_id: str) -> dict[str, Any]:
        """The experiment, its units and values per variant, and its lifecycle history."""
        info = self.store.get(experiment_id)
        stats = self.store.metric_stats(experiment_id)
        units: dict[str, int] = {v: 0 for v in info.config.variants}
        for (variant, _version), n in self.store.unit_counts(experiment_id).items():
            units[variant] = units.get(variant, 0) + n
        return {
            **info.to_dict(),
            "duration_hours": info.duration_hours(self.clock()),
            "units": units,
            "results": {
                v: {m: stats.get((v, m), (0, 0, 0))[0] for m in info.config.success_metrics}
                for v in info.config.variants
            },
            "status_history": self.store.status_history(experiment_id),
            "allocation_versions": info.allocation_version,
        }

    def set_allocation(
        self,
        experiment_id: str,
        allocation: dict[str, float],
        reason: str = "manual reallocation",
        actor: str | None = None,
    ) -> AllocationChange:
        """Record a new split (snapped to 0.01 %); units move only where they must."""
        config = self._config(experiment_id)
        problems = [
            f"{v!r} is not a variant of {experiment_id}"
            for v in allocation
            if v not in config.variants
        ]
        problems += [
            f"no share given for variant {v!r}" for v in config.variants if v not in allocation
        ]
        for v, pct in allocation.items():
            if isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100:
                problems.append(f"share of {v!r} must be a number in [0, 100], got {pct!r}")
        if not problems and abs(sum(allocation.values()) - 100.0) > ALLOCATION_TOLERANCE:
            problems.append(f"shares must sum to 100, got {sum(allocation.values()):g}")
        if problems:
            raise ValidationError(f"invalid allocation for {experiment_id}: " + "; ".join(problems))
        snapped = snap_to_buckets(config.variants, allocation)

        def make(info: ExperimentInfo, _last: list[AllocationChange]):
            if info.status.ended:
                raise ConflictError(f"experiment {experiment_id} has ended; allocation is frozen")
            return snapped, {"requested": dict(allocation)}

        change = self.store.add_allocation(
            experiment_id, make, "manual", reason, actor, "experiment.allocation_changed"
        )
        self.router.invalidate(experiment_id)
        assert change is not None
        return change

    # ---- routing ------------------------------------------------------------------------------

    def _config(self, experiment_id: str) -> ExperimentConfig:
        config = self._configs.get(experiment_id)
        if config is None:
            config = self.store.get(experiment_id).config
            self._configs[experiment_id] = config
        return config

    def _variant_pairs(self, experiment_id: str) -> list[tuple[str, str]]:
        return list(self._config(experiment_id).model_variants.items())

    def _history_pairs(self, experiment_id: str, after: int) -> list[tuple[int, dict[str, float]]]:
        return [(h.version, h.allocation) for h in self.store.history(experiment_id, after)]

    def assign(self, experiment_id: str, unit_id: str) -> tuple[str, str]:
        """(variant, "model_id:version") for a unit (request or user id); sticky everywhere."""
        return self.router.assign(experiment_id, unit_id)

    def get_model_for_request(
        self, request_id: str, experiment_id: str, user_id: str | None = None
    ) -> str:
        """The seed's call: "model_id:version" for this request (by ``user_id`` when given, so a
        user sees one variant across requests). ConflictError if the experiment is not RUNNING."""
        return self.router.assign(experiment_id, request_id if user_id is None else user_id)[1]

    # ---- results ------------------------------------------------------------------------------

    def _validated(
        self, experiment_id: str, request_id: str, variant: str, metrics: dict[str, Any]
    ) -> ResultItem:
        specs = self._specs.get(experiment_id)
        if specs is None:
            specs = self._specs[experiment_id] = self._config(experiment_id).metric_specs()
        variants = self._configs[experiment_id].variants
        return validate_result(experiment_id, variants, specs, request_id, variant, metrics)

    def record_result(
        self, experiment_id: str, request_id: str, variant: str, metrics: dict[str, float]
    ) -> int:
        """Store a request's metric values durably (returns once committed); any subset of the
        experiment's metrics. Returns how many values were new: a re-sent value is ignored."""
        outcome = self.writer.write([self._validated(experiment_id, request_id, variant, metrics)])[
            0
        ]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def record_results(self, results: Iterable[ResultLike]) -> list[int]:
        """Bulk ``record_result``: all are validated first (any fault: nothing is written), then
        committed together. Items refused by the experiment's state raise one ConflictError
        naming them after the others have been committed."""
        items, problems = [], []
        for i, r in enumerate(results):
            try:
                if isinstance(r, dict):
                    items.append(
                        self._validated(
                            r["experiment_id"], r["request_id"], r["variant"], r["metrics"]
                        )
                    )
                else:
                    items.append(self._validated(*r))
            except (ValidationError, NotFoundError) as exc:
                problems.append(f"#{i}: {exc}")
            except (KeyError, TypeError) as exc:
                problems.append(f"#{i}: malformed result ({exc})")
        if problems:
            raise ValidationError(
                f"{len(problems)} invalid results, nothing written: " + "; ".join(problems[:10])
            )
        outcomes = self.writer.write(items)
        refused = [f"#{i}: {o}" for i, o in enumerate(outcomes) if isinstance(o, Exception)]
        if refused:
            raise ConflictError(
                f"{len(refused)} of {len(items)} results refused (the rest are committed): "
                + "; ".join(refused[:10])
            )
        return [int(o) for o in outcomes]  # type: ignore[arg-type]

    def variant_for_request(self, experiment_id: str, request_id: str) -> str | None:
        """The variant a request's first result was recorded under (None if it has none)."""
        self._config(experiment_id)
        return self.store.variant_for_request(experiment_id, request_id)

    def export_results(
        self,
        experiment_id: str,
        format: str = "csv",  # noqa: A002 - the CLI's and the brief's name
        out: IO[str] | str | os.PathLike | None = None,
    ) -> int:
        self._config(experiment_id)
        return export_results(
            self.ctx.db, experiment_id, format, sys.stdout if out is None else out
        )

    # ---- analysis, auto-stop, bandits -----------------------------------------------------------

    def analyze_experiment(self, experiment_id: str) -> dict[str, Any]:
        load_statistics()
        from core.experiments.analysis import build_analysis

        info = self.store.get(experiment_id)
        confusion, labels = self._feedback_counts(info)
        return build_analysis(
            info,
            self.store.epoch_metric_stats(experiment_id),
            self.store.unit_counts(experiment_id),
            self.store.history(experiment_id),
            self.clock(),
            confusion=confusion,
            labels=labels,
        )

    def _feedback_counts(self, info: ExperimentInfo):
        """Per-variant labelled confusion counts and the variants' classes, summed in SQL from
        the quality rollup, for the F1 metrics only (None, () when there is none)."""
        from core.experiments.quality_analysis import is_count_metric

        if not any(is_count_metric(m) for m in info.config.success_metrics):
            return None, ()
        from core.quality.store import QualityStore, Scope

        quality = QualityStore(self.ctx.db)
        scope = Scope(experiment_id=info.experiment_id, split_by="variant")
        counts = quality.counts(scope)
        labels: list[str] = []
        for ref in info.config.model_variants.values():
            labels += [x for x in quality.labels_of(ref) if x not in labels]
        return {v: dict(g.confusion) for v, g in counts.items()}, tuple(labels)

    def update_bandit_allocation(
        self, experiment_id: str, force: bool = False
    ) -> AllocationChange | None:
        """Recompute a bandit experiment's split if ``update_frequency`` has passed (or
        ``force``); every update is recorded in the allocation history."""
        config = self._config(experiment_id)
        if not config.is_bandit:
            raise ConflictError(f"experiment {experiment_id} uses a fixed allocation")
        load_statistics()
        from core.experiments.bandit import bandit_allocation
        from core.experiments.stopping import metric_arms

        now = self.clock()

        def make(info: ExperimentInfo, last: list[AllocationChange]):
            if info.status is not ExperimentStatus.RUNNING:
                return None
            since = max(last[0].at, info.started_at or last[0].at)
            if not force and (now - since).total_seconds() < config.update_frequency:
                return None
            arms = metric_arms(config, config.reward, self.store.metric_stats(experiment_id))
            return bandit_allocation(config, arms, info.allocation_version + 1)

        change = self.store.add_allocation(
            experiment_id,
            make,
            "bandit",
            f"{config.allocation_mode} update on {config.reward}",
            "bandit",
            "experiment.bandit_update",
        )
        if change is not None:
            self.router.invalidate(experiment_id)
        return change

    def check_experiment(self, experiment_id: str) -> list[CheckAction]:
        """One auto-stop / bandit pass over one RUNNING experiment."""
        info = self.store.get(experiment_id)
        if info.status is not ExperimentStatus.RUNNING:
            return []
        load_statistics()
        from core.experiments.analysis import srm_check
        from core.experiments.stopping import auto_stop_decision, metric_epochs

        config = info.config
        epochs = metric_epochs(config, config.primary, self.store.epoch_metric_stats(experiment_id))
        srm = srm_check(
            config, self.store.unit_counts(experiment_id), self.store.history(experiment_id)
        )
        decision = auto_stop_decision(
            config, epochs, info.started_at, self.clock(), srm["mismatch"]
        )
        if decision.stop:
            try:
                self.store.transition(
                    experiment_id,
                    ExperimentStatus.COMPLETED,
                    decision.reason,
                    "auto-stop",
                    event=(
                        "experiment.auto_stopped",
                        "warning" if decision.trigger == "max_duration" else "info",
                        f"experiment {experiment_id} stopped automatically: {decision.reason}",
                    ),
                )
            except InvalidTransitionError:
                return []  # another process stopped it first
            self.router.invalidate(experiment_id)
            data = {"trigger": decision.trigger, "winner": decision.winner}
            return [CheckAction(experiment_id, "auto_stopped", decision.reason, data)]
        if config.is_bandit:
            change = self.update_bandit_allocation(experiment_id)
            if change is not None:
                return [
                    CheckAction(experiment_id, "bandit_update", change.reason, change.to_dict())
                ]
        return []

    def check_experiments(self) -> list[CheckAction]:
        """One pass over every RUNNING experiment (what the background monitor runs)."""
        actions: list[CheckAction] = []
        for info in self.store.list(ExperimentStatus.RUNNING):
            actions += self.check_experiment(info.experiment_id)
        return actions


def get_ab_test_manager() -> ABTestManager:
    return get_context().service("ab_test_manager", ABTestManager)
