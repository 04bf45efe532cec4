"""The bundled default model: labelled synthetic, and reproducible from its code and seed."""

from __future__ import annotations

import pytest

from puhui.risk import bundled
from puhui.risk.features import FEATURES


def test_bundled_model_says_it_is_synthetic_and_scores() -> None:
    artifact = bundled.load()
    assert artifact.kind == "scorecard"
    assert artifact.metadata["synthetic"] is True
    assert "puhui.synthetic.generate" in artifact.metadata["data"]["source"]
    assert set(artifact.features) <= set(FEATURES)
    result = artifact.score_one({"tax_grade": "A", "years_in_business": 12.0})
    assert 0 < result.pd < 1
    assert abs(result.base + sum(c.points for c in result.contributions) - result.score) < 1e-6


@pytest.mark.slow
def test_shipped_file_is_what_the_code_and_seed_build() -> None:
    rebuilt = bundled.build().artifact
    shipped = bundled.load()
    assert rebuilt.model.to_dict() == shipped.model.to_dict()
    assert rebuilt.metadata["data"]["sha256"] == shipped.metadata["data"]["sha256"]
