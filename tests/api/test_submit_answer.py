"""POST /v1/applications answers from the rows the decision wrote, without reading them back:
the answer must be exactly what reading the application gives (GET), for every outcome."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fastapi.testclient import TestClient

from puhui.api.app import create_app
from puhui.api.client import PartnerClient
from puhui.api.partners import create_partner
from puhui.bootstrap import Platform
from puhui.origination.seed import as_submission
from puhui.settings import Settings
from puhui.synthetic import generate
from tests.conftest import Database


def test_submit_answer_equals_the_read_back_view(database: Database, tmp_path: Path) -> None:
    platform = Platform(
        Settings(database_url=database.url, key_dir=tmp_path / "keys", var_dir=tmp_path)
    )
    creds = create_partner(platform.uow(), platform.vault, name="示范银行", code="DEMO_BANK")
    outcomes: Counter[str] = Counter()
    with TestClient(create_app(platform)) as http:
        client = PartnerClient(creds.client_id, creds.client_secret, http=http)
        for i, app in enumerate(generate(40, seed=11).applications):
            raw = as_submission(app)
            raw.pop("institution_code")
            raw.pop("submitted_at")
            if i < 4:  # one device, four people: the third is referred, the fourth declined
                raw["device_id"] = "device-shared-by-four"
            posted = client.post("/v1/applications", json=raw)
            assert posted.status_code == 201, posted.text
            answer = posted.json()
            assert answer.pop("applicant") is not None  # the masked echo: POST only
            read = client.get(f"/v1/applications/{answer['id']}").json()
            assert read.pop("applicant") is None
            assert answer == read
            outcomes[answer["state"]] += 1
    platform.close()
    assert outcomes["approved"] and outcomes["declined"] and outcomes["referred"], outcomes
