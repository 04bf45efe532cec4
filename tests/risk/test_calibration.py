"""Recalibrating scores to a newer population's bad rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from puhui.risk import metrics
from puhui.risk.artifact import ModelArtifact
from puhui.risk.calibration import Calibration, fit_calibration
from puhui.risk.frame import DataError
from puhui.risk.training import train_model


def _sample(seed: int, shift: float, n: int = 4000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    kind = rng.choice(["a", "b", "c"], size=n)
    z = -2.0 + shift + 1.1 * x + np.where(kind == "c", 0.7, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return pd.DataFrame({"x": x, "kind": kind}), y


@pytest.fixture(scope="module")
def artifact() -> ModelArtifact:
    frame, y = _sample(1, 0.0)
    return train_model(frame, y, seed=1, data_source="test").artifact


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_follows_a_moved_bad_rate_and_keeps_the_ranking(
    artifact: ModelArtifact, method: str
) -> None:
    recent, y = _sample(2, 1.0)  # the same risk factors, a much higher base rate
    scores = artifact.scores(recent)
    stale = artifact.predict_pd(recent)
    assert abs(stale.mean() - y.mean()) > 0.05  # the old PDs are now badly off
    calibration = fit_calibration(scores, y, method)
    fresh = artifact.recalibrated(calibration, source="test")
    pd_new = fresh.predict_pd(recent)
    assert abs(pd_new.mean() - y.mean()) < 0.01
    assert metrics.brier(y, pd_new) < metrics.brier(y, stale)
    assert metrics.auc(y, pd_new) == pytest.approx(metrics.auc(y, stale), abs=0.01)
    order = np.argsort(scores)
    assert np.all(np.diff(calibration.pds(scores[order])) <= 1e-12)  # higher score, lower PD
    row = recent.iloc[0].to_dict()
    one = fresh.score_one(row)
    assert one.pd == pytest.approx(calibration.pd(one.score))
    assert one.score == artifact.score_one(row).score  # the score itself is untouched
    again = ModelArtifact.from_json(fresh.to_json())
    assert again.score_one(row).pd == pytest.approx(one.pd)
    assert again.sha256 != artifact.sha256


def test_round_trip_and_bad_input() -> None:
    c = Calibration("platt", a=1.5, b=-0.01, rows=10, bad_rate=0.1)
    assert Calibration.from_dict(c.to_dict()) == c
    with pytest.raises(DataError, match="method"):
        fit_calibration([1.0, 2.0], [0, 1], "magic")
    with pytest.raises(DataError, match="one class"):
        fit_calibration([1.0, 2.0, 3.0], [0, 0, 0])
