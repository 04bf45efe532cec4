"""Registering institutions: validation before writing, idempotent re-registration."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from puhui.domain.errors import ValidationError
from puhui.origination.institutions import register_institution
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests.conftest import Database


def _count(db: Database) -> int:
    with db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(m.Institution)) or 0)


def test_bad_input_lists_every_rule_and_writes_nothing(database: Database) -> None:
    with pytest.raises(ValidationError) as caught:
        register_institution(
            UnitOfWork(database.sessions), code="a b", name=" ", institution_type="casino"
        )
    assert set(caught.value.rules) == {"institution.code", "institution.name", "institution.type"}
    assert _count(database) == 0


def test_re_registering_is_idempotent_but_details_cannot_change(database: Database) -> None:
    first = register_institution(
        UnitOfWork(database.sessions), code="hzrcb", name="杭州农商行", institution_type="bank"
    )
    again = register_institution(
        UnitOfWork(database.sessions), code="HZRCB", name="杭州农商行", institution_type="bank"
    )
    assert first.id == again.id and first.code == "HZRCB"
    with pytest.raises(ValidationError) as caught:
        register_institution(
            UnitOfWork(database.sessions), code="HZRCB", name="另一家", institution_type="bank"
        )
    assert caught.value.rules == ("institution.code_taken",)
    assert _count(database) == 1
    with UnitOfWork(database.sessions) as uow:
        events = uow.events.for_aggregate("institution", first.id)
        assert [e.event_type for e in events] == ["institution.registered"]
