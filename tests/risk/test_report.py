"""The model report: what the risk committee reads must carry the model's real figures, show
every chart, explain every selection decision, never let user text become markup, and come
out byte-identical from identical inputs."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from puhui.risk import metrics
from puhui.risk.gbm import GBMScorer
from puhui.risk.report import ReportInputs, overfit_reading, write_report
from puhui.risk.scorecard import Scorecard

EVIL_NAME = "<script>alert(1)</script>"
EVIL_LEVEL = "<img src=x onerror=alert(1)>"
N, N_TRAIN = 2000, 1400


def make_data(
    seed: int = 11, revenue: str = "revenue", level: str = "wholesale"
) -> tuple[pd.DataFrame, np.ndarray]:
    """Two informative numeric columns and one categorical, a copy of one (dropped as
    correlated) and pure noise; bads depend on age, revenue and sector."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 65, N).astype(float)
    rev = rng.lognormal(12, 1, N)
    sector = rng.choice(["retail", "制造业", level, "tech"], N, p=[0.4, 0.3, 0.2, 0.1])
    logit = (
        -1.4
        - 0.04 * (age - 40)
        - 0.6 * (np.log(rev) - 12)
        + np.select([sector == "retail", sector == "tech"], [0.6, -0.8], 0.0)
    )
    y = (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame(
        {
            "age": age,
            revenue: rev,
            "sector": sector,
            "revenue_copy": rev * 1.01,
            "noise": rng.normal(size=N),
        }
    )
    return frame, y


@dataclass
class Written:
    inputs: ReportInputs
    card: Scorecard
    html: str
    md: str
    out: Path


def scorecard_inputs(
    frame: pd.DataFrame, y: np.ndarray, **meta: object
) -> tuple[ReportInputs, Scorecard]:
    tr, te = frame.iloc[:N_TRAIN], frame.iloc[N_TRAIN:]
    card = Scorecard().fit(tr, y[:N_TRAIN])
    inputs = ReportInputs(
        title="sme-credit scorecard v3",
        model_kind="scorecard",
        metadata={"data": {"sha256": "ab" * 32, "rows": N}, "target": "bad", **meta},
        y_train=y[:N_TRAIN],
        pd_train=card.predict_proba(tr)[:, 1],
        score_train=card.predict_score(tr),
        y_test=y[N_TRAIN:],
        pd_test=card.predict_proba(te)[:, 1],
        score_test=card.predict_score(te),
        binnings=[card.binnings_[n] for n in card.model_.features],
        selection=card.selection_,
        points_table=card.model_.points_table(),
    )
    return inputs, card


def write(inputs: ReportInputs, card: Scorecard, out: Path) -> Written:
    html_path, md_path = write_report(inputs, out)
    return Written(inputs, card, html_path.read_text("utf-8"), md_path.read_text("utf-8"), out)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Written:
    frame, y = make_data()
    inputs, card = scorecard_inputs(frame, y, synthetic=True)
    return write(inputs, card, tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory) -> Written:
    frame, y = make_data(revenue=EVIL_NAME, level=EVIL_LEVEL)
    inputs, card = scorecard_inputs(frame, y)
    inputs = replace(inputs, title=f"card {EVIL_NAME}")
    return write(inputs, card, tmp_path_factory.mktemp("evil"))


def md_row(md: str, first_cell: str) -> list[str]:
    """Cells of the first Markdown table row whose first cell is ``first_cell``."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if line.startswith("| ") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no Markdown row starting {first_cell!r}")


def section(md: str, heading: str) -> str:
    """The Markdown of one ``## heading…`` section, up to the next second-level heading."""
    start = md.index(f"\n## {heading}")
    end = md.find("\n## ", start + 1)
    return md[start : end if end > 0 else None]


def html_rows(text: str) -> list[str]:
    return re.findall(r"<tr>.*?</tr>", text)


def svgs(text: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", text, re.S)


# ----------------------------------------------------------------------------- files and numbers
def test_writes_both_files(report: Written) -> None:
    assert (report.out / "report.html").is_file()
    assert (report.out / "report.md").is_file()
    assert report.html.startswith("<!DOCTYPE html>")
    assert report.md.startswith("# sme-credit scorecard v3")


def test_html_is_self_contained(report: Written) -> None:
    """Opens with no network and no script: nothing is fetched, nothing runs."""
    lowered = report.html.lower()
    for needle in ("<script", "<link", "<img", "<iframe", "src=", "@import", "url(http"):
        assert needle not in lowered, needle
    assert "<style>" in report.html


def test_headline_auc_matches_an_independent_computation(report: Written) -> None:
    i = report.inputs
    test_auc = float(roc_auc_score(i.y_test, i.pd_test))
    train_auc = float(roc_auc_score(i.y_train, i.pd_train))
    row = md_row(report.md, "AUC")
    assert float(row[1]) == pytest.approx(train_auc, abs=5e-5)
    assert float(row[2]) == pytest.approx(test_auc, abs=5e-5)
    assert float(row[3]) == pytest.approx(train_auc - test_auc, abs=1e-4)
    assert f"{test_auc:.4f}" in report.html
    assert f'<td class="num">{test_auc:.4f}</td>' in report.html


def test_headline_ks_gini_brier_and_overfit_line(report: Written) -> None:
    i = report.inputs
    assert float(md_row(report.md, "KS")[2]) == pytest.approx(
        metrics.ks(i.y_test, i.pd_test), abs=5e-5
    )
    assert float(md_row(report.md, "Gini")[2]) == pytest.approx(
        metrics.gini(i.y_test, i.pd_test), abs=5e-5
    )
    assert float(md_row(report.md, "Brier")[1]) == pytest.approx(
        metrics.brier(i.y_train, i.pd_train), abs=5e-5
    )
    line = overfit_reading(metrics.auc(i.y_train, i.pd_train), metrics.auc(i.y_test, i.pd_test))
    assert html.escape(line) in report.html
    assert line in report.md


def test_ks_curve_by_score_agrees_with_ks_by_pd(report: Written) -> None:
    """A scorecard's PD is a decreasing function of its score, so the KS read off the score
    curve must equal the KS of the PD."""
    i = report.inputs
    assert f"Widest KS gap on test {metrics.ks(i.y_test, i.pd_test):.4f} at score" in report.md


def test_lift_and_calibration_tables_carry_band_table(report: Written) -> None:
    i = report.inputs
    rows = metrics.band_table(i.y_test, i.pd_test)
    assert len(rows) == 10
    lift = section(report.md, "Decile lift")
    calibration = section(report.md, "Calibration")
    for r in rows:
        assert md_row(lift, str(r.band))[2:5] == [str(r.count), str(r.bads), f"{r.bad_rate:.2%}"]
        assert md_row(lift, str(r.band))[-1] == f"{r.lift:.2f}"
        assert md_row(calibration, str(r.band))[3:5] == [f"{r.mean_pd:.2%}", f"{r.bad_rate:.2%}"]


def test_psi_and_stability_label(report: Written) -> None:
    i = report.inputs
    value = metrics.psi(i.score_train, i.score_test)
    expected = f"PSI of the score, train → test: {value:.4f} ({metrics.stability_label(value)})"
    assert expected in report.md
    assert expected in report.html


# ----------------------------------------------------------------------------- charts
def test_every_chart_kind_is_an_inline_svg(report: Written) -> None:
    charts = svgs(report.html)
    kept = report.card.model_.features
    assert len(charts) == 4 + len(kept)
    titles = ["ROC curve", "KS curve (test)", "Score distribution (test)", "Calibration by PD band"]
    for title in titles:
        assert sum(title in c for c in charts) == 1, title
    assert sum("Share of rows and bad rate by bin" in c for c in charts) == len(kept)
    assert all("<metadata>" not in c for c in charts)


def test_svg_ids_are_unique_across_the_page(report: Written) -> None:
    ids = re.findall(r'\bid="([^"]+)"', report.html)
    assert len(ids) == len(set(ids))
    for ref in re.findall(r"url\(#([^)]+)\)|href=\"#([^\"]+)\"", report.html):
        assert (ref[0] or ref[1]) in ids


# ----------------------------------------------------------------------------- scorecard content
def test_kept_variables_and_their_bins_are_shown(report: Written) -> None:
    kept = report.card.model_.features
    assert set(kept) >= {"age", "sector"}
    for name in kept:
        assert f">{html.escape(name)}</h3>" in report.html
        for b in report.card.binnings_[name].bins:
            assert f"{b.woe:.4f}" in report.html
            assert html.escape(b.label) in report.html


def test_selection_report_lists_dropped_variables_with_reason(report: Written) -> None:
    dropped = [r for r in report.card.selection_ if not r.kept]
    assert any(r.name == "revenue_copy" and r.reason.startswith("correlated") for r in dropped)
    rows = html_rows(report.html)
    for r in report.card.selection_:
        row = [x for x in rows if x.startswith(f"<tr><td>{html.escape(r.name)}</td><td>{r.kind}")]
        assert len(row) == 1, r.name
        assert ("<td>kept</td>" if r.kept else "<td>dropped</td>") in row[0]
        assert f"<td>{html.escape(r.reason)}</td>" in row[0]


def test_points_table_is_complete(report: Written) -> None:
    table = report.card.model_.points_table()
    base = md_row(report.md, "(base points)")
    assert float(base[-1]) == pytest.approx(table[0]["points"])
    point_rows = [line for line in report.md.splitlines() if line.count(" | ") == 5]
    for row in table[1:]:
        assert any(
            line.startswith(f"| {row['variable']} | ")
            and line.endswith(f" | {row['points']:.2f} |")
            for line in point_rows
        ), row


def test_metadata_is_flattened_and_synthetic_is_flagged(report: Written) -> None:
    assert md_row(report.md, "data.sha256")[1] == "ab" * 32
    assert md_row(report.md, "target")[1] == "bad"
    assert "Trained on synthetic data" in report.html
    assert "Trained on synthetic data" in report.md


# ------------------------------------------------------------------ safety and determinism
def test_user_text_is_escaped_everywhere(evil: Written) -> None:
    assert EVIL_NAME in evil.card.model_.features  # the hostile column is shown, not dropped
    assert "<script" not in evil.html.lower()
    assert "<img" not in evil.html.lower()
    assert html.escape(EVIL_NAME) in evil.html
    assert html.escape(EVIL_LEVEL) in evil.html
    assert f"<title>card {html.escape(EVIL_NAME)}</title>" in evil.html
    assert "<script" not in evil.md and "<img" not in evil.md
    assert "Trained on synthetic data" not in evil.html


def test_two_runs_give_identical_bytes(report: Written, tmp_path: Path) -> None:
    again = write(report.inputs, report.card, tmp_path / "again")
    assert (again.out / "report.html").read_bytes() == (report.out / "report.html").read_bytes()
    assert (again.out / "report.md").read_bytes() == (report.out / "report.md").read_bytes()


# ----------------------------------------------------------------------------- GBM
def test_gbm_report_shows_feature_importance(tmp_path: Path) -> None:
    frame, y = make_data(seed=5, revenue=EVIL_NAME)
    frame = frame[["age", EVIL_NAME, "sector"]]
    tr, te = frame.iloc[:N_TRAIN], frame.iloc[N_TRAIN:]
    gbm = GBMScorer(max_trees=50).fit(tr, y[:N_TRAIN])
    model = gbm.model_
    contrib = np.asarray(model.booster.predict(model.encode(te), pred_contrib=True))[:, :-1]
    points = np.abs(contrib).mean(axis=0) * model.scaling.factor
    importance = dict(zip(model.features, points.tolist(), strict=True))
    inputs = ReportInputs(
        title="sme-credit gbm",
        model_kind="gbm",
        metadata={"trees": model.metadata["trees"]},
        y_train=y[:N_TRAIN],
        pd_train=gbm.predict_proba(tr)[:, 1],
        score_train=gbm.predict_score(tr),
        y_test=y[N_TRAIN:],
        pd_test=gbm.predict_proba(te)[:, 1],
        score_test=gbm.predict_score(te),
        feature_importance=importance,
    )
    html_path, md_path = write_report(inputs, tmp_path)
    text, md = html_path.read_text("utf-8"), md_path.read_text("utf-8")
    charts = svgs(text)
    assert len(charts) == 5
    chart = next(c for c in charts if "Feature importance" in c)
    assert html.escape(EVIL_NAME) in chart and "<script" not in text.lower()
    top = max(importance, key=lambda k: importance[k])
    assert md_row(section(md, "Feature importance"), "1")[1:3] == [
        html.escape(top),
        f"{importance[top]:.2f}",
    ]
    assert "Variable selection" not in text and "Points table" not in text
    assert f"{roc_auc_score(inputs.y_test, inputs.pd_test):.4f}" in text


# ----------------------------------------------------------------------------- inputs and readings
def test_inputs_are_checked() -> None:
    ok = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="model_kind"):
        ReportInputs("t", "forest", {}, ok, ok, ok, ok, ok, ok)
    with pytest.raises(ValueError, match="differ in length"):
        ReportInputs("t", "gbm", {}, ok, ok, ok, ok, ok[:3], ok)


@pytest.mark.parametrize(
    ("train", "test", "word"),
    [(0.75, 0.76, "no material"), (0.80, 0.77, "mild"), (0.90, 0.78, "material overfitting")],
)
def test_overfit_reading(train: float, test: float, word: str) -> None:
    assert word in overfit_reading(train, test)
