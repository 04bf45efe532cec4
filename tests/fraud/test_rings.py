"""Groups: components, the CPM refinement (splits, never merges small rings), scores."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from puhui.fraud.cpm import cpm_partition
from puhui.fraud.links import RecordMeta
from puhui.fraud.rings import find_rings, group_scores
from tests.fraud.ring_helpers import clique, pairwise, table


def _cliques_in_a_cycle(count: int, size: int) -> sparse.csr_matrix:
    """``count`` cliques of ``size`` nodes, clique i joined to clique i+1 by one edge."""
    n = count * size
    rows, cols = [], []
    for c in range(count):
        base = c * size
        for i in range(size):
            for j in range(i + 1, size):
                rows.append(base + i)
                cols.append(base + j)
        rows.append(base + size - 1)
        cols.append(((c + 1) % count) * size)
    a = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return sparse.csr_matrix(a + a.T)


def _modularity(a: sparse.csr_matrix, labels: np.ndarray) -> float:
    degree = np.asarray(a.sum(axis=1)).ravel()
    two_m = degree.sum()
    q = 0.0
    for c in np.unique(labels):
        inside = labels == c
        q += a[inside][:, inside].sum() / two_m - (degree[inside].sum() / two_m) ** 2
    return float(q)


def test_components_give_groups_and_singletons_none() -> None:
    t = table(clique("a", 3) + clique("b", 2, "bank_account") + [("lone", "device", "z")])
    result = find_rings(t)
    groups = sorted(sorted(r.member_ids) for r in result.rings)
    assert groups == [["a0", "a1", "a2"], ["b0", "b1"]]
    lone = t.record_ids.index("lone")
    assert result.group[lone] == -1 and result.score[lone] == 0.0
    for ring in result.rings:
        assert all(result.group[m] == ring.group for m in ring.members)
        assert all(result.score[m] == ring.score for m in ring.members)
    assert [r.group for r in result.rings] == [1, 2]  # ranked: higher score first
    assert result.rings[0].score >= result.rings[1].score


def test_cpm_splits_two_dense_rings_joined_by_one_bridge() -> None:
    triples = pairwise("a", 8) + pairwise("b", 8)
    triples += [("a7", "bank_account", "bridge"), ("b0", "bank_account", "bridge")]
    t = table(triples)
    whole = find_rings(t, split_above=100)  # no refinement: one component
    assert [len(r.members) for r in whole.rings] == [16]
    split = find_rings(t, split_above=10)
    assert sorted(sorted(r.member_ids) for r in split.rings) == [
        [f"a{i}" for i in range(8)],
        [f"b{i}" for i in range(8)],
    ]
    assert all(r.split for r in split.rings)


def test_cpm_keeps_many_small_rings_apart_where_modularity_merges_them() -> None:
    a = _cliques_in_a_cycle(30, 3)
    labels = cpm_partition(a, 0.2, seed=1)
    assert len(np.unique(labels)) == 30
    assert all(len(set(labels[c * 3 : c * 3 + 3])) == 1 for c in range(30))
    # Modularity's resolution limit: pairing adjacent triangles scores higher than the true
    # rings, so a modularity optimiser would merge them. CPM's quality says the opposite.
    singles = np.repeat(np.arange(30), 3)
    pairs = np.repeat(np.arange(15), 6)
    assert _modularity(a, pairs) > _modularity(a, singles)

    def cpm(lab: np.ndarray, gamma: float = 0.2) -> float:
        inside = sum(a[lab == c][:, lab == c].sum() / 2 for c in np.unique(lab))
        sizes = np.bincount(lab)
        return float(inside - gamma * (sizes * (sizes - 1) / 2).sum())

    assert cpm(singles) > cpm(pairs)


def test_separate_small_rings_never_merge() -> None:
    triples = []
    for r in range(40):
        triples += clique(f"r{r}x", 3, "device")
    result = find_rings(table(triples), split_above=2)  # refine everything
    assert len(result.rings) == 40
    assert all(len(r.members) == 3 for r in result.rings)


def test_refinement_is_deterministic_for_a_seed() -> None:
    a = _cliques_in_a_cycle(12, 4)
    assert (cpm_partition(a, seed=3) == cpm_partition(a, seed=3)).all()


def test_evidence_and_shared_identifiers() -> None:
    triples = [
        *clique("a", 4, "device"),
        ("a0", "ip", "office"),
        ("a1", "ip", "office"),
        ("a2", "ip", "office"),
    ]
    ring = find_rings(table(triples)).rings[0]
    kinds = [(s.kind.value, s.members, s.strong) for s in ring.shared]
    assert kinds == [("device", 4, True), ("ip", 3, False)]
    assert ring.evidence.identities == 4
    assert ring.evidence.strong_shared == {"device": 1}
    assert ring.evidence.weak_shared == {"ip": 1}
    assert ring.evidence.density == 1.0


def test_same_person_applying_again_is_one_identity() -> None:
    triples = [
        ("x1", "id_number", "p"),
        ("x2", "id_number", "p"),
        ("x1", "device", "d"),
        ("x2", "device", "d"),
    ]
    ring = find_rings(table(triples)).rings[0]
    assert ring.evidence.identities == 1
    assert ring.evidence.tie_units == 0.0  # sharing with oneself ties no one


def test_score_terms_are_monotone_in_each_piece_of_evidence() -> None:
    base = {
        "size": 4,
        "identities": 3,
        "tie_units": 1.0,
        "weak_keys": 1,
        "density": 0.5,
        "span_days": 10.0,
        "institutions": 2,
        "bad_share": 0.0,
    }
    more = {
        "size": 5,
        "identities": 4,
        "tie_units": 2.0,
        "weak_keys": 2,
        "density": 0.8,
        "span_days": 2.0,
        "institutions": 3,
        "bad_share": 0.5,
    }
    (start,), _ = group_scores(**{k: [v] for k, v in base.items()})
    for name, value in more.items():
        (after,), _ = group_scores(**{k: [value if k == name else v] for k, v in base.items()})
        assert after > start, name
    top, _ = group_scores([50], [50], [20], [10], [1.0], [0.0], [4], [1.0])
    assert 0 <= start <= 100 and top[0] == 100.0


def test_more_evidence_in_a_table_raises_the_group_score() -> None:
    ids = [f"a{i}" for i in range(3)]
    one_key = clique("a", 3, "device")
    two_keys = one_key + [(r, "bank_account", "acct") for r in ids]
    s1 = find_rings(table(one_key)).rings[0].score
    s2 = find_rings(table(two_keys)).rings[0].score
    assert s2 > s1
    meta = RecordMeta(ids, labels=np.array([1, -1, -1], dtype=np.int8))
    t = table(one_key, ids)
    assert find_rings(t, meta).rings[0].score > find_rings(t).rings[0].score
    assert find_rings(table(clique("a", 5, "device"))).rings[0].score > s1
