"""Fixtures for servicing tests: a disbursed loan at DEMO_BANK on each database."""

from __future__ import annotations

import pytest

from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from tests.conftest import Database
from tests.servicing.loans import LoanRef, make_loan


@pytest.fixture
def loan(database: Database, institution: str, vault: Vault, indexer: BlindIndexer) -> LoanRef:
    """12,000.00 at 6 % over 12 months, 等额本息 on 30/360, disbursed 2026-01-15, 9 % 罚息:
    1,032.80 a month due on the 15th from 2026-02-15 (interest 60.00 in the first month)."""
    return make_loan(database, vault, indexer)
