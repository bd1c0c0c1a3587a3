"""Ensembles: one deployment answered by several registered versions voting together.

``DeploymentConfig(..., ensemble={"models": ["id:v1", "id:v2", ...], "voting_strategy":
"weighted_average" | "majority", "weights": [...]})`` (the seed's ``ensemble_config``).

* Members must share their label set (order may differ: columns are aligned to the first
  member's labels) and their clip length; both are checked from the registry at deploy time,
  before anything loads, so a mismatch is a ``ValidationError``, never a failed deployment.
* Each member runs on its own batched runtime, shared with any deployment serving that version
  in this process; one request is submitted to all members at once (``asyncio.gather`` over
  ``runtime.infer``), so the ensemble costs the slowest member's latency, not the sum.
* ``weighted_average``: per window, ``sum(w_i * p_i) / sum(w_i)`` of the members'
  probabilities. ``majority``: every member votes for its top class with its weight; the
  result is the vote shares (within 1e-4), ties broken by the weighted-average probabilities.
* The ensemble's ``model_ref`` is ``ensemble:<deployment_id>@<digest of the spec>``: another
  spec on the same deployment is another "version" (so a switch or a canary between two
  ensembles is a real change), and the prediction names the members.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from core.deployments.probe import probe_runtime
from core.deployments.sections import EnsembleSpec
from core.deployments.served import ServedModel
from core.errors import ValidationError
from core.lifecycle import TRANSITIONS, ModelStatus
from core.model_metadata import parse_model_ref

if TYPE_CHECKING:
    from core.deployments.config import DeploymentConfig
    from core.deployments.loader import ModelLoader
    from core.model_metadata import ModelMetadata
    from core.registry import ModelRegistry

# Weight of the averaged probabilities in majority votes: breaks ties (visible in float32) while
# moving a vote share by at most 1e-4.
TIE_BREAK = 1e-4


def combine(outputs: list[np.ndarray], weights: tuple[float, ...], strategy: str) -> np.ndarray:
    """Members' aligned probabilities ``[k, C]`` each -> the ensemble's ``[k, C]``."""
    stack = np.stack([np.asarray(o, dtype=np.float64) for o in outputs])  # [M, k, C]
    w = np.asarray(weights, dtype=np.float64)[:, None, None]
    average = (w * stack).sum(axis=0) / w.sum()
    if strategy == "weighted_average":
        return average.astype(np.float32)
    votes = np.zeros_like(average)
    top = stack.argmax(axis=2)  # [M, k]
    for m in range(stack.shape[0]):
        votes[np.arange(top.shape[1]), top[m]] += w[m, 0, 0]
    scores = votes / w.sum() + TIE_BREAK * average
    return (scores / scores.sum(axis=1, keepdims=True)).astype(np.float32)


class EnsembleRuntime:
    """Quacks like ``BatchedRuntime`` for the predictor, the probe and the supervisor; the
    members' runtimes belong to the serving pool, so closing this closes nothing."""

    def __init__(self, members: list[ServedModel], spec: EnsembleSpec, labels: list[str]) -> None:
        self.members = members
        self.spec = spec
        self._columns = [[m.labels.index(label) for label in labels] for m in members]

    def _combine(self, outputs: list[np.ndarray]) -> np.ndarray:
        aligned = [np.asarray(o)[:, cols] for o, cols in zip(outputs, self._columns, strict=True)]
        return combine(aligned, self.spec.weights, self.spec.voting_strategy)

    async def infer(self, windows: np.ndarray) -> np.ndarray:
        outputs = await asyncio.gather(*(m.runtime.infer(windows) for m in self.members))
        return self._combine(list(outputs))

    def submit(self, windows: np.ndarray) -> Future[np.ndarray]:
        futures = [m.runtime.submit(windows) for m in self.members]
        result: Future[np.ndarray] = Future()
        remaining = [len(futures)]
        lock = threading.Lock()

        def done(_: Future) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            try:
                result.set_result(self._combine([f.result() for f in futures]))
            except Exception as exc:  # a member failed: the ensemble fails
                result.set_exception(exc)

        for f in futures:
            f.add_done_callback(done)
        return result

    def infer_now(self, windows: np.ndarray, timeout: float | None = None) -> np.ndarray:
        return self._combine([m.runtime.infer_now(windows, timeout) for m in self.members])

    @property
    def queue_depth(self) -> int:
        return max(m.runtime.queue_depth for m in self.members)

    @property
    def replicas(self) -> int:
        return min(m.runtime.replicas for m in self.members)

    def set_replicas(self, n: int) -> None:
        for m in self.members:
            m.runtime.set_replicas(n)

    def batch_size_counts(self) -> dict[int, int]:
        total: Counter[int] = Counter()
        for m in self.members:
            total.update(m.runtime.batch_size_counts())
        return dict(total)

    @property
    def closed(self) -> bool:
        return any(m.runtime.closed for m in self.members)

    def close(self, drain: bool = True, timeout: float = 10.0) -> bool:
        return True


@dataclass
class EnsembleModel(ServedModel):
    members: list[ServedModel] = field(default_factory=list)
    spec: EnsembleSpec | None = None

    def describe(self) -> dict[str, Any]:
        assert self.spec is not None
        return {**self.spec.to_dict(), "members": [m.model_ref for m in self.members]}


class EnsembleLoader:
    """Checks ensemble configs against the registry and builds their runtimes."""

    def __init__(
        self,
        registry: ModelRegistry,
        loader: ModelLoader,
        served: Callable[[str], ServedModel | None],
    ) -> None:
        self.registry = registry
        self.loader = loader
        self.served = served  # the runtime this process already serves for a version, if any

    def _metas(self, spec: EnsembleSpec) -> list[ModelMetadata]:
        return [self.registry.get_model(*parse_model_ref(r)) for r in spec.members]

    def check(self, config: DeploymentConfig) -> EnsembleSpec:
        """Members exist, may be deployed, share one label set and one clip length."""
        from inference.features import FeatureConfig

        spec = EnsembleSpec.parse(config.ensemble)
        if config.model_ref not in spec.members:
            raise ValidationError(
                f"{config.model_ref} is not a member of the ensemble; leave model_id and "
                "version empty (the first member is used) or name a member"
            )
        metas = self._metas(spec)
        for meta in metas:
            if meta.status is not ModelStatus.DEPLOYED and (
                ModelStatus.DEPLOYED not in TRANSITIONS[meta.status]
            ):
                raise ValidationError(
                    f"ensemble member {meta.ref} is {meta.status.value.upper()}; only "
                    "VALIDATION, TESTING, RETIRED or DEPLOYED versions can serve"
                )
        first = metas[0]
        for meta in metas[1:]:
            if set(meta.labels) != set(first.labels) or len(meta.labels) != len(first.labels):
                raise ValidationError(
                    f"ensemble members must share their labels: {first.ref} has "
                    f"{sorted(first.labels)}, {meta.ref} has {sorted(meta.labels)}"
                )
        clips = {
            m.ref: FeatureConfig.from_dict(m.training_config.get("features") or {}).clip_samples
            for m in metas
        }
        if len(set(clips.values())) > 1:
            raise ValidationError(f"ensemble members must share their clip length: {clips}")
        return spec

    def load(self, config: DeploymentConfig, verify: bool = False) -> EnsembleModel:
        """Members from the pool when served here already, otherwise loaded (and warmed up);
        ``verify`` also probes the ensemble as a whole, like a single version's deploy."""
        spec = self.check(config)
        ref = spec.ref(config.deployment_id)
        existing = self.served(ref)
        if isinstance(existing, EnsembleModel):
            return existing
        members: list[ServedModel] = []
        loaded: list[ServedModel] = []
        try:
            for meta in self._metas(spec):
                served = self.served(meta.ref)
                if served is None:
                    served = self.loader.load(meta, config)
                    loaded.append(served)
                members.append(served)
            labels = list(members[0].labels)
            model = EnsembleModel(
                ref, labels, members[0].clip_samples,
                EnsembleRuntime(members, spec, labels), members[0].device,
                members=members, spec=spec,
            )  # fmt: skip
            if verify:
                result = probe_runtime(model, timeout_s=float(config.health_check.timeout))
                if not result.ok:
                    raise RuntimeError(f"health check failed: {result.detail}")
        except Exception:
            for served in loaded:
                served.runtime.close(drain=False)
            raise
        return model
