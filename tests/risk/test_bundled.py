"""The bundled default model: labelled synthetic, and reproducible from its code and seed."""

from __future__ import annotations

import math
from typing import Any

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


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two model dicts differ: exactly, except floats, which may differ in the last bits.

    The logistic fit runs on the machine's BLAS, whose kernels depend on the CPU: the same
    code and seed give coefficients that differ in the 16th digit on another processor (seen
    on an AVX-512 machine), while the bins, counts and rounded points stay identical.
    """
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, int | float) and isinstance(b, int | float):
            return (
                [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else [f"{path}: {a} != {b}"]
            )
        return [f"{path}: {a!r} != {b!r}"]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_model_comparison_tolerates_only_the_last_bits() -> None:
    assert _differences({"c": [0.6805841465147995]}, {"c": [0.6805841465147996]}) == []
    assert _differences({"c": [0.68058]}, {"c": [0.68059]}) == [".c[0]: 0.68058 != 0.68059"]
    assert _differences({"n": 3}, {"n": 4}) == [".n: 3 != 4"]
    assert _differences({"a": "A"}, {"a": "B"}) == [".a: 'A' != 'B'"]


@pytest.mark.slow
def test_shipped_file_is_what_the_code_and_seed_build() -> None:
    rebuilt = bundled.build().artifact
    shipped = bundled.load()
    assert _differences(rebuilt.model.to_dict(), shipped.model.to_dict()) == []
    assert rebuilt.metadata["data"]["sha256"] == shipped.metadata["data"]["sha256"]
