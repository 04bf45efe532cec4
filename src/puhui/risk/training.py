"""Training a model end to end: split, fit, measure, and package it as an artifact.

One function serves the CLI (``puhui train``), the bundled default model and notebooks, so a
model's metadata always says the same things: where the data came from (and its SHA-256),
the seeded stratified split, the parameters, the library versions, train and test metrics.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.model_selection import train_test_split

from puhui.risk import metrics
from puhui.risk.artifact import ModelArtifact, library_versions, sha256_of_file, sha256_of_frame
from puhui.risk.frame import DataError, as_target
from puhui.risk.gbm import GBMScorer
from puhui.risk.profile import build_profile
from puhui.risk.scorecard import Scorecard

FloatArray = npt.NDArray[np.float64]


@dataclass
class TrainingRun:
    artifact: ModelArtifact
    estimator: Scorecard | GBMScorer
    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: npt.NDArray[np.int64]
    y_test: npt.NDArray[np.int64]
    pd_train: FloatArray
    pd_test: FloatArray
    score_train: FloatArray
    score_test: FloatArray

    @property
    def test_metrics(self) -> dict[str, float]:
        return dict(self.artifact.metadata["metrics"]["test"])


def read_training_csv(
    path: Path, target: str, *, bad_label: str | None = None, good_label: str | None = None
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """Features and a 0/1 target (1 = bad) from a CSV file, with errors that say what is wrong.

    A text target needs ``bad_label`` (every other value is good) or ``good_label``; a numeric
    one must be 0/1. Columns of text that are mostly numbers are read as numbers with the junk
    reported, never silently turned into a category of its own."""
    if not path.exists():
        raise DataError(f"data: no such file {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data: {path} is empty")
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"data: {path} is not a readable CSV file ({exc})") from exc
    if frame.empty:
        raise DataError(f"data: {path} has a header but no rows")
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:8]))
        raise DataError(f"target: no column {target!r} in {path.name} (columns: {shown} …)")
    raw = frame.pop(target)
    if raw.isna().any():
        raise DataError(f"target: {int(raw.isna().sum())} rows have no value in {target!r}")
    if bad_label is not None or good_label is not None:
        text = raw.astype(str)
        known = {bad_label, good_label} - {None}
        if bad_label is not None and good_label is not None:
            unknown = sorted(set(text) - known)
            if unknown:
                raise DataError(
                    f"target: values {unknown[:5]} are neither the bad label {bad_label!r} "
                    f"nor the good label {good_label!r}"
                )
        y = (
            (text == bad_label).to_numpy()
            if bad_label is not None
            else (text != good_label).to_numpy()
        )
    elif pd.api.types.is_numeric_dtype(raw):
        y = raw.to_numpy()
    else:
        values = sorted(map(str, raw.unique()))[:5]
        raise DataError(
            f"target: {target!r} holds text {values}; say which value is bad with --bad-label"
        )
    for col in list(frame.columns):
        series = frame[col]
        if pd.api.types.is_numeric_dtype(series) or series.isna().all():
            continue
        parsed = pd.to_numeric(series, errors="coerce")
        present = series.notna() & (series.astype(str).str.strip() != "")
        junk = present & parsed.isna()
        if parsed.notna().sum() >= 0.95 * present.sum() and junk.any():
            first = int(np.flatnonzero(junk.to_numpy())[0])
            raise DataError(
                f"{col}: mostly numbers but {int(junk.sum())} value(s) are not, e.g. "
                f"{series.iloc[first]!r} on line {_file_line(path, first)}; "
                "clean them or make them empty"
            )
    return frame, as_target(y, len(frame))


def _file_line(path: Path, row: int) -> int:
    """The file's line number of data row ``row`` (0-based), counting the header and the
    blank lines pandas skips; only called on the error path."""
    raw = pd.read_csv(path, skip_blank_lines=False, dtype=str, keep_default_na=False)
    blank = (raw == "").all(axis=1).to_numpy()
    data_lines = np.flatnonzero(~blank)
    return int(data_lines[row]) + 2 if row < len(data_lines) else row + 2


def _estimator(
    kind: str, texts: Mapping[str, tuple[str, str]] | None, seed: int, name: str
) -> Scorecard | GBMScorer:
    if kind == "scorecard":
        return Scorecard(texts=texts, name=name)
    if kind == "gbm":
        return GBMScorer(texts=texts, random_state=seed, name=name)
    raise DataError(f"model: must be 'scorecard' or 'gbm', not {kind!r}")


def train_model(
    frame: pd.DataFrame,
    y: npt.ArrayLike,
    *,
    kind: str = "scorecard",
    name: str = "model",
    seed: int = 42,
    test_size: float = 0.3,
    data_source: str,
    data_path: Path | None = None,
    synthetic: bool = False,
    texts: Mapping[str, tuple[str, str]] | None = None,
    created_by: str = "puhui train",
    target: str = "bad",
) -> TrainingRun:
    """Seeded stratified split, fit, test metrics, profile and metadata."""
    target_arr = as_target(y, len(frame))
    if not 0 < test_size < 1:
        raise DataError("test_size: must be between 0 and 1")
    if min(np.bincount(target_arr)) < 5:
        raise DataError("target: each class needs at least 5 rows to split and test")
    x_tr, x_te, y_tr, y_te = train_test_split(
        frame, target_arr, test_size=test_size, random_state=seed, stratify=target_arr
    )
    est = _estimator(kind, texts, seed, name)
    started = datetime.now(UTC)
    est.fit(x_tr, y_tr)
    fit_seconds = (datetime.now(UTC) - started).total_seconds()
    model = est.model_
    pd_tr, pd_te = model.predict_pd(x_tr), model.predict_pd(x_te)
    s_tr, s_te = model.scores(x_tr), model.scores(x_te)
    features = list(model.features)
    metadata: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "created_at": started.isoformat(),
        "created_by": created_by,
        "synthetic": synthetic,
        "data": {
            "source": data_source,
            "sha256": sha256_of_file(data_path) if data_path else sha256_of_frame(frame),
            "rows": len(frame),
            "columns": [str(c) for c in frame.columns],
            "target": target,
            "bad_rate": float(target_arr.mean()),
        },
        "split": {"test_size": test_size, "seed": seed, "stratified": True},
        "features": features,
        "params": {k: v for k, v in est.get_params().items() if k != "texts"},
        "libraries": library_versions(),
        "fit_seconds": round(fit_seconds, 3),
        "metrics": {"train": metrics.summary(y_tr, pd_tr), "test": metrics.summary(y_te, pd_te)},
        "profile": build_profile(x_tr, s_tr),
    }
    if kind == "scorecard":
        metadata["selection"] = [r.as_dict() for r in getattr(est, "selection_", [])]
    model.metadata = {"name": name}
    artifact = ModelArtifact(kind, model, metadata)
    return TrainingRun(artifact, est, x_tr, x_te, y_tr, y_te, pd_tr, pd_te, s_tr, s_te)


def feature_importance(run: TrainingRun, sample: int = 2000) -> dict[str, float]:
    """Mean |contribution| in points per feature over a seeded sample of the test rows."""
    rows = run.x_test.sample(min(sample, len(run.x_test)), random_state=0)
    totals: dict[str, float] = {}
    for rec in rows.to_dict("records"):
        for c in run.artifact.score_one(rec).contributions:
            totals[c.feature] = totals.get(c.feature, 0.0) + abs(c.points)
    n = max(1, len(rows))
    return {k: v / n for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
