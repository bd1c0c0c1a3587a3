"""``LocalServing``: the one owner of what this process serves.

It holds one batched runtime per model version (shared by every deployment and experiment variant
that uses it) and the deployment -> version map, behind a lock that no other module takes. It
has the single get-or-load path and a serialized ``reconcile`` to the database's desired state.
Everyone else reads a ``ServingSnapshot``: frozen maps taken under the lock.

Switching a deployment to another version is one dict assignment under the lock: requests already
queued on the old runtime finish there, new ones go to the new runtime, so a rollback fails no
request in flight. A runtime nobody references any more is drained and closed in the background.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from core.deployments.config import DeploymentConfig
from core.deployments.ensemble import EnsembleLoader
from core.deployments.info import DeploymentInfo
from core.deployments.loader import ModelLoader
from core.deployments.served import (
    CanaryRoute,
    ServedDeployment,
    ServedModel,
    models_in,
    stable_fraction,
)
from core.deployments.store import DeploymentStore
from core.events import emit
from core.model_metadata import ModelMetadata
from core.registry import ModelRegistry

log = logging.getLogger(__name__)
Local = tuple[ServedDeployment, ServedModel]


@dataclass(frozen=True)
class ServingSnapshot:
    """What this process served at one instant (the maps are copies; read-only views)."""

    deployments: Mapping[str, ServedDeployment]
    models: Mapping[str, ServedModel]

    def model_for(self, deployment_id: str) -> Local | None:
        dep = self.deployments.get(deployment_id)
        return None if dep is None else (dep, self.models[dep.model_ref])


class LocalServing:
    def __init__(
        self,
        store: DeploymentStore,
        registry: ModelRegistry,
        loader: ModelLoader,
        on_install: Callable[[str, ServedModel], None] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.loader = loader
        self.ensembles = EnsembleLoader(registry, loader, self.served_model)
        self.on_install = on_install  # (deployment id, model): the tracker's gauges
        self._lock = threading.RLock()
        self._reconciling = threading.Lock()  # one reconcile at a time, whoever starts it
        self._models: dict[str, ServedModel] = {}
        self._deployments: dict[str, ServedDeployment] = {}
        self._pinned: set[str] = set()  # versions served for experiments without a deployment
        self._handover: dict[str, ServedModel] = {}  # verified canaries, installed on reconcile

    # ---- reads ---------------------------------------------------------------------------

    def snapshot(self) -> ServingSnapshot:
        with self._lock:
            return ServingSnapshot(
                MappingProxyType(dict(self._deployments)), MappingProxyType(dict(self._models))
            )

    @property
    def deployments(self) -> Mapping[str, ServedDeployment]:
        return self.snapshot().deployments

    @property
    def models(self) -> Mapping[str, ServedModel]:
        return self.snapshot().models

    def model_for(self, deployment_id: str) -> Local | None:
        with self._lock:
            dep = self._deployments.get(deployment_id)
            return None if dep is None else (dep, self._models[dep.model_ref])

    def served_model(self, ref: str) -> ServedModel | None:
        with self._lock:
            return self._models.get(ref)

    def pick(self, request_id: str, model_id: str | None = None) -> str | None:
        """Choose a deployment by the deployments' traffic percentages, sticky per request id."""
        candidates = sorted(
            (d.config.deployment_id, d.config.traffic_percentage)
            for d in self.deployments.values()
            if d.healthy and (model_id is None or d.config.model_id == model_id)
        )
        total = sum(w for _, w in candidates)
        if not candidates or total <= 0:
            return None
        point = stable_fraction(f"traffic:{request_id}") * total
        for deployment_id, weight in candidates:
            if point < weight:
                return deployment_id
            point -= weight
        return candidates[-1][0]

    # ---- the one get-or-load path --------------------------------------------------------

    def load(self, meta: ModelMetadata, config: DeploymentConfig, verify: bool = False):
        """A fresh runtime for a version or an ensemble; ``verify`` also probes it (a deploy)."""
        if config.ensemble:
            return self.ensembles.load(config, verify=verify)
        return self.loader.verified_load(meta, config) if verify else self.loader.load(meta, config)

    def get_or_load(self, meta: ModelMetadata, config: DeploymentConfig) -> ServedModel:
        """The runtime this process serves for ``config``, loading it when it has none."""
        existing = self.served_model(config.serving_ref)
        return existing if existing is not None else self.load(meta, config)

    def serve_for_experiment(self, model_ref: str) -> ServedModel:
        """A version's runtime kept for an experiment variant that no deployment serves."""
        served = self.served_model(model_ref)
        if served is None:
            model_id, version = model_ref.rsplit(":", 1)
            meta = self.registry.get_model(model_id, version)
            served = self.load(meta, DeploymentConfig(model_id=model_id, version=version))
        with self._lock:
            existing = self._models.setdefault(model_ref, served)
            self._pinned.add(model_ref)
        if existing is not served:  # another request loaded it meanwhile
            served.runtime.close(drain=False)
        return existing

    def hand_over(self, served: ServedModel) -> None:
        """A canary verified by the deploying call, to be installed by the next reconcile."""
        with self._lock:
            self._handover[served.model_ref] = served

    # ---- installing ----------------------------------------------------------------------

    def install(
        self,
        config: DeploymentConfig,
        served: ServedModel,
        generation: int,
        canary: CanaryRoute | None = None,
    ) -> None:
        """Point a deployment at a model, atomically for requests."""
        with self._lock:
            existing = self._models.get(served.model_ref)
            if existing is not None and existing.runtime is not served.runtime:
                served.runtime.close(drain=False)  # already serving that version: reuse it
                served = existing
            dep = ServedDeployment(config, served.model_ref, generation, canary=canary)
            for m in models_in(served) + (models_in(canary.model) if canary else []):
                self._models.setdefault(m.model_ref, m)
            previous = self._deployments.get(config.deployment_id)
            if previous is not None and previous.model_ref == dep.model_ref:
                # Same version, new generation (a canary step, a config change): its health
                # history carries over, or every step would reset the failure count.
                dep.consecutive_failures = previous.consecutive_failures
                dep.healthy = previous.healthy
                dep.last_probe = previous.last_probe
            self._deployments[config.deployment_id] = dep
        self._release_unused()
        if self.on_install is not None:
            self.on_install(config.deployment_id, served)

    def remove(self, deployment_id: str) -> None:
        with self._lock:
            self._deployments.pop(deployment_id, None)
        self._release_unused()

    def _release_unused(self) -> None:
        """Close runtimes that neither a deployment nor an experiment uses."""
        with self._lock:
            deps = self._deployments.values()
            used = {d.model_ref for d in deps} | self._pinned
            used |= {d.canary.model.model_ref for d in deps if d.canary}
            groups = [models_in(self._models[r]) for r in used if r in self._models]
            used |= {m.model_ref for group in groups for m in group}  # ensemble members
            closing = [self._models.pop(ref) for ref in list(self._models) if ref not in used]
        for model in closing:
            # Drain off the caller's thread: in-flight requests finish on the old runtime.
            threading.Thread(
                target=model.runtime.close, kwargs={"drain": True}, daemon=True,
                name=f"drain-{model.model_ref}",
            ).start()  # fmt: skip

    # ---- reconciling to the database -----------------------------------------------------

    def reconcile(self) -> None:
        """Bring this process's runtimes to the database's desired state (restore on start).
        Serialized: the loop, a request that finds nothing served and a control-plane call may
        all ask at once; the second waits and then finds the work done."""
        with self._reconciling:
            wanted = {d.deployment_id: d for d in self.store.list()}
            local = {k: v.generation for k, v in self.deployments.items()}
            for deployment_id in set(local) - set(wanted):
                self.remove(deployment_id)
            for deployment_id, info in wanted.items():
                if local.get(deployment_id) == info.generation:
                    continue
                try:
                    self._reconcile_one(info)
                except Exception as exc:  # one broken deployment must not stop the others
                    log.warning("cannot serve %s: %s", deployment_id, exc)
                    emit(
                        "deployment.restore_failed",
                        f"{deployment_id} ({info.model_ref}) cannot be served here: {exc}",
                        source=deployment_id,
                        severity="critical",
                    )
            self._drop_handover()

    def reconcile_one(self, info: DeploymentInfo) -> Local:
        """Serve one deployment here now (a request for a deployment this process lacks)."""
        with self._reconciling:
            return self._reconcile_one(info)

    def _reconcile_one(self, info: DeploymentInfo) -> Local:
        meta = self.registry.get_model(info.model_id, info.version)
        served = self.get_or_load(meta, info.config)
        self.install(info.config, served, info.generation, self._canary_route(info))
        return self.model_for(info.deployment_id)

    def _canary_route(self, info: DeploymentInfo) -> CanaryRoute | None:
        row = self.store.active_canary(info.deployment_id)
        if row is None:
            return None
        config = DeploymentConfig.from_dict(row.config)
        with self._lock:
            handed = self._handover.pop(row.canary_ref, None)
        served = self.served_model(row.canary_ref)
        if served is None:
            served = handed
        elif handed is not None and handed.runtime is not served.runtime:
            handed.runtime.close(drain=False)
        if served is None:
            try:
                meta = self.registry.get_model(row.model_id, row.version)
                served = self.load(meta, config)
            except Exception as exc:  # the stable version keeps serving everything here
                log.warning("canary %s cannot be served here: %s", row.canary_ref, exc)
                emit(
                    "canary.restore_failed",
                    f"{info.deployment_id}: canary {row.canary_ref} cannot be served here: {exc}",
                    source=info.deployment_id,
                    severity="critical",
                )
                return None
        salt = f"canary:{info.deployment_id}:{row.id}"
        return CanaryRoute(served, row.weight, row.id, salt, config.health_check)

    def _drop_handover(self) -> None:
        """Canaries verified here but not served here are not needed."""
        with self._lock:
            handed, self._handover = list(self._handover.values()), {}
        for served in handed:
            served.runtime.close(drain=False)

    def apply(self, deployment_id: str) -> None:
        """Re-route now when this process serves the deployment (others reconcile)."""
        with self._reconciling:
            if deployment_id in self.deployments:
                info = self.store.get(deployment_id)
                if info.status == "running":
                    self._reconcile_one(info)
                else:
                    self.remove(deployment_id)
            self._drop_handover()

    def close(self) -> None:
        with self._lock:
            models = list(self._models.values())
            self._models.clear()
            self._deployments.clear()
        for model in models:
            model.runtime.close(drain=True)
