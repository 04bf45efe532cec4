"""The pieces SecureBoost's losslessness rests on: parameters, binning, fixed point, candidates."""

from __future__ import annotations

import numpy as np
import pytest

from puhui.federated.paillier import generate_keypair
from puhui.federated.secureboost import SecureBoostParams
from puhui.federated.secureboost.binning import (
    apply_bins,
    as_features,
    feature_edges,
    goes_left,
    threshold,
)
from puhui.federated.secureboost.encoding import (
    Layout,
    pack_rows,
    quantise,
    split_slots,
    unpack_sum,
)
from puhui.federated.secureboost.histogram import EncryptedHistograms
from puhui.federated.secureboost.split import (
    candidate_specs,
    candidate_sums,
    left_of_codes,
    node_histograms,
)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"n_trees": 0}, "n_trees"),
        ({"max_depth": 0}, "max_depth"),
        ({"max_depth": 3.0}, "max_depth"),
        ({"n_bins": 1}, "n_bins"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"reg_lambda": -1.0}, "reg_lambda"),
        ({"min_child_weight": -0.1}, "min_child_weight"),
        ({"min_split_gain": -1}, "min_split_gain"),
        ({"fixed_point_bits": 60}, "fixed_point_bits"),
        ({"key_bits": 1024}, "key_bits"),
        ({"workers": 0}, "workers"),
        ({"guest_only_first_tree": 1}, "guest_only_first_tree"),
        ({"n_trees": True}, "n_trees"),
        ({"reg_lambda": 0.0, "min_child_weight": 0.0}, "reg_lambda"),
    ],
)
def test_parameter_errors_name_the_parameter(changes: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SecureBoostParams(**changes)  # type: ignore[arg-type]


def test_parameters_round_trip_and_refuse_unknown_names() -> None:
    params = SecureBoostParams(n_trees=7, learning_rate=0.1, guest_only_first_tree=True)
    assert SecureBoostParams.from_dict(params.to_dict()) == params
    with pytest.raises(ValueError, match="unknown SecureBoost parameter"):
        SecureBoostParams.from_dict({**params.to_dict(), "subsample": 0.5})
    small = SecureBoostParams(key_bits=1024, insecure_for_tests=True)
    assert small.key_bits == 1024


def test_few_distinct_values_get_a_bin_each_and_nan_its_own() -> None:
    values = np.array([3.0, 1.0, 2.0, 2.0, np.nan, 1.0])
    edges = feature_edges(values, 32)
    assert edges.tolist() == [2.0, 3.0]
    codes = apply_bins(values[:, None], [edges], 32)[:, 0]
    assert codes.tolist() == [2, 0, 1, 1, 32, 0]
    assert threshold(edges, 0) == 2.0 and threshold(edges, 2) is None


def test_quantile_edges_and_thresholds_agree_with_bin_codes() -> None:
    rng = np.random.default_rng(3)
    values = np.round(rng.standard_normal(5000), 2)
    values[rng.random(5000) < 0.05] = np.nan
    edges = feature_edges(values, 16)
    assert len(edges) <= 15 and np.all(np.diff(edges) > 0)
    codes = apply_bins(values[:, None], [edges], 16)[:, 0]
    counts = np.bincount(codes[codes < 16])
    assert counts.max() < 2 * len(values) / 16  # roughly equal-count bins
    for j in range(len(edges) + 1):
        for missing_left in (False, True):
            by_code = left_of_codes(codes, j, missing_left, 16)
            by_value = goes_left(values, threshold(edges, j), missing_left)
            assert np.array_equal(by_code, by_value)


def test_infinite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="infinite"):
        as_features([[1.0], [np.inf]])


def test_packed_rows_sum_exactly_to_both_sums() -> None:
    rng = np.random.default_rng(5)
    n = 30_000
    layout = Layout(24, n)
    g = rng.uniform(-1, 1, n)
    h = rng.uniform(0, 0.25, n)
    g[:3] = [-1.0, 1.0, 0.0]
    h[:2] = [0.25, 0.0]
    g_int, h_int = quantise(g, h, 24)
    packed = pack_rows(g_int, h_int, layout)
    for subset in (slice(None), slice(0, 1), slice(5, 17_000, 3)):
        total = sum(packed[subset])
        assert unpack_sum(total, layout) == (int(g_int[subset].sum()), int(h_int[subset].sum()))
        assert abs(total) < 1 << (layout.slot_bits - 2)


def test_signed_slots_read_back_with_borrows() -> None:
    slot_bits = 20
    slots = [-5, 0, 123_456, -(1 << 17), 1 << 17, -1]
    value = sum(v << (slot_bits * j) for j, v in enumerate(slots))
    assert split_slots(value, slot_bits, len(slots)) == slots
    with pytest.raises(ValueError, match="more slots"):
        split_slots(value, slot_bits, 3)


def test_layout_refuses_precision_that_float_sums_cannot_hold() -> None:
    with pytest.raises(ValueError, match="fixed_point_bits"):
        Layout(40, 1 << 20)


def test_candidates_skip_empty_bins_and_offer_missing_directions() -> None:
    # One feature, 4 value bins + missing: rows in bins 0, 2, 2, 3 and two missing.
    codes = np.array([[0], [2], [2], [3], [4], [4]], dtype=np.int32)
    g = np.array([1, 2, 3, 4, 5, 6], dtype=np.int64)
    h = np.ones(6, dtype=np.int64)
    hist = node_histograms(codes, g, h, 4)
    cands = candidate_specs(hist.counts)
    listed = list(zip(cands.bin.tolist(), cands.missing_left.tolist(), strict=True))
    # bin 1 is empty; bin 3 with missing left would leave the right side empty.
    assert listed == [(0, False), (0, True), (2, False), (2, True), (3, False)]
    gl, hl = candidate_sums(hist, cands)
    assert gl.tolist() == [1, 12, 6, 17, 10] and hl.tolist() == [1, 3, 3, 5, 4]


@pytest.mark.parametrize("workers", [1, 2])
def test_encrypted_histograms_equal_plaintext_sums(workers: int) -> None:
    """Bundled passes, sibling subtraction and candidate sums decrypt to the plaintext sums."""
    rng = np.random.default_rng(9)
    n, n_bins = 400, 8
    layout = Layout(16, n)
    codes = np.column_stack(
        [rng.integers(0, k, n) for k in (2, 3, 5, 9, 9)]  # few codes: bundled
        + [rng.integers(0, n_bins + 1, n)]  # bin n_bins: missing values
    ).astype(np.int32)
    g_int, h_int = quantise(rng.uniform(-1, 1, n), rng.uniform(0, 0.25, n), 16)
    key = generate_keypair(1024, insecure_for_tests=True)
    ciphertexts = key.encrypt(pack_rows(g_int, h_int, layout))
    engine = EncryptedHistograms(key.public, ciphertexts, codes, n_bins, workers)
    root = np.arange(n)
    left = codes[:, 3] < 4
    levels = [{0: root}, {1: root[left], 2: root[~left]}]
    for nodes in levels:
        engine.build(nodes)
        for node_id, rows in nodes.items():
            hist = node_histograms(codes[rows], g_int[rows], h_int[rows], n_bins)
            assert np.array_equal(engine.counts(rows), hist.counts)
            cands = candidate_specs(hist.counts)
            sums = [
                unpack_sum(v, layout)
                for v in key.decrypt_signed(engine.candidate_sums(node_id, cands))
            ]
            gl, hl = candidate_sums(hist, cands)
            assert sums == list(zip(gl.tolist(), hl.tolist(), strict=True))
