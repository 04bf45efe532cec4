"""Revealing a business's key (its USCC) to the bank's data partner, for joint modelling only.

A federated credit model needs the partner's half of each score, and the partner can only look
a business up by the key it knows — the unified social credit code, which Puhui stores
encrypted. Handing it over is providing data to another handler (PIPL Art. 23), so it happens
only when the applicant (the legal representative, for the business) has an active
``joint_modelling`` consent covering business data, and every reveal is written to the audit
log (fields, purpose; never the value). Without consent the caller gets the reason instead, and
the decision uses the model's fallback and says why.
"""

from __future__ import annotations

from datetime import datetime

from puhui.privacy import consent as consent_rules
from puhui.privacy.consent import DataCategory, Purpose
from puhui.privacy.errors import ConsentRequired
from puhui.privacy.personal_data import wrapped_key
from puhui.privacy.vault import Vault
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork

NO_CONSENT = "the applicant gave no joint-modelling consent covering business data"
ERASED = "the business's data has been erased"


def reveal_partner_key(
    uow: UnitOfWork, vault: Vault, *, applicant_id: str, enterprise_id: str, at: datetime
) -> tuple[str | None, str | None]:
    """``(uscc, None)`` under consent, audited; otherwise ``(None, reason)``."""
    try:
        consent_rules.require(
            uow.consents.for_applicant(applicant_id),
            subject=applicant_id,
            purpose=Purpose.JOINT_MODELLING,
            categories={DataCategory.ENTERPRISE},
            at=at,
        )
    except ConsentRequired:
        return None, NO_CONSENT
    enterprise = uow.session.get(m.Enterprise, enterprise_id)
    if enterprise is None or enterprise.uscc_enc is None:
        return None, ERASED
    key = wrapped_key(uow.data_keys.get(enterprise.data_key_id))
    if key is None:
        return None, ERASED
    uscc = vault.decrypt(key, enterprise.uscc_enc, "enterprises.uscc")
    uow.audit(
        action="personal_data.read",
        subject_type="enterprise",
        subject_id=enterprise.id,
        purpose=Purpose.JOINT_MODELLING.value,
        details={"fields": ["uscc"], "for": "the data partner's half of a federated score"},
    )
    return uscc, None
