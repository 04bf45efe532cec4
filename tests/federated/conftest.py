"""The federated tests need the system libsodium (ristretto255); without it they are skipped
with the reason shown, unless ``PUHUI_REQUIRE_LIBSODIUM=1`` (CI sets it) makes that a failure."""

from __future__ import annotations

import os

import pytest

from puhui.federated.psi import PsiError, PsiParty


def _libsodium_missing() -> str | None:
    try:
        PsiParty.from_seed(1).blind(["probe"])
    except PsiError as exc:
        return str(exc)
    return None


_MISSING = _libsodium_missing()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _MISSING is None:
        return
    if os.environ.get("PUHUI_REQUIRE_LIBSODIUM") == "1":
        raise pytest.UsageError(f"libsodium required but unusable: {_MISSING}")
    skip = pytest.mark.skip(reason=f"system libsodium (ristretto255) unavailable: {_MISSING}")
    for item in items:
        if "tests/federated" in str(item.fspath):
            item.add_marker(skip)
