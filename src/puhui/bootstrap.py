"""Wiring: build the platform's long-lived parts once per process from the settings.

The CLI and the API both start here, so a command and the server see the same database, the
same keys and the same migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.keys import KeyRing
from puhui.privacy.vault import Vault
from puhui.settings import Settings, get_settings
from puhui.store.db import make_engine, make_session_factory
from puhui.store.unit_of_work import UnitOfWork


@dataclass
class Platform:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.resolved_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def keyring(self) -> KeyRing:
        return KeyRing.load_or_create(self.settings.resolved_key_dir)

    @cached_property
    def vault(self) -> Vault:
        return Vault(self.keyring)

    @cached_property
    def indexer(self) -> BlindIndexer:
        return BlindIndexer.from_keyring(self.keyring)

    def uow(self, actor: str = "system") -> UnitOfWork:
        return UnitOfWork(self.sessions, actor=actor, audit_sealing=self.settings.audit_sealing)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def platform(settings: Settings | None = None) -> Platform:
    return Platform(settings or get_settings())
