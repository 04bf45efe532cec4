"""The model report a risk committee reads after ``puhui train``: one self-contained HTML file
(tables and inline SVG charts, no script, no network) and a Markdown twin with the same numbers.

Why the shape: the report is first built as plain data — sections of paragraphs, tables of
already-formatted strings, and charts — and only then written out twice. Both files therefore
carry the same figures by construction, and every piece of text passes through one escaping
function per format at the very end: variable names and category labels come from a user's
CSV, so none of them may reach the HTML unescaped. Nothing depends on the clock or on chance,
so two runs on the same inputs give identical bytes and a report can be diffed and hashed.

Conventions as in the rest of :mod:`puhui.risk`: ``y == 1`` is bad, ``pd`` is the probability
of default, a score is in points and higher is better.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from puhui.risk import metrics
from puhui.risk import report_charts as charts
from puhui.risk.binning import Bin, VariableBinning
from puhui.risk.selection import VariableReport

FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")
MODEL_KINDS = ("scorecard", "gbm")
AUC_GAP_WATCH = 0.02
AUC_GAP_MATERIAL = 0.05
"""Rules of thumb for the train − test AUC gap, not regulation: below 0.02 is sampling noise
on a few thousand rows; above 0.05 the training figures overstate the model."""


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows; the trainer computes it, the report only reads it."""

    title: str
    model_kind: str  # "scorecard" | "gbm"
    metadata: Mapping[str, Any]
    y_train: npt.NDArray[Any]
    pd_train: npt.NDArray[Any]
    score_train: npt.NDArray[Any]
    y_test: npt.NDArray[Any]
    pd_test: npt.NDArray[Any]
    score_test: npt.NDArray[Any]
    binnings: Sequence[VariableBinning] = ()
    selection: Sequence[VariableReport] = ()
    points_table: Sequence[Mapping[str, Any]] = ()
    feature_importance: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model_kind not in MODEL_KINDS:
            raise ValueError(f"model_kind must be one of {MODEL_KINDS}, got {self.model_kind!r}")
        for part in ("train", "test"):
            sizes = {len(getattr(self, f"{a}_{part}")) for a in ("y", "pd", "score")}
            if len(sizes) != 1:
                raise ValueError(f"y_{part}, pd_{part} and score_{part} differ in length")


# ----------------------------------------------------------------------------- document model
@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Chart:
    svg: str
    caption: str


Block = str | Table | Chart  # a str is a paragraph


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]
    level: int = 2


@dataclass(frozen=True)
class _Sample:
    y: FloatArray
    pd: FloatArray
    score: FloatArray


def _sample(*arrays: npt.NDArray[Any]) -> _Sample:
    y, pd, score = (np.asarray(a, dtype=np.float64) for a in arrays)
    return _Sample(y, pd, score)


def _f(x: float | None, digits: int = 4) -> str:
    return "" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _pct(x: float | None, digits: int = 1) -> str:
    return "" if x is None or math.isnan(x) else f"{x:.{digits}%}"


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    return Table(tuple(columns), tuple(tuple(r) for r in rows))


def _spec_table(spec: Mapping[str, Callable[[T], str]], items: Iterable[T]) -> Table:
    """A table from column name → how to print that column for one item."""
    return Table(tuple(spec), tuple(tuple(fmt(x) for fmt in spec.values()) for x in items))


def _pd_range(r: metrics.BandRow) -> str:
    return f"{_pct(r.lower, 2)} – {_pct(r.upper, 2)}"


CALIBRATION_COLUMNS: dict[str, Callable[[metrics.BandRow], str]] = {
    "Band": lambda r: str(r.band),
    "PD range": _pd_range,
    "Rows": lambda r: str(r.count),
    "Mean PD": lambda r: _pct(r.mean_pd, 2),
    "Observed bad rate": lambda r: _pct(r.bad_rate, 2),
    "Observed − PD": lambda r: f"{r.bad_rate - r.mean_pd:+.2%}",
}
LIFT_COLUMNS: dict[str, Callable[[metrics.BandRow], str]] = {
    "Band": lambda r: str(r.band),
    "PD range": _pd_range,
    "Rows": lambda r: str(r.count),
    "Bads": lambda r: str(r.bads),
    "Bad rate": lambda r: _pct(r.bad_rate, 2),
    "Cum. bads": lambda r: _pct(r.cum_bad_share),
    "Cum. goods": lambda r: _pct(r.cum_good_share),
    "KS": lambda r: _f(r.ks),
    "Lift": lambda r: _f(r.lift, 2),
}
SELECTION_COLUMNS: dict[str, Callable[[VariableReport], str]] = {
    "Variable": lambda r: r.name,
    "Kind": lambda r: r.kind,
    "IV": lambda r: _f(r.iv),
    "Missing": lambda r: _pct(r.missing_rate),
    "Bins": lambda r: str(r.bins),
    "CSI": lambda r: _f(r.csi, 3),
    "Max |r| (with)": lambda r: f"{r.max_corr:.2f} ({r.corr_with})" if r.corr_with else "",
    "VIF": lambda r: _f(r.vif, 2),
    "Coef": lambda r: _f(r.coef),
    "Decision": lambda r: "kept" if r.kept else "dropped",
    "Reason": lambda r: r.reason,
}


def _get(key: str, fmt: str) -> Callable[[Mapping[str, Any]], str]:
    """A points-table cell: ``fmt`` applied to the row's ``key``, blank when absent."""
    return lambda row: "" if row.get(key) is None else format(row[key], fmt)


POINTS_COLUMNS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "Variable": _get("variable", ""),
    "Bin": _get("bin", ""),
    "Count": _get("count", "d"),
    "Bad rate": _get("bad_rate", ".2%"),
    "WOE": _get("woe", ".4f"),
    "Points": _get("points", ".2f"),
}
BIN_COLUMNS: dict[str, Callable[[tuple[int, Bin, float]], str]] = {
    "#": lambda t: str(t[0]),
    "Bin": lambda t: t[1].label,
    "Kind": lambda t: t[1].kind,
    "Rows": lambda t: str(t[1].count),
    "Share": lambda t: _pct(t[2]),
    "Bads": lambda t: str(t[1].events),
    "Bad rate": lambda t: _pct(t[1].event_rate, 2),
    "WOE": lambda t: _f(t[1].woe),
}


# ----------------------------------------------------------------------------- sections
def overfit_reading(auc_train: float, auc_test: float) -> str:
    """One line on overfitting from the AUC gap (thresholds: :data:`AUC_GAP_WATCH`, ...)."""
    gap = auc_train - auc_test
    head = f"AUC gap train − test {gap:+.4f}: "
    if gap < AUC_GAP_WATCH:
        return head + "no material overfitting; the test figures confirm the training ones."
    if gap < AUC_GAP_MATERIAL:
        return head + "mild overfitting; read the test figures as the model's performance."
    return head + (
        "material overfitting; the training figures overstate the model — "
        "consider fewer variables or stronger regularisation."
    )


def _flatten(meta: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested mappings become dotted keys (``data.sha256``) so every item gets a row of its
    own; lists and other containers are printed as JSON."""
    rows: list[tuple[str, str]] = []
    for k, v in meta.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            rows += _flatten(v, key + ".")
        elif isinstance(v, Mapping | list | tuple):
            rows.append((key, json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)))
        else:
            rows.append((key, str(v)))
    return rows


def _metadata_section(meta: Mapping[str, Any]) -> Section:
    note = "Everything the trainer recorded about the data, the split, the parameters and the run."
    return Section("Model and data (模型与数据)", (note, _table(("Item", "Value"), _flatten(meta))))


def _headline_section(train: _Sample, test: _Sample) -> Section:
    fns = (
        ("AUC", metrics.auc),
        ("KS", metrics.ks),
        ("Gini", metrics.gini),
        ("Brier", metrics.brier),
    )
    rows = []
    for name, fn in fns:
        a, b = fn(train.y, train.pd), fn(test.y, test.pd)
        rows.append((name, _f(a), _f(b), f"{a - b:+.4f}"))
    rows.append(("Rows", str(len(train.y)), str(len(test.y)), ""))
    rates = (float(train.y.mean()), float(test.y.mean()))
    rows.append(("Bad rate", _pct(rates[0], 2), _pct(rates[1], 2), ""))
    reading = overfit_reading(metrics.auc(train.y, train.pd), metrics.auc(test.y, test.pd))
    note = "AUC, KS and Gini: higher discriminates better. Brier: lower is better."
    table = _table(("Metric", "Train", "Test", "Train − Test"), rows)
    return Section("Headline metrics (核心指标)", (table, reading, note))


def _discrimination_section(train: _Sample, test: _Sample) -> Section:
    roc = charts.roc_chart(
        [
            (f"train (AUC {metrics.auc(train.y, train.pd):.4f})", train.y, train.pd),
            (f"test (AUC {metrics.auc(test.y, test.pd):.4f})", test.y, test.pd),
        ]
    )
    curve = charts.ks_curve(test.y, test.score)
    cut = float(curve.scores[curve.at])
    reading = (
        f"Widest KS gap on test {curve.ks:.4f} at score {cut:.2f}: declining every score at or "
        f"below {cut:.2f} would turn away {_pct(float(curve.cum_bad[curve.at]))} of the bads and "
        f"{_pct(float(curve.cum_good[curve.at]))} of the goods."
    )
    blocks: tuple[Block, ...] = (
        Chart(roc, "ROC curve, train (dashed) and test"),
        Chart(
            charts.ks_chart(curve), "KS curve on test: cumulative shares of bads and goods by score"
        ),
        reading,
        Chart(
            charts.score_distribution_chart(test.y, test.score),
            "Score distribution of goods and bads on test",
        ),
    )
    return Section("Discrimination (区分能力)", blocks)


def _calibration_section(rows: Sequence[metrics.BandRow], test: _Sample) -> Section:
    overall = (
        f"On test the mean PD is {_pct(float(test.pd.mean()), 2)} against an observed bad rate "
        f"of {_pct(float(test.y.mean()), 2)}. Bands are tenths of the test rows by PD, band 1 "
        "the riskiest."
    )
    table = _spec_table(CALIBRATION_COLUMNS, rows)
    chart = Chart(
        charts.calibration_chart(rows), "Mean PD against observed bad rate by band (test)"
    )
    return Section("Calibration (校准)", (overall, table, chart))


def _lift_section(rows: Sequence[metrics.BandRow]) -> Section:
    note = "Lift = the band's bad rate over the overall bad rate (test); band 1 is the riskiest."
    return Section("Decile lift and KS (十分位提升表)", (_spec_table(LIFT_COLUMNS, rows), note))


def _stability_section(train: _Sample, test: _Sample) -> Section:
    value = metrics.psi(train.score, test.score)
    text = (
        f"PSI of the score, train → test: {value:.4f} ({metrics.stability_label(value)}). "
        "Bins at the training deciles; below 0.10 stable, 0.10–0.25 watch, 0.25 or more "
        "shifted. A random split should read stable: a higher value means the two samples "
        "differ (time, channel, product) and the test figures describe another population."
    )
    return Section("Stability (稳定性, PSI)", (text,))


def _selection_section(selection: Sequence[VariableReport]) -> Section:
    ordered = sorted(selection, key=lambda r: (not r.kept, -r.iv, r.name))
    text = (
        f"{len(selection)} candidate variables, {sum(r.kept for r in selection)} kept. "
        "Filters in order: missing rate, IV, stability (CSI), correlation, stepwise AIC with "
        "a sign check, VIF; every candidate is listed with the reason for its fate."
    )
    return Section("Variable selection (指标筛选)", (text, _spec_table(SELECTION_COLUMNS, ordered)))


def _points_section(points: Sequence[Mapping[str, Any]]) -> Section:
    note = (
        "Score = base points + the points of each variable's bin; '(unseen)' is what a value "
        "never met in training scores."
    )
    return Section("Points table (评分卡分值表)", (note, _spec_table(POINTS_COLUMNS, points)))


def iv_strength(iv: float) -> str:
    """The customary reading of information value; above 0.5 usually means leakage."""
    for limit, label in ((0.02, "useless"), (0.1, "weak"), (0.3, "medium"), (0.5, "strong")):
        if iv < limit:
            return label
    return "suspiciously strong: check for leakage"


def _variable_section(binning: VariableBinning, number: int) -> Section:
    total = max(sum(b.count for b in binning.bins), 1)
    rows = [(i, b, b.count / total) for i, b in enumerate(binning.bins, start=1)]
    iv = binning.iv
    text = f"{binning.kind}, trend {binning.trend}, IV {iv:.4f} ({iv_strength(iv)})."
    chart = Chart(
        charts.bin_chart(binning, f"bin{number}"), "Share of rows (bars), bad rate (line)"
    )
    return Section(binning.name, (text, chart, _spec_table(BIN_COLUMNS, rows)), level=3)


def _importance_section(importance: Mapping[str, float]) -> Section:
    items = sorted(importance.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(abs(v) for _, v in items) or 1.0
    rows = [(str(i), n, _f(v, 2), _pct(abs(v) / total)) for i, (n, v) in enumerate(items, start=1)]
    table = _table(("Rank", "Feature", "Mean |contribution| (points)", "Share"), rows)
    chart = Chart(
        charts.importance_chart(importance), "Mean absolute contribution in points per feature"
    )
    return Section("Feature importance (特征重要性)", (chart, table))


def build_sections(inputs: ReportInputs) -> list[Section]:
    """The report as data, in reading order."""
    train = _sample(inputs.y_train, inputs.pd_train, inputs.score_train)
    test = _sample(inputs.y_test, inputs.pd_test, inputs.score_test)
    bands = metrics.band_table(test.y, test.pd)
    out = [
        _headline_section(train, test),
        _discrimination_section(train, test),
        _calibration_section(bands, test),
        _lift_section(bands),
        _stability_section(train, test),
    ]
    if inputs.selection:
        out.append(_selection_section(inputs.selection))
    if inputs.points_table:
        out.append(_points_section(inputs.points_table))
    # the trainer may hand over every candidate's binning; only the kept ones are in the model
    kept = {r.name for r in inputs.selection if r.kept}
    shown = [b for b in inputs.binnings if not inputs.selection or b.name in kept]
    if shown:
        out.append(
            Section(
                "Bins of the kept variables (入模变量分箱)", ("One chart and table per variable.",)
            )
        )
        out += [_variable_section(b, i) for i, b in enumerate(shown, start=1)]
    if inputs.feature_importance:
        out.append(_importance_section(inputs.feature_importance))
    out.append(_metadata_section(inputs.metadata))
    return out


# ----------------------------------------------------------------------------- rendering
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;
margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:1.5rem 2rem;background:#fff}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #2b7bba;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin-top:1.6rem}.sub{color:#666;margin-top:0}
.banner{background:#fff4e5;border-left:4px solid #e08a00;padding:.6rem 1rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.88rem}
th,td{border:1px solid #ddd;padding:.25rem .55rem;vertical-align:top;overflow-wrap:anywhere}
th{background:#f0f4f8;text-align:left}tr:nth-child(even) td{background:#fafcff}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:1rem 0}figcaption{color:#666;font-size:.85rem}
svg{max-width:100%;height:auto}
"""
_NUMERIC = re.compile(r"^[+\-−]?[\d.,]+%?( – [+\-−]?[\d.,]+%?)?$")


def _synthetic(meta: Mapping[str, Any]) -> bool:
    flag = meta.get("synthetic", False)
    return flag is True or str(flag).lower() in ("1", "true", "yes")


SYNTHETIC_NOTE = (
    "Trained on synthetic data (合成数据): the figures describe the generator, not real "
    "borrowers. Not for credit decisions."
)


def _html_block(block: Block) -> str:
    e = html.escape
    if isinstance(block, str):
        return f"<p>{e(block)}</p>"
    if isinstance(block, Chart):
        return f"<figure>{block.svg}<figcaption>{e(block.caption)}</figcaption></figure>"
    head = "".join(f"<th>{e(c)}</th>" for c in block.columns)
    opens = [
        '<td class="num">' if _is_num_col(block, j) else "<td>" for j in range(len(block.columns))
    ]
    body = "\n".join(
        "<tr>" + "".join(f"{o}{e(c)}</td>" for o, c in zip(opens, row, strict=True)) + "</tr>"
        for row in block.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def render_html(inputs: ReportInputs, sections: Sequence[Section]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(inputs.title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{e(inputs.title)}</h1>",
        f'<p class="sub">Model report (模型报告) · model kind: {e(inputs.model_kind)}</p>',
    ]
    if _synthetic(inputs.metadata):
        parts.append(f'<p class="banner">{e(SYNTHETIC_NOTE)}</p>')
    toc = [(i, s) for i, s in enumerate(sections) if s.level == 2]
    parts.append(
        "<nav><ol>"
        + "".join(f'<li><a href="#s{i}">{e(s.title)}</a></li>' for i, s in toc)
        + "</ol></nav>"
    )
    for i, s in enumerate(sections):
        parts.append(f'<h{s.level} id="s{i}">{e(s.title)}</h{s.level}>')
        parts += [_html_block(b) for b in s.blocks]
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _md(text: str) -> str:
    """Markdown-safe text: markup characters escaped, HTML entities for <, > and &, one line."""
    text = html.escape(" ".join(text.splitlines()), quote=False)
    return re.sub(r"([\\`*|\[\]])", r"\\\1", text)


def _md_block(block: Block) -> str:
    if isinstance(block, str):
        return _md(block)
    if isinstance(block, Chart):
        return f"_Chart: {_md(block.caption)} (see report.html)._"
    lines = ["| " + " | ".join(_md(c) for c in block.columns) + " |"]
    aligns = ("---:" if _is_num_col(block, j) else "---" for j in range(len(block.columns)))
    lines.append("|" + "|".join(aligns) + "|")
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in block.rows]
    return "\n".join(lines)


def _is_num_col(table: Table, j: int) -> bool:
    cells = [r[j] for r in table.rows if r[j]]
    return bool(cells) and all(_NUMERIC.match(c) for c in cells)


def render_markdown(inputs: ReportInputs, sections: Sequence[Section]) -> str:
    parts = [
        f"# {_md(inputs.title)}",
        f"Model report (模型报告) · model kind: {_md(inputs.model_kind)}. Charts: see report.html.",
    ]
    if _synthetic(inputs.metadata):
        parts.append(f"> **{_md(SYNTHETIC_NOTE)}**")
    for s in sections:
        parts.append(f"{'#' * s.level} {_md(s.title)}")
        parts += [_md_block(b) for b in s.blocks]
    return "\n\n".join(parts) + "\n"


def write_report(inputs: ReportInputs, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into ``out_dir`` (created if missing)."""
    sections = build_sections(inputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    html_path.write_text(render_html(inputs, sections), encoding="utf-8", newline="\n")
    md_path.write_text(render_markdown(inputs, sections), encoding="utf-8", newline="\n")
    return html_path, md_path
