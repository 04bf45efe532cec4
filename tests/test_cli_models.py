"""``puhui train`` and ``puhui models …`` end to end on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from puhui.cli import app
from puhui.settings import get_settings
from tests.conftest import Database

runner = CliRunner()


@pytest.fixture
def env(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PUHUI_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUHUI_DATABASE_URL", database.url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _csv(path: Path, seed: int = 3, n: int = 1200) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    grade = rng.choice(["A", "B", "C"], size=n)
    logit = -1.0 + 1.3 * x + np.where(grade == "C", 0.8, 0.0)
    status = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "bad", "good")
    pd.DataFrame({"x": x, "grade": grade, "noise": rng.normal(size=n), "status": status}).to_csv(
        path, index=False
    )
    return path


def test_train_register_promote_score_and_monitor(env: Path) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    data = _csv(env / "loans.csv")
    out = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--target",
            "status",
            "--bad-label",
            "bad",
            "--name",
            "sme-credit",
        ],
    )
    assert out.exit_code == 0, out.output
    assert re.search(r"test AUC \d\.\d{4}", out.output)
    model_id = re.search(r"registered (mdl_[0-9a-f]+)", out.output)
    assert model_id, out.output
    mid = model_id.group(1)
    listed = runner.invoke(app, ["models", "list"])
    assert mid in listed.output and "candidate" in listed.output
    assert "bundled default" in listed.output  # no champion yet

    refused = runner.invoke(app, ["models", "promote", mid, "--role", "champion"])
    assert refused.exit_code == 1 and "by" in refused.output  # who and why are required
    ok = runner.invoke(
        app,
        ["models", "promote", mid, "--role", "champion", "--by", "王经理", "--reason", "validated"],
    )
    assert ok.exit_code == 0, ok.output
    assert "champion" in runner.invoke(app, ["models", "list"]).output
    no = runner.invoke(app, ["models", "retire", mid, "--by", "x", "--reason", "old"])
    assert no.exit_code == 1 and "promote another champion first" in no.output

    scored = runner.invoke(
        app, ["models", "score", "--data", str(data), "--out", str(env / "scored.csv")]
    )
    assert scored.exit_code == 0, scored.output
    frame = pd.read_csv(env / "scored.csv")
    assert {"pd", "score", "reasons"} <= set(frame.columns) and len(frame) == 1200
    assert frame["pd"].between(0, 1).all()

    recent = _csv(env / "recent.csv", seed=9)
    calibrated = runner.invoke(
        app,
        [
            "models",
            "calibrate",
            mid,
            "--data",
            str(recent),
            "--target",
            "status",
            "--bad-label",
            "bad",
        ],
    )
    assert calibrated.exit_code == 0, calibrated.output
    assert "Brier" in calibrated.output and "v2 (candidate)" in calibrated.output

    monitored = runner.invoke(app, ["models", "monitor", "--json"])
    assert monitored.exit_code == 0, monitored.output
    assert '"applications": 0' in monitored.output


def test_train_reports_bad_input_clearly(env: Path) -> None:
    data = _csv(env / "loans.csv")
    out = runner.invoke(app, ["train", "--data", str(data), "--target", "nope", "--no-register"])
    assert out.exit_code == 1 and "no column 'nope'" in out.output
    out = runner.invoke(app, ["train", "--data", str(data), "--target", "status", "--no-register"])
    assert out.exit_code == 1 and "--bad-label" in out.output
    empty = env / "empty.csv"
    empty.write_text("")
    out = runner.invoke(app, ["train", "--data", str(empty), "--target", "status", "--no-register"])
    assert out.exit_code == 1 and "empty" in out.output
