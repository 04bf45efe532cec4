"""A picture of one group that a reviewer can read: who is in it and what they share.

Records are round nodes; each shared identifier is a square node labelled with its kind and
key number, joined to every member holding it — so "eight applications, one device" is one
square with eight spokes, not a hairball of 28 lines. Strong identifiers are drawn solid,
weak ones dashed. Key text is never shown (the ring finder does not have it).

The layout is a seeded force-directed one computed here with numpy, so the same group always
gives the same picture. Drawing uses matplotlib's object API (``Figure`` on the Agg canvas),
never pyplot's global state, so it is safe in a server or a loop.

The HTML view is one self-contained file: the PNG inlined as base64, the members and shared
identifiers as tables, every piece of text escaped (record ids come from outside).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from puhui.fraud.links import STRONG_KINDS
from puhui.fraud.rings import Ring, RingResult

FloatArray = npt.NDArray[np.float64]
_MAX_LABELS = 40


def _layout(n: int, edges: list[tuple[int, int]], seed: int, steps: int = 200) -> FloatArray:
    """Fruchterman-Reingold positions in the unit square, from a seeded start."""
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 2))
    if n == 1:
        return np.full((1, 2), 0.5)
    k = 1.0 / np.sqrt(n)
    a = np.array([e[0] for e in edges], dtype=np.int64)
    b = np.array([e[1] for e in edges], dtype=np.int64)
    temperature = 0.1
    for _ in range(steps):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.maximum(np.linalg.norm(delta, axis=2), 1e-3)
        move = (delta / dist[..., None] * (k * k / dist)[..., None]).sum(axis=1)
        if len(a):
            d = pos[a] - pos[b]
            length = np.maximum(np.linalg.norm(d, axis=1), 1e-3)
            pull = d * (length / k)[:, None]
            np.add.at(move, a, -pull)
            np.add.at(move, b, pull)
        norm = np.maximum(np.linalg.norm(move, axis=1), 1e-9)
        pos += move / norm[:, None] * np.minimum(norm, temperature)[:, None]
        temperature = max(temperature * 0.97, 0.002)
    pos -= pos.min(axis=0)
    span = np.maximum(pos.max(axis=0), 1e-9)
    result: FloatArray = 0.05 + 0.9 * pos / span
    return result


def _holdings(result: RingResult, ring: Ring) -> list[tuple[int, int]]:
    """(member position, shared-identifier position) for every member holding a shared key."""
    table = result.graph.table
    members = np.array(ring.members, dtype=np.int64)
    keys = np.array([s.key for s in ring.shared], dtype=np.int64)
    m = np.isin(table.record, members) & np.isin(table.key, keys)
    member_at = {r: i for i, r in enumerate(ring.members)}
    key_at = {s.key: j for j, s in enumerate(ring.shared)}
    found = zip(table.record[m].tolist(), table.key[m].tolist(), strict=True)
    pairs = {(member_at[r], key_at[k]) for r, k in found}
    return sorted(pairs)


def group_figure(result: RingResult, ring: Ring, *, seed: int = 0) -> Figure:
    """The group as a figure: members, shared identifiers, and who holds which."""
    holdings = _holdings(result, ring)
    n_members, n_shared = len(ring.members), len(ring.shared)
    edges = [(i, n_members + j) for i, j in holdings]
    pos = _layout(n_members + n_shared, edges, seed)
    side = min(12.0, 5.0 + 0.12 * (n_members + n_shared))
    fig = Figure(figsize=(side, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9))
    ax.set_axis_off()
    for i, j in holdings:
        strong = ring.shared[j].kind in STRONG_KINDS and ring.shared[j].strong
        (x0, y0), (x1, y1) = pos[i], pos[n_members + j]
        ax.plot(
            [x0, x1],
            [y0, y1],
            color="#555" if strong else "#999",
            linestyle="-" if strong else "--",
            linewidth=1.2 if strong else 0.8,
            zorder=1,
        )
    ax.scatter(pos[:n_members, 0], pos[:n_members, 1], s=160, color="#4c72b0", zorder=2)
    for j, s in enumerate(ring.shared):
        x, y = pos[n_members + j]
        ax.scatter(
            [x], [y], s=220, marker="s", zorder=3, color="#c44e52" if s.strong else "#dd8452"
        )
        ax.annotate(
            f"{s.kind.value} #{s.key}\n×{s.members}",
            (x, y),
            fontsize=8,
            xytext=(6, 6),
            textcoords="offset points",
            zorder=4,
        )
    if n_members <= _MAX_LABELS:
        for i, record_id in enumerate(ring.member_ids):
            ax.annotate(
                record_id,
                tuple(pos[i]),
                fontsize=7,
                xytext=(4, -10),
                textcoords="offset points",
                color="#223",
                zorder=4,
            )
    ax.text(
        0.0,
        -0.04,
        "● record   ■ red: strong identifier   ■ orange: weak (dashed)",
        fontsize=8,
        color="#444",
    )
    ax.set_xlim(-0.05, 1.25)
    ax.set_ylim(-0.05, 1.08)
    fig.suptitle(f"Group {ring.group}: {n_members} records, score {ring.score:.0f}", fontsize=12)
    return fig


def group_png(result: RingResult, ring: Ring, *, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    group_figure(result, ring, seed=seed).savefig(buffer, format="png")
    return buffer.getvalue()


def group_html(ring: Ring, png: bytes) -> str:
    """One self-contained HTML page: picture, evidence, shared identifiers, members."""
    e = html.escape
    ev = ring.evidence
    facts = [
        ("score", f"{ring.score:.1f}"),
        ("records", str(ev.size)),
        ("distinct people", str(ev.identities)),
        ("link density", f"{ev.density:.2f}"),
        ("time span (days)", "—" if ev.span_days is None else f"{ev.span_days:.1f}"),
        ("institutions", "—" if ev.institutions is None else str(ev.institutions)),
        ("confirmed fraud members", "—" if ev.known_bad is None else str(ev.known_bad)),
        ("split from a larger component", "yes" if ring.split else "no"),
    ]
    terms = ", ".join(f"{k} {v:.2f}" for k, v in ev.terms.items())
    shared_rows = "".join(
        f"<tr><td>{e(s.kind.value)}</td><td>#{s.key}</td><td>{s.members}</td>"
        f"<td>{s.identities}</td><td>{'strong' if s.strong else 'weak'}</td></tr>"
        for s in ring.shared
    )
    member_rows = "".join(f"<tr><td>{e(m)}</td></tr>" for m in ring.member_ids)
    fact_rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    image = base64.b64encode(png).decode("ascii")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Group {ring.group}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;"
        "text-align:left}img{max-width:100%}</style></head><body>"
        f"<h1>Group {ring.group}</h1><table>{fact_rows}</table>"
        f"<p>Score terms (0–1): {e(terms)}</p>"
        f"<img alt='group {ring.group}' src='data:image/png;base64,{image}'>"
        "<h2>Shared identifiers</h2><table><tr><th>kind</th><th>key</th><th>members</th>"
        f"<th>people</th><th>link</th></tr>{shared_rows}</table>"
        f"<h2>Members</h2><table><tr><th>record</th></tr>{member_rows}</table>"
        "</body></html>\n"
    )


def write_group_pictures(
    result: RingResult, ring: Ring, directory: str | Path, *, seed: int = 0
) -> tuple[Path, Path]:
    """Write ``group-NNNNN.png`` and ``group-NNNNN.html`` into ``directory``; their paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    png = group_png(result, ring, seed=seed)
    png_path = folder / f"group-{ring.group:05d}.png"
    html_path = folder / f"group-{ring.group:05d}.html"
    png_path.write_bytes(png)
    html_path.write_text(group_html(ring, png), encoding="utf-8")
    return png_path, html_path
