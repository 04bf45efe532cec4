"""The model registry: versioned artifacts, their metadata, and who made which one live.

Roles: ``candidate`` (registered, not serving), ``champion`` (decides), ``challenger``
(scored beside the champion on a deterministic share of applications, never decides),
``retired``. There is at most one champion and one challenger per model name; promoting a new
one retires the old. Every change of role is an outbox event with its audit record, so the
hash-chained audit log answers "who promoted this model, when, and why".

While no champion has been promoted, the platform serves the bundled default model
(:mod:`puhui.risk.bundled`), which is trained on synthetic data and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from puhui.domain.errors import ValidationError
from puhui.risk.artifact import ModelArtifact
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from puhui.federated.artifact import FederatedArtifact

ROLES = ("champion", "challenger")
DEFAULT_NAME = "sme-credit"


@dataclass(frozen=True)
class ModelSummary:
    id: str
    name: str
    version: int
    kind: str
    status: str
    sha256: str
    created_at: datetime
    created_by: str
    promoted_at: datetime | None
    promoted_by: str | None
    status_reason: str | None
    test_auc: float | None
    synthetic: bool

    @classmethod
    def of(cls, row: m.ModelVersion) -> ModelSummary:
        metrics = row.details.get("metrics", {}).get("test", {})
        return cls(
            row.id,
            row.name,
            row.version,
            row.kind,
            row.status,
            row.sha256,
            row.created_at,
            row.created_by,
            row.promoted_at,
            row.promoted_by,
            row.status_reason,
            metrics.get("auc"),
            bool(row.details.get("synthetic", False)),
        )


def _check_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise ValidationError.single(
            "name", "model.name_invalid", "1-64 letters, digits, '-', '_' or '.'"
        )


def register(
    uow: UnitOfWork,
    artifact: ModelArtifact | FederatedArtifact,
    *,
    name: str = DEFAULT_NAME,
    created_by: str,
) -> ModelSummary:
    """Store an artifact as the next candidate version of ``name``. Registering the same
    artifact again returns the existing version (idempotent)."""
    _check_name(name)
    digest = artifact.sha256
    with uow:
        s = uow.session
        existing = s.scalar(
            select(m.ModelVersion).where(
                m.ModelVersion.name == name, m.ModelVersion.sha256 == digest
            )
        )
        if existing is not None:
            return ModelSummary.of(existing)
        version = (
            s.scalar(select(func.max(m.ModelVersion.version)).where(m.ModelVersion.name == name))
            or 0
        ) + 1
        row = m.ModelVersion(
            name=name,
            version=version,
            kind=artifact.kind,
            status="candidate",
            sha256=digest,
            artifact=artifact.to_json(),
            details={k: v for k, v in artifact.metadata.items() if k != "profile"},
            created_by=created_by,
        )
        s.add(row)
        uow.flush()
        uow.record_event(
            aggregate_type="model",
            aggregate_id=row.id,
            event_type="model.registered",
            payload={"name": name, "version": version, "kind": artifact.kind, "sha256": digest},
        )
        uow.commit()
        return ModelSummary.of(row)


def _load(uow: UnitOfWork, model_id: str) -> m.ModelVersion:
    row = uow.session.get(m.ModelVersion, model_id)
    if row is None:
        raise ValidationError.single("model_id", "model.not_found", f"no model {model_id!r}")
    return row


def promote(
    uow: UnitOfWork, model_id: str, *, role: str, by: str, reason: str, at: datetime
) -> ModelSummary:
    """Make a model the champion or the challenger of its name; the one it replaces retires."""
    if role not in ROLES:
        raise ValidationError.single("role", "model.role_invalid", f"role must be one of {ROLES}")
    if not by.strip():
        raise ValidationError.single("by", "model.promoter_required", "say who promotes")
    if not reason.strip():
        raise ValidationError.single("reason", "model.reason_required", "say why")
    with uow:
        row = _load(uow, model_id)
        if row.status == "retired":
            raise ValidationError.single(
                "model_id", "model.retired", "a retired model cannot be promoted; register it again"
            )
        if row.status == role:
            return ModelSummary.of(row)
        for other in uow.session.scalars(
            select(m.ModelVersion).where(
                m.ModelVersion.name == row.name, m.ModelVersion.status == role
            )
        ):
            other.status = "retired"
            other.status_reason = f"replaced by v{row.version} as {role}"
        row.status = role
        row.promoted_at = at
        row.promoted_by = by
        row.status_reason = reason
        uow.flush()
        uow.record_event(
            aggregate_type="model",
            aggregate_id=row.id,
            event_type=f"model.promoted_{role}",
            payload={"name": row.name, "version": row.version, "by": by, "reason": reason},
        )
        uow.commit()
        return ModelSummary.of(row)


def retire(uow: UnitOfWork, model_id: str, *, by: str, reason: str) -> ModelSummary:
    """Take a model out of service. The champion cannot be retired while it is the only
    model deciding: promote its successor instead (which retires it)."""
    if not reason.strip():
        raise ValidationError.single("reason", "model.reason_required", "say why")
    with uow:
        row = _load(uow, model_id)
        if row.status == "champion":
            raise ValidationError.single(
                "model_id",
                "model.champion_retire",
                "promote another champion first; that retires this one",
            )
        if row.status != "retired":
            row.status = "retired"
            row.status_reason = reason
            uow.flush()
            uow.record_event(
                aggregate_type="model",
                aggregate_id=row.id,
                event_type="model.retired",
                payload={"name": row.name, "version": row.version, "by": by, "reason": reason},
            )
            uow.commit()
        return ModelSummary.of(row)


def list_models(uow: UnitOfWork, name: str | None = None) -> list[ModelSummary]:
    with uow:
        q = select(m.ModelVersion).order_by(m.ModelVersion.name, m.ModelVersion.version)
        if name:
            q = q.where(m.ModelVersion.name == name)
        return [ModelSummary.of(r) for r in uow.session.scalars(q)]


def load_artifact(uow: UnitOfWork, model_id: str) -> ModelArtifact:
    """An ordinary model's artifact; a federated model is refused with the reason (it scores
    only with its data partner online, one application at a time)."""
    with uow:
        text = _load(uow, model_id).artifact
    try:
        return ModelArtifact.from_json(text)
    except ValueError as exc:
        raise ValidationError.single("model_id", "model.not_batch_scorable", str(exc)) from exc
