"""The record graph: stars instead of pairs, hubs, strong and weak links, components."""

from __future__ import annotations

from puhui.fraud.graph import build_graph
from puhui.fraud.links import LinkKind
from tests.fraud.ring_helpers import clique, table


def _components(t: object, **options: object) -> list[set[str]]:
    graph = build_graph(t, **options)  # type: ignore[arg-type]
    _, labels = graph.components()
    groups: dict[int, set[str]] = {}
    for record, label in zip(graph.table.record_ids, labels.tolist(), strict=True):
        groups.setdefault(label, set()).add(record)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: sorted(g))


def test_a_widely_shared_key_costs_linear_edges() -> None:
    t = table(clique("r", 5_000, "device"))
    graph = build_graph(t, hub_cap=10_000)
    a, _b = graph.star_edges()
    assert len(a) == 4_999  # a star, not 12.5 million pairs
    count, _ = graph.components()
    assert count == 1


def test_hub_key_does_not_merge_groups_and_is_reported() -> None:
    triples = clique("a", 4, "device") + clique("b", 4, "device")
    # a switchboard number held by 25 records, one member of each ring among them
    office = [(f"x{i}", "mobile", "switchboard") for i in range(23)]
    office += [("a0", "mobile", "switchboard"), ("b0", "mobile", "switchboard")]
    t = table(triples + office)
    groups = _components(t)
    assert groups == [{"a0", "a1", "a2", "a3"}, {"b0", "b1", "b2", "b3"}]
    graph = build_graph(t)
    assert [(h.kind, h.records) for h in graph.hubs] == [(LinkKind.MOBILE, 25)]
    # with a higher cap the same key links everyone
    assert len(_components(t, hub_cap=30)) == 1
    # per-kind caps: only mobile raised
    assert len(_components(t, hub_cap={"mobile": 30})) == 1
    assert len(_components(t, hub_cap={"device": 30})) == 2


def test_weak_links_do_not_join_unless_asked() -> None:
    t = table(
        [
            ("a", "ip", "1.2.3.4"),
            ("b", "ip", "1.2.3.4"),
            ("c", "mobile", "138"),
            ("d", "contact_mobile", "138"),  # d lists c's phone: weak
            ("e", "device", "dev"),
            ("f", "device", "dev"),
        ]
    )
    assert _components(t) == [{"e", "f"}]
    assert _components(t, use_weak=True) == [{"a", "b"}, {"c", "d"}, {"e", "f"}]


def test_projection_weights_strong_and_weak_pairs() -> None:
    t = table(
        [
            ("a", "device", "d"),
            ("b", "device", "d"),
            ("a", "bank_account", "acct"),
            ("b", "bank_account", "acct"),
            ("a", "address", "home"),
            ("b", "address", "home"),
            ("a", "mobile", "m"),
            ("b", "contact_mobile", "m"),
        ]
    )
    strong_only = build_graph(t).projection().toarray()
    assert strong_only[0, 1] == strong_only[1, 0] == 2.0
    both = build_graph(t, use_weak=True).projection().toarray()
    assert both[0, 1] == 3.0  # two strong keys + two weak ones at 0.5
    assert both[0, 0] == 0.0
