"""Master-key rotation: re-wrap every data key under the active master key.

Runs in small batches, one transaction each, while the platform keeps serving: until a data
key is re-wrapped it is still readable through its old (retired, but kept) master key, and a
re-wrapped one through the new key. Field ciphertexts are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from puhui.domain.clock import now_utc
from puhui.privacy.personal_data import wrapped_key
from puhui.privacy.vault import Vault
from puhui.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class RewrapResult:
    rewrapped: int
    active_master_id: str


def rewrap_all(
    sessions: sessionmaker[Session],
    vault: Vault,
    *,
    batch_size: int = 500,
    on_progress: Callable[[int, int], None] | None = None,
) -> RewrapResult:
    active = vault.keyring.active_master_id
    with UnitOfWork(sessions) as uow:
        counts = uow.data_keys.count_by_master()
    total = sum(n for k, n in counts.items() if k != active)
    done = 0
    while True:
        with UnitOfWork(sessions, actor="key-rotation") as uow:
            batch = uow.data_keys.needing_rewrap(active, batch_size)
            if not batch:
                break
            for row in batch:
                old = wrapped_key(row)
                assert old is not None
                new = vault.rewrap(old, active)
                row.master_key_id, row.wrapped = new.master_key_id, new.wrapped
                row.rewrapped_at = now_utc()
            uow.audit(
                action="keys.rewrapped",
                subject_type="master_key",
                subject_id=active,
                details={"data_keys": len(batch)},
            )
            uow.commit()
        done += len(batch)
        if on_progress:
            on_progress(done, total)
    return RewrapResult(done, active)
