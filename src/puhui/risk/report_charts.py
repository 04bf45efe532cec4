"""The charts of the model report, each returned as an inline SVG string.

Why these choices:

* ``matplotlib.figure.Figure`` without pyplot: pyplot keeps global state (a current figure, a
  process-wide backend) that a notebook or a server must not have changed under it, and needs
  no backend at all when the figure is saved straight to SVG — Agg is never involved, so the
  charts render on a headless machine with no display.
* SVG text as ``<text>`` (``svg.fonttype = none``) rather than glyph outlines: the file stays
  small and diffable, a chart's words can be searched, and the browser draws any Chinese
  variable name with its own fonts. Axis titles are English so nothing depends on a CJK font.
* Identical bytes on every run: the date is dropped from the SVG metadata, the ids matplotlib
  hashes are salted with a fixed string, and each chart's ids carry a prefix of its own so
  several SVGs inlined in one HTML page never share an id. Nothing is random.

matplotlib escapes the text it writes into SVG, so a hostile column name cannot inject markup.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from puhui.risk.binning import VariableBinning
from puhui.risk.metrics import BandRow

FloatArray = npt.NDArray[np.float64]

GOOD, BAD, TRAIN, TEST, GREY = "#2b7bba", "#c8412b", "#8c8c8c", "#2b7bba", "#b0b0b0"
MAX_POINTS = 400  # a curve drawn with more points than this looks the same and weighs more
MAX_FEATURES = 25
MAX_LABEL = 40


def _figure(width: float = 6.4, height: float = 3.6) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _svg(fig: Figure, key: str) -> str:
    """Serialise ``fig`` to an ``<svg>`` element fit for inlining; ``key`` must be unique in
    the page (it prefixes every id)."""
    buf = io.StringIO()
    with (
        warnings.catch_warnings(),
        mpl.rc_context({"svg.hashsalt": "puhui-report", "svg.fonttype": "none"}),
    ):
        # the layout engine has no CJK glyphs; the browser draws them, so the warning is noise
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    return re.sub(r'(\bid="|url\(#|href="#)', rf"\g<1>{key}-", text)


def _thin(n: int, keep: int | None = None) -> npt.NDArray[np.int64]:
    """Indices of at most ``MAX_POINTS`` evenly spread points of ``n``, ends (and ``keep``)
    included."""
    idx = np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).round().astype(np.int64))
    if keep is not None:
        idx = np.unique(np.append(idx, keep))
    return idx


def roc_chart(curves: Sequence[tuple[str, FloatArray, FloatArray]]) -> str:
    """ROC curves, one per ``(legend label, y, pd)``; the first is drawn dashed (train)."""
    fig, ax = _figure(5.0, 4.2)
    ax.plot([0, 1], [0, 1], color=GREY, linewidth=0.8, label="random")
    for i, (label, y, pd) in enumerate(curves):
        fpr, tpr, _ = roc_curve(y, pd)
        idx = _thin(len(fpr))
        color, style = (TRAIN, "--") if i == 0 and len(curves) > 1 else (TEST, "-")
        ax.plot(fpr[idx], tpr[idx], color=color, linestyle=style, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title="ROC curve")
    ax.set_xlabel("false positive rate (share of goods flagged)")
    ax.set_ylabel("true positive rate (share of bads caught)")
    ax.legend(loc="lower right", frameon=False)
    return _svg(fig, "roc")


@dataclass(frozen=True)
class KSCurve:
    """Cumulative shares of bads and goods at or below each distinct score, worst first."""

    scores: FloatArray
    cum_bad: FloatArray
    cum_good: FloatArray
    at: int  # index of the widest gap

    @property
    def ks(self) -> float:
        return float(self.cum_bad[self.at] - self.cum_good[self.at])


def ks_curve(y: FloatArray, score: FloatArray) -> KSCurve:
    """The KS curve by score (higher = better): bads pile up among the low scores first."""
    uniq, inverse = np.unique(score, return_inverse=True)
    bads = np.bincount(inverse, weights=y, minlength=len(uniq))
    goods = np.bincount(inverse, weights=1.0 - y, minlength=len(uniq))
    cum_bad = np.cumsum(bads) / max(bads.sum(), 1.0)
    cum_good = np.cumsum(goods) / max(goods.sum(), 1.0)
    return KSCurve(uniq, cum_bad, cum_good, int(np.argmax(cum_bad - cum_good)))


def ks_chart(curve: KSCurve) -> str:
    fig, ax = _figure()
    idx = _thin(len(curve.scores), keep=curve.at)
    ax.plot(curve.scores[idx], curve.cum_bad[idx], color=BAD, label="bads (cumulative share)")
    ax.plot(curve.scores[idx], curve.cum_good[idx], color=GOOD, label="goods (cumulative share)")
    x = float(curve.scores[curve.at])
    ax.vlines(x, curve.cum_good[curve.at], curve.cum_bad[curve.at], color="black", linewidth=1.2)
    mid = float(curve.cum_bad[curve.at] + curve.cum_good[curve.at]) / 2
    ax.annotate(
        f"KS = {curve.ks:.4f} at score {x:.2f}",
        (x, mid),
        xytext=(-8, 0),
        textcoords="offset points",
        ha="right",
        va="center",
    )
    ax.set(ylim=(0, 1.01), title="KS curve (test)")
    ax.set_xlabel("score (at or below)")
    ax.set_ylabel("cumulative share")
    ax.legend(loc="lower right", frameon=False)
    return _svg(fig, "ks")


def score_distribution_chart(y: FloatArray, score: FloatArray) -> str:
    """Histograms of the goods' and the bads' scores, each as shares of its own class so a
    rare bad class is as visible as the goods."""
    fig, ax = _figure()
    edges = np.histogram_bin_edges(score, bins=30)
    for mask, color, label in ((y == 0, GOOD, "goods"), (y == 1, BAD, "bads")):
        counts, _ = np.histogram(score[mask], bins=edges)
        shares = counts / max(int(mask.sum()), 1)
        ax.stairs(shares, edges, fill=True, alpha=0.35, color=color, label=label)
        ax.stairs(shares, edges, color=color)
    ax.set(title="Score distribution (test)")
    ax.set_xlabel("score")
    ax.set_ylabel("share of class")
    ax.legend(frameon=False)
    return _svg(fig, "dist")


def calibration_chart(rows: Sequence[BandRow]) -> str:
    fig, ax = _figure()
    bands = [r.band for r in rows]
    ax.bar(bands, [r.bad_rate for r in rows], color=GREY, label="observed bad rate")
    ax.plot(bands, [r.mean_pd for r in rows], color=BAD, marker="o", label="mean predicted PD")
    ax.set_xticks(bands)
    ax.set(title="Calibration by PD band (test)")
    ax.set_xlabel("band (1 = riskiest tenth)")
    ax.set_ylabel("rate")
    ax.legend(frameon=False)
    return _svg(fig, "calibration")


def bin_chart(binning: VariableBinning, key: str) -> str:
    """Bars: share of rows per bin; line: the bin's bad rate. Bins are numbered, not labelled
    (labels are user data, long, maybe Chinese): the table beside the chart names them."""
    fig, ax = _figure(6.4, 3.2)
    total = max(sum(b.count for b in binning.bins), 1)
    x = np.arange(1, len(binning.bins) + 1)
    ax.bar(x, [b.count / total for b in binning.bins], color=GOOD, alpha=0.55)
    ax.set_xticks(x)
    ax.set_xlabel("bin (see table)")
    ax.set_ylabel("share of rows (bars)")
    rate = ax.twinx()
    rate.plot(x, [b.event_rate for b in binning.bins], color=BAD, marker="o")
    rate.set_ylabel("bad rate (line)")
    rate.set_ylim(bottom=0)
    ax.set(title="Share of rows and bad rate by bin")
    return _svg(fig, key)


def importance_chart(importance: Mapping[str, float]) -> str:
    """Horizontal bars, largest on top; at most ``MAX_FEATURES`` features, long names cut."""
    items = sorted(importance.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FEATURES]
    fig, ax = _figure(6.4, 1.2 + 0.28 * len(items))
    names = [n if len(n) <= MAX_LABEL else n[: MAX_LABEL - 1] + "…" for n, _ in items]
    ax.barh(np.arange(len(items)), [v for _, v in items], color=GOOD)
    ax.set_yticks(np.arange(len(items)), names)
    ax.invert_yaxis()
    ax.set(title="Feature importance")
    ax.set_xlabel("mean |contribution| (points)")
    return _svg(fig, "importance")
