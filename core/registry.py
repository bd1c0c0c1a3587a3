"""The model registry: versions, lifecycle, weights, comparison and history.

Weights are stored as safetensors (never pickle) in the content-addressed artifact store; the
architecture is rebuilt from ``metadata.architecture`` and ``training_config``. torch is imported
only by the methods that touch weights, so listing and comparing stay fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.comparison import compare_metadata
from core.context import Context, get_context
from core.deployments.crash_points import crash_point
from core.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    UnsafeArtifactError,
    ValidationError,
)
from core.lifecycle import ModelStatus, check_transition
from core.model_metadata import ModelMetadata
from core.semver import version_key
from core.served_versions import served_by
from data.artifacts import ArtifactIntegrityError
from data.tables import ModelTagRow, ModelVersionRow, StatusChangeRow
from data.types import utcnow

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class StatusChange:
    model_id: str
    version: str
    from_status: ModelStatus | None
    to_status: ModelStatus
    at: datetime
    actor: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "version": self.version,
            "from_status": self.from_status.value if self.from_status else None,
            "to_status": self.to_status.value,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StatusChange:
        return cls(
            d["model_id"],
            d["version"],
            ModelStatus(d["from_status"]) if d.get("from_status") else None,
            ModelStatus(d["to_status"]),
            datetime.fromisoformat(d["at"]),
            d["actor"],
            d["reason"],
        )


def _to_metadata(row: ModelVersionRow) -> ModelMetadata:
    return ModelMetadata(
        model_id=row.model_id,
        version=row.version,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        status=ModelStatus(row.status),
        framework=row.framework,
        architecture=row.architecture,
        dataset_version=row.dataset_version,
        training_config=dict(row.training_config or {}),
        metrics=dict(row.metrics or {}),
        file_size_bytes=row.file_size_bytes,
        checksum=row.checksum,
        tags=list(row.tags or []),
    )


class ModelRegistry:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.audit = ctx.audit

    # ---- registration -------------------------------------------------------------------

    def register_model(self, model: torch.nn.Module, metadata: ModelMetadata) -> bool:
        """Store the module's weights and its metadata. Fills in ``metadata.checksum`` and
        ``metadata.file_size_bytes``. Returns True; raises a NightScanError on bad input."""
        from inference.weights import state_dict_to_bytes

        self.register_weights(state_dict_to_bytes(model), metadata)
        return True

    def register_weights_file(self, path: str | os.PathLike, metadata: ModelMetadata) -> bool:
        """Register a ``.safetensors`` file or a plain state-dict ``.pt`` (loaded with
        ``weights_only=True``; anything that needs arbitrary unpickling is refused)."""
        from core.weights_intake import check_layout
        from inference.weights import (
            UnsafeWeightsError,
            is_safetensors_file,
            read_state_dict_file,
            safetensors_chunks,
        )

        if not os.path.isfile(path):
            raise NotFoundError(f"weights file not found: {path}")
        if is_safetensors_file(path):
            self._register_safetensors_file(path, metadata)
            return True
        metadata.validate()
        try:
            # Memory-mapped: the tensors are read from the file as they are written out.
            state = read_state_dict_file(path, mmap=True)
        except UnsafeWeightsError as exc:
            self.audit.record_now("model.register_refused", "model", metadata.ref, detail=str(exc))
            raise UnsafeArtifactError(str(exc)) from None
        except (ValueError, OSError) as exc:
            raise ValidationError(f"cannot read weights from {path}: {exc}") from None
        check_layout({k: tuple(v.shape) for k, v in state.items()}, metadata)
        self._refuse_duplicate(metadata)
        try:
            stored = self.ctx.weights.put_chunks(safetensors_chunks(state))
        except ValueError as exc:  # a dtype safetensors cannot hold
            raise ValidationError(f"cannot convert weights from {path}: {exc}") from None
        del state
        self._record(*stored, metadata)
        return True

    def register_weights(self, weights: bytes, metadata: ModelMetadata) -> ModelMetadata:
        """Register safetensors bytes. The weights must load into the declared architecture."""
        metadata.validate()
        self._check_loadable(weights, metadata)
        self._refuse_duplicate(metadata)
        return self._record(*self.ctx.weights.put(weights), metadata)

    def _register_safetensors_file(self, path: str | os.PathLike, metadata: ModelMetadata) -> None:
        """Checked from the header (tensor names and shapes against the architecture built on
        torch's meta device), then hashed and copied a chunk at a time: memory stays small
        whatever the file's size."""
        from core.weights_intake import check_layout
        from inference.weights import InvalidWeightsError, safetensors_layout

        metadata.validate()
        try:
            layout = safetensors_layout(path)
        except InvalidWeightsError as exc:
            raise ValidationError(str(exc)) from None
        check_layout(layout, metadata)
        self._refuse_duplicate(metadata)
        self._record(*self.ctx.weights.put_file(path), metadata)

    def _refuse_duplicate(self, metadata: ModelMetadata) -> None:
        with self.db.session() as session:
            if self.find_row(session, metadata.model_id, metadata.version) is not None:
                raise ConflictError(f"{metadata.ref} is already registered")

    def _record(self, digest: str, size: int, metadata: ModelMetadata) -> ModelMetadata:
        """The version's row, tags, status history and audit entry, once its weights are
        stored under ``digest``."""
        metadata.checksum, metadata.file_size_bytes = digest, size
        tags = sorted(set(metadata.tags))
        metadata.tags = tags
        row = ModelVersionRow(
            model_id=metadata.model_id,
            version=metadata.version,
            version_key=version_key(metadata.version),
            name=metadata.name or metadata.ref,
            description=metadata.description,
            created_at=metadata.created_at,
            status=metadata.status.value,
            framework=metadata.framework,
            architecture=metadata.architecture,
            dataset_version=metadata.dataset_version,
            training_config=metadata.training_config,
            metrics={k: float(v) for k, v in metadata.metrics.items()},
            file_size_bytes=size,
            checksum=digest,
            tags=tags,
        )
        try:
            crash_point("register:blob_stored")
            with self.db.write() as session:
                if self.find_row(session, metadata.model_id, metadata.version) is not None:
                    raise ConflictError(f"{metadata.ref} is already registered")
                # The weights are stored (and, in the database, locked until this commits):
                # the row never names a blob that a concurrent delete is removing.
                if not self.ctx.weights.hold(session, digest):
                    raise IntegrityError(
                        f"weights of {metadata.ref} (sha256 {digest}) vanished before its row "
                        "was written; register it again"
                    )
                session.add(row)
                session.flush()
                session.add_all(ModelTagRow(model_version_pk=row.id, tag=t) for t in tags)
                self._record_status(session, metadata, None, metadata.status, "registered")
                self.audit.record(
                    session, "model.register", "model", metadata.ref, after=metadata.to_dict()
                )
                crash_point("register:before_commit")
        except Exception:
            self._delete_artifact_if_unused(digest)
            raise
        metadata.name = row.name
        return metadata

    def _check_loadable(self, weights: bytes, metadata: ModelMetadata) -> None:
        from core.weights_intake import fitting

        fitting(metadata, lambda: self._build(weights, metadata))

    @staticmethod
    def _build(weights: bytes, metadata: ModelMetadata) -> torch.nn.Module:
        from core.weights_intake import num_classes_of
        from inference.architectures import build_model
        from inference.weights import load_into, state_dict_from_bytes

        features = metadata.training_config.get("features")
        model = build_model(metadata.architecture, num_classes_of(metadata), features)
        load_into(model, state_dict_from_bytes(weights))
        return model.eval()

    # ---- loading --------------------------------------------------------------------------

    def load_weights(self, model_id: str, version: str) -> bytes:
        """The stored weights, verified against the registered checksum. With blobs in the
        database, this host's cache file is verified first and fetched again on a miss or a
        mismatch."""
        meta = self.get_model(model_id, version)
        try:
            return self.ctx.weights.read(meta.checksum)
        except FileNotFoundError:
            raise IntegrityError(
                f"weights of {meta.ref} are missing from the {self._store_name()} "
                f"(expected sha256 {meta.checksum})"
            ) from None
        except ArtifactIntegrityError as exc:
            self._integrity_failure(meta, exc)

    def _store_name(self) -> str:
        return "artifact store" if self.ctx.weights.kind == "local" else "database blob store"

    def _integrity_failure(self, meta: ModelMetadata, exc: ArtifactIntegrityError) -> NoReturn:
        # A path relative to the home: enough to find the file, nothing about the host.
        where = self.ctx.weights.where(exc.path, self.ctx.settings.home)
        detail = (
            f"checksum mismatch for {meta.ref}: expected sha256 {exc.expected}, "
            f"actual {exc.actual}; refusing to load {where}"
        )
        self.audit.record_now("model.integrity_failure", "model", meta.ref, detail=detail)
        raise IntegrityError(detail) from None

    def verify_weights(self, model_id: str, version: str) -> dict[str, Any]:
        """Re-hash the stored weights against the registered checksum; raises IntegrityError
        (naming both digests) when they differ. With blobs in the database: the database blob
        (copied there from this host's cache when missing), then this host's cache file
        (fetched again when missing or wrong); ``store`` and ``cache`` say what was found."""
        meta = self.get_model(model_id, version)
        digest, weights = meta.checksum, self.ctx.weights
        published = weights.publish_from_cache(digest)
        try:
            actual, size = weights.digest_of(digest)  # streamed, not loaded
        except FileNotFoundError:
            raise IntegrityError(
                f"weights of {meta.ref} are missing from the {self._store_name()} "
                f"(expected sha256 {digest})"
            ) from None
        if actual != digest:
            where = (
                weights.cache.path(digest) if weights.origin is None else f"database blob {digest}"
            )
            self._integrity_failure(meta, ArtifactIntegrityError(digest, actual, where))
        try:
            cache = weights.verify_cache(digest).status
        except ArtifactIntegrityError as exc:
            self._integrity_failure(meta, exc)
        result = {"model_id": model_id, "version": version, "size": size, "checksum": digest}
        result |= {"store": weights.kind, "cache": "published" if published else cache}
        return result

    def load_model(self, model_id: str, version: str) -> torch.nn.Module:
        """The torch module in eval mode; the checksum is verified before the bytes are used."""
        weights = self.load_weights(model_id, version)
        return self._build(weights, self.get_model(model_id, version))

    # ---- queries --------------------------------------------------------------------------

    @staticmethod
    def find_row(session: Session, model_id: str, version: str) -> ModelVersionRow | None:
        return session.exec(
            select(ModelVersionRow).where(
                ModelVersionRow.model_id == model_id, ModelVersionRow.version == version
            )
        ).first()

    def require_row(self, session: Session, model_id: str, version: str) -> ModelVersionRow:
        row = self.find_row(session, model_id, version)
        if row is None:
            raise NotFoundError(f"model {model_id}:{version} is not registered")
        return row

    def get_model(self, model_id: str, version: str) -> ModelMetadata:
        with self.db.session() as session:
            return _to_metadata(self.require_row(session, model_id, version))

    def exists(self, model_id: str, version: str) -> bool:
        with self.db.session() as session:
            return self.find_row(session, model_id, version) is not None

    def _filtered(self, query, model_id, status, tag, framework):
        if model_id:
            query = query.where(ModelVersionRow.model_id == model_id)
        if status:
            query = query.where(ModelVersionRow.status == ModelStatus.parse(status).value)
        if framework:
            query = query.where(ModelVersionRow.framework == framework)
        if tag:
            query = query.join(ModelTagRow).where(ModelTagRow.tag == tag)
        return query

    def list_models(
        self,
        model_id: str | None = None,
        status: ModelStatus | str | None = None,
        tag: str | None = None,
        framework: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ModelMetadata]:
        """Versions matching every filter, by model id then semantic version."""
        if (limit is not None and limit < 0) or offset < 0:
            raise ValidationError("limit and offset must not be negative")
        query = self._filtered(select(ModelVersionRow), model_id, status, tag, framework)
        query = query.order_by(
            col(ModelVersionRow.model_id), col(ModelVersionRow.version_key)
        ).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.db.session() as session:
            return [_to_metadata(r) for r in session.exec(query).all()]

    def count_models(self, model_id=None, status=None, tag=None, framework=None) -> int:
        query = self._filtered(
            select(func.count()).select_from(ModelVersionRow), model_id, status, tag, framework
        )
        with self.db.session() as session:
            return int(session.exec(query).one())

    def get_versions(self, model_id: str) -> list[ModelMetadata]:
        return self.list_models(model_id=model_id)

    def get_latest_version(
        self, model_id: str, status: ModelStatus | str | None = None
    ) -> ModelMetadata | None:
        query = self._filtered(select(ModelVersionRow), model_id, status, None, None)
        query = query.order_by(col(ModelVersionRow.version_key).desc()).limit(1)
        with self.db.session() as session:
            row = session.exec(query).first()
        return _to_metadata(row) if row else None

    def compare_models(self, a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]:
        """The seed's comparison: ``result['metric_differences'][metric]['percentage_improvement']``
        says how much better b is than a (direction-aware: lower latency is an improvement)."""
        return compare_metadata(self.get_model(*a), self.get_model(*b))

    # ---- mutations ------------------------------------------------------------------------

    def update_status(
        self,
        model_id: str,
        version: str,
        status: ModelStatus | str,
        reason: str = "",
        actor: str | None = None,
    ) -> ModelMetadata:
        """Move a version along the lifecycle; an illegal move names the allowed ones. The
        deployments own DEPLOYED: a served version cannot leave it, and only a deploy enters it."""
        target = ModelStatus.parse(status)
        with self.db.write() as session:
            row = self.require_row(session, model_id, version)
            ref = f"{model_id}:{version}"
            check_transition(ref, ModelStatus(row.status), target)
            serving = served_by(session, model_id, version)
            if serving and target is not ModelStatus.DEPLOYED:
                raise ConflictError(
                    f"{ref} is served by deployment {', '.join(serving)}; roll it back or "
                    "undeploy it first (nightscan deployment rollback|undeploy ID)"
                )
            if target is ModelStatus.DEPLOYED and ModelStatus(row.status) is not target:
                raise ConflictError(
                    f"{ref}: DEPLOYED means a deployment serves it; "
                    f"`nightscan deploy {model_id} {version}` deploys it and sets the status"
                )
            return self.set_status_in(session, row, target, reason, actor)

    def set_status_in(
        self,
        session: Session,
        row: ModelVersionRow,
        target: ModelStatus,
        reason: str = "",
        actor: str | None = None,
    ) -> ModelMetadata:
        """The status change inside the caller's transaction (the deployment store's, so the
        deployment row and the registry status commit together), with its history and audit."""
        before = _to_metadata(row)
        check_transition(before.ref, before.status, target)
        row.status, row.updated_at = target.value, utcnow()
        session.add(row)
        after = replace(before, status=target)
        self._record_status(session, after, before.status, target, reason, actor)
        self.audit.record(
            session,
            "model.status",
            "model",
            before.ref,
            before={"status": before.status.value},
            after={"status": target.value},
            detail=reason,
            actor=actor,
        )
        return after

    promote = update_status

    def set_tags(
        self,
        model_id: str,
        version: str,
        add: list[str] = (),
        remove: list[str] = (),
        actor: str | None = None,
    ) -> ModelMetadata:
        with self.db.write() as session:
            row = self.require_row(session, model_id, version)
            old = list(row.tags or [])
            new = sorted((set(old) | {t.strip() for t in add if t.strip()}) - set(remove))
            row.tags, row.updated_at = new, utcnow()
            session.add(row)
            for t in set(old) - set(new):
                tag_row = session.get(ModelTagRow, (row.id, t))
                if tag_row is not None:
                    session.delete(tag_row)
            session.add_all(
                ModelTagRow(model_version_pk=row.id, tag=t) for t in set(new) - set(old)
            )
            self.audit.record(
                session,
                "model.tags",
                "model",
                f"{model_id}:{version}",
                before={"tags": old},
                after={"tags": new},
                actor=actor,
            )
            return _to_metadata(row)

    def update_metrics(
        self, model_id: str, version: str, metrics: dict[str, float]
    ) -> ModelMetadata:
        with self.db.write() as session:
            row = self.require_row(session, model_id, version)
            old = dict(row.metrics or {})
            row.metrics = {**old, **{k: float(v) for k, v in metrics.items()}}
            row.updated_at = utcnow()
            session.add(row)
            self.audit.record(
                session,
                "model.metrics",
                "model",
                f"{model_id}:{version}",
                before={"metrics": old},
                after={"metrics": row.metrics},
            )
            return _to_metadata(row)

    def delete_model(self, model_id: str, version: str, actor: str | None = None) -> None:
        """Remove a version that is not DEPLOYED; its weights go when no version shares them."""
        with self.db.write() as session:
            row = self.require_row(session, model_id, version)
            meta = _to_metadata(row)
            serving = served_by(session, model_id, version)
            if serving:
                raise ConflictError(
                    f"{meta.ref} is served by deployment {', '.join(serving)}; roll it back or "
                    "undeploy it before deleting"
                )
            if meta.status is ModelStatus.DEPLOYED:
                raise ConflictError(
                    f"{meta.ref} is DEPLOYED; retire it (registry promote {meta.ref} retired) "
                    "before deleting"
                )
            session.delete(row)
            self.audit.record(
                session, "model.delete", "model", meta.ref, before=meta.to_dict(), actor=actor
            )
        self._delete_artifact_if_unused(meta.checksum)

    def _delete_artifact_if_unused(self, digest: str) -> None:
        self.ctx.weights.delete_unused(digest)

    # ---- history --------------------------------------------------------------------------

    def _record_status(
        self,
        session: Session,
        meta: ModelMetadata,
        from_status: ModelStatus | None,
        to_status: ModelStatus,
        reason: str,
        actor: str | None = None,
    ) -> None:
        session.add(
            StatusChangeRow(
                model_id=meta.model_id,
                version=meta.version,
                from_status=from_status.value if from_status else None,
                to_status=to_status.value,
                at=utcnow(),
                actor=actor or self.ctx.settings.actor,
                reason=reason,
            )
        )

    def status_history(self, model_id: str, version: str | None = None) -> list[StatusChange]:
        query = select(StatusChangeRow).where(StatusChangeRow.model_id == model_id)
        if version:
            query = query.where(StatusChangeRow.version == version)
        with self.db.session() as session:
            rows = session.exec(query.order_by(col(StatusChangeRow.id))).all()
        return [
            StatusChange(
                r.model_id,
                r.version,
                ModelStatus(r.from_status) if r.from_status else None,
                ModelStatus(r.to_status),
                r.at,
                r.actor,
                r.reason,
            )
            for r in rows
        ]

    def versions_in_status_at(
        self, model_id: str, when: datetime, status: ModelStatus | str = ModelStatus.DEPLOYED
    ) -> list[str]:
        """Which versions of ``model_id`` were in ``status`` at time ``when`` (default DEPLOYED)."""
        target = ModelStatus.parse(status)
        if when.tzinfo is None:
            when = when.astimezone()
        last: dict[str, ModelStatus] = {}
        for change in self.status_history(model_id):
            if change.at <= when:
                last[change.version] = change.to_status
        return sorted((v for v, s in last.items() if s is target), key=version_key)

    def deployed_at(self, model_id: str, when: datetime) -> list[str]:
        return self.versions_in_status_at(model_id, when, ModelStatus.DEPLOYED)


def get_model_registry() -> ModelRegistry:
    return get_context().service("registry", ModelRegistry)
