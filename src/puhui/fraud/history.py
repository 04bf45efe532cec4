"""The platform's own history as ring-finder input: every application's links, from the
link table (blind indexes only), with submission times, receiving institutions and the labels
reviewers gave (confirmed fraud 1, cleared 0, unknown −1).

Used by ``puhui fraud rings`` without ``--from``. The institution codes are for the
operator's eyes — the command runs on the platform side; partners only ever see counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from puhui.fraud.links import LinkKind, LinkTable, RecordMeta, kind_code
from puhui.store import models as m

if TYPE_CHECKING:
    from puhui.bootstrap import Platform

BATCH = 50_000


def platform_links(platform: Platform) -> tuple[LinkTable, RecordMeta]:
    with platform.sessions() as s:
        codes = dict(s.execute(select(m.Institution.id, m.Institution.code)).tuples().all())
        apps = s.execute(
            select(
                m.Application.id, m.Application.submitted_at, m.Application.institution_id
            ).order_by(m.Application.submitted_at, m.Application.id)
        ).all()
        ids = [a.id for a in apps]
        position = {a: i for i, a in enumerate(ids)}
        stamps = np.array([a.submitted_at.timestamp() for a in apps], dtype=np.float64)
        institutions = [codes.get(a.institution_id, "?") for a in apps]
        labels = np.full(len(ids), -1, dtype=np.int8)
        for application_id, outcome in s.execute(
            select(m.FraudReview.application_id, m.FraudReview.outcome).order_by(
                m.FraudReview.reviewed_at
            )
        ):
            if application_id in position:  # the latest verdict wins
                labels[position[application_id]] = 1 if outcome == "confirmed" else 0
        kinds = {k.value: kind_code(k) for k in LinkKind}
        records: list[int] = []
        kind_codes: list[int] = []
        keys: list[str] = []
        rows = s.execute(
            select(m.FraudLink.application_id, m.FraudLink.kind, m.FraudLink.key).execution_options(
                yield_per=BATCH
            )
        )
        for application_id, kind, key in rows:
            records.append(position[application_id])
            kind_codes.append(kinds[kind])
            keys.append(key)
    table = LinkTable.from_arrays(
        np.array(records, dtype=np.int64),
        np.array(kind_codes, dtype=np.int8),
        np.array(keys, dtype=object),
        ids,
    )
    return table, RecordMeta(ids, stamps, institutions, labels)
