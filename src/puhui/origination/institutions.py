"""Registering the lending institutions that use the platform (the operator and its partners)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from puhui.domain.errors import ErrorCollector, ValidationError
from puhui.domain.pricing import InstitutionType
from puhui.store.models import Institution
from puhui.store.unit_of_work import UnitOfWork

_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,31}$")


@dataclass(frozen=True)
class InstitutionInfo:
    id: str
    code: str
    name: str
    institution_type: str

    @classmethod
    def of(cls, row: Institution) -> InstitutionInfo:
        return cls(row.id, row.code, row.name, row.institution_type)


def register_institution(
    uow: UnitOfWork, *, code: str, name: str, institution_type: str
) -> InstitutionInfo:
    """Create an institution; re-registering the same code with the same details is a no-op."""
    errors = ErrorCollector()
    code = code.strip().upper()
    if not _CODE.match(code):
        errors.add(
            "code",
            "institution.code",
            "code must be 2-32 characters: capital letters, digits, underscore",
        )
    name = name.strip()
    if not 1 <= len(name) <= 200:
        errors.add("name", "institution.name", "name must be 1-200 characters")
    try:
        kind = InstitutionType(institution_type)
    except ValueError:
        errors.add(
            "institution_type",
            "institution.type",
            f"type must be one of {sorted(t.value for t in InstitutionType)}",
        )
    errors.raise_if_any()
    with uow:
        existing = uow.institutions.by_code(code)
        if existing is not None:
            if existing.name != name or existing.institution_type != kind.value:
                raise ValidationError.single(
                    "code",
                    "institution.code_taken",
                    f"institution {code} already exists with other details",
                )
            return InstitutionInfo.of(existing)
        inst = uow.institutions.add(Institution(code=code, name=name, institution_type=kind.value))
        uow.flush()
        uow.record_event(
            aggregate_type="institution",
            aggregate_id=inst.id,
            event_type="institution.registered",
            institution_id=inst.id,
            payload={"code": code, "institution_type": kind.value},
        )
        uow.commit()
        return InstitutionInfo.of(inst)
