"""The model registry on both databases: versions, roles, audit trail, and what serves."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from puhui.domain.errors import ValidationError
from puhui.privacy import audit
from puhui.risk.artifact import ModelArtifact
from puhui.risk.registry import list_models, load_artifact, promote, register, retire
from puhui.risk.serving import BUNDLED_ID, LiveModels
from puhui.risk.training import train_model
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests.conftest import Database

AT = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def _artifact(seed: int) -> ModelArtifact:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=1500)
    frame = pd.DataFrame({"x": x, "z": rng.normal(size=1500)})
    y = (rng.random(1500) < 1 / (1 + np.exp(2.5 - 1.2 * x))).astype(int)
    return train_model(frame, y, name="t", seed=seed, data_source="test").artifact


def uow(database: Database) -> UnitOfWork:
    return UnitOfWork(database.sessions, actor="test")


def test_register_versions_and_is_idempotent(database: Database) -> None:
    a, b = _artifact(1), _artifact(2)
    first = register(uow(database), a, name="sme", created_by="analyst")
    again = register(uow(database), a, name="sme", created_by="analyst")
    second = register(uow(database), b, name="sme", created_by="analyst")
    assert (first.version, second.version) == (1, 2)
    assert again.id == first.id and first.status == "candidate"
    assert first.sha256 == a.sha256 and first.test_auc is not None
    stored = load_artifact(uow(database), first.id)
    assert stored.to_json() == a.to_json()  # byte-identical round trip through the database


def test_promotion_retires_the_previous_holder_and_is_audited(database: Database) -> None:
    ids = [register(uow(database), _artifact(s), name="sme", created_by="a").id for s in (1, 2, 3)]
    promote(uow(database), ids[0], role="champion", by="王经理", reason="validated", at=AT)
    promote(uow(database), ids[1], role="challenger", by="王经理", reason="trial", at=AT)
    promote(uow(database), ids[2], role="champion", by="李总", reason="better KS", at=AT)
    status = {s.id: s.status for s in list_models(uow(database), "sme")}
    assert status == {ids[0]: "retired", ids[1]: "challenger", ids[2]: "champion"}
    newest = next(s for s in list_models(uow(database)) if s.id == ids[2])
    assert newest.promoted_by == "李总" and newest.status_reason == "better KS"
    with database.sessions() as s:
        events = s.scalars(
            select(m.Event.event_type).where(m.Event.aggregate_type == "model").order_by(m.Event.id)
        ).all()
        assert events.count("model.promoted_champion") == 2
        assert audit.verify(s).ok


def test_rules_on_promotion_and_retirement(database: Database) -> None:
    mid = register(uow(database), _artifact(1), name="sme", created_by="a").id
    with pytest.raises(ValidationError) as caught:
        promote(uow(database), mid, role="king", by="x", reason="y", at=AT)
    assert caught.value.errors[0].field == "role"
    with pytest.raises(ValidationError) as caught:
        promote(uow(database), mid, role="champion", by=" ", reason="y", at=AT)
    assert caught.value.errors[0].field == "by"
    promote(uow(database), mid, role="champion", by="x", reason="y", at=AT)
    with pytest.raises(ValidationError) as caught:
        retire(uow(database), mid, by="x", reason="old")
    assert caught.value.errors[0].rule == "model.champion_retire"
    with pytest.raises(ValidationError) as caught:
        promote(uow(database), "mdl_nope", role="champion", by="x", reason="y", at=AT)
    assert caught.value.errors[0].rule == "model.not_found"
    with pytest.raises(ValidationError):
        register(uow(database), _artifact(2), name="bad name!", created_by="a")


def test_live_models_serve_bundled_until_a_champion_is_promoted(database: Database) -> None:
    live = LiveModels(name="sme", ttl=0)
    with database.sessions() as s:
        assert live.current(s).champion.id == BUNDLED_ID
        assert live.current(s).challenger is None
    mid = register(uow(database), _artifact(1), name="sme", created_by="a").id
    cid = register(uow(database), _artifact(2), name="sme", created_by="a").id
    promote(uow(database), mid, role="champion", by="x", reason="y", at=AT)
    promote(uow(database), cid, role="challenger", by="x", reason="y", at=AT)
    with database.sessions() as s:
        pair = live.current(s)
        assert (pair.champion.id, pair.challenger and pair.challenger.id) == (mid, cid)
        assert pair.champion.version == "sme/v1"
