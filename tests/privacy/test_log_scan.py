"""No unmasked identifier reaches the logs, whatever logs it: our code, SQLAlchemy, errors."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from puhui.domain.errors import ValidationError
from puhui.origination.submit import submit_application
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.masking import install_log_masking, uninstall_log_masking
from puhui.privacy.vault import Vault
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
from tests.conftest import Database

ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
CARD = re.compile(r"(?<!\d)\d{16,19}(?!\d)")


@pytest.fixture
def masked_logs() -> Iterator[None]:
    install_log_masking()
    try:
        yield
    finally:
        uninstall_log_masking()


def test_logs_of_a_whole_submission_hold_no_identifier(
    database: Database,
    institution: str,
    vault: Vault,
    indexer: BlindIndexer,
    caplog: pytest.LogCaptureFixture,
    masked_logs: None,
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # statements and parameters
    log = logging.getLogger("puhui.test")
    other_id = factories.id_number("19900215", "457")
    try:
        submit_application(UnitOfWork(database.sessions), vault, indexer, factories.application())
        # Someone logs carelessly: the filter must still mask it.
        log.info(
            "callback for %s on %s, card %s",
            factories.ID_NUMBER,
            factories.MOBILE,
            factories.BANK_CARD,
        )
        log.warning("raw payload: %r", factories.application())
        try:
            submit_application(
                UnitOfWork(database.sessions),
                vault,
                indexer,
                factories.application(
                    external_ref="R9",
                    legal_representative={
                        "id_number": other_id[:-1] + "0",
                        "mobile": "+86 139 1234 5678",
                    },
                ),
            )
        except ValidationError:
            log.exception("submission refused for %s", other_id)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    text = caplog.text
    assert "INSERT INTO applicants" in text  # SQL parameters were logged and scanned
    assert "callback for" in text
    for secret in (
        factories.ID_NUMBER,
        other_id,
        factories.MOBILE,
        "13912345678",
        factories.BANK_CARD,
    ):
        assert secret not in text
    leaks = ID_NUMBER.findall(text) + MOBILE.findall(text) + CARD.findall(text)
    assert leaks == [], leaks
