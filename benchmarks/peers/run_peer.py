"""Fit the peers that cannot live in Puhui's environment, in their own virtualenv.

``benchmarks/bench_risk.py`` runs this script with ``benchmarks/.peer-venv/bin/python`` (built
from ``benchmarks/peers/requirements.txt``: pandas 2 and numpy 1, which scorecardpy needs). It
is a plain script with no Puhui import, so it runs on the side environment's pins.

Protocol (a folder, written by the benchmark)::

    manifest.json          {"datasets": [{"name", "categorical": [...]}], "models": [...],
                            "label": "<label column>", "repeat_below_seconds": 10.0}
    <name>.train.csv       the training rows: the features and the label column
    <name>.test.csv        the test rows: the features only

The CSV files are written with every float to 17 significant digits and missing values as
empty fields, and are read back here as exactly the same frames (categorical columns as text).
The script writes ``results.json`` beside them: a fingerprint of every frame it read (checked
by the benchmark against its own) and, for each data set and model, the fit time in seconds
and the test-set risk score (higher = more likely bad), one per test row, in order, or an
``error``. Progress goes to standard error, the peers' own chatter to standard output. The
benchmark turns the scores into AUC and KS by the same code for every model.

Run by hand: ``benchmarks/.peer-venv/bin/python benchmarks/peers/run_peer.py FOLDER``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# A fitted peer: test rows in, risk scores out (higher = more likely bad).
Fitted = Callable[[pd.DataFrame], np.ndarray]


def read_frame(path: Path, categorical: list[str]) -> pd.DataFrame:
    """Read a CSV written by the benchmark back into the very same frame.

    Text columns stay text, only empty fields are missing, and floats are parsed exactly
    (pandas' default fast parser can be one unit in the last place off).
    """
    return pd.read_csv(
        path,
        dtype={c: str for c in categorical},
        keep_default_na=False,
        na_values=[""],
        float_precision="round_trip",
    )


def frame_digest(frame: pd.DataFrame) -> str:
    """A fingerprint of a frame's columns and values that pandas 2 and 3 compute alike.

    The benchmark compares it with its own, so the peers provably fit on the same rows.
    """
    digest = hashlib.sha256()
    for column in frame.columns:
        values = frame[column]
        digest.update(str(column).encode() + b"\x00")
        if pd.api.types.is_numeric_dtype(values):
            digest.update(np.asarray(values, dtype=np.float64).tobytes())
        else:
            text = ("\x01" if pd.isna(v) else str(v) for v in values)
            digest.update("\x00".join(text).encode())
    return digest.hexdigest()


def fit_scorecardpy(X: pd.DataFrame, y: np.ndarray) -> tuple[Fitted, dict[str, Any]]:
    """scorecardpy as its README builds a model: woebin → woebin_ply → L1 logistic regression.

    The README's settings: ``woebin`` with its defaults (tree binning, at most 8 bins of at
    least 5 % each) and ``LogisticRegression(penalty="l1", C=0.9, solver="saga", n_jobs=-1)``.
    Two differences from the README. Everything is fitted on the training rows only (the
    README bins the whole data set before splitting). And its optional first step,
    ``var_filter`` (drop variables with IV < 0.02, > 95 % missing or > 95 % one value), is left
    out: its IV pass calls a Python function per distinct value of every column and alone took
    153 s on Polish year 5 (2 cores, machine busy); the L1 penalty does the selection instead. At
    scoring time a value ``woebin_ply`` cannot place (a category never seen in training) gets
    WOE 0, the neutral value; the number of such test cells is reported.
    """
    import scorecardpy as sc
    from sklearn.linear_model import LogisticRegression

    train = X.copy()
    train["__bad__"] = y
    bins = sc.woebin(train, y="__bad__")
    woe = sc.woebin_ply(train, bins)
    features = [c for c in woe.columns if c != "__bad__"]
    # random_state: saga shuffles the rows; the README leaves it unseeded.
    model = LogisticRegression(penalty="l1", C=0.9, solver="saga", n_jobs=-1, random_state=42)
    model.fit(woe[features], woe["__bad__"])
    info: dict[str, Any] = {"features_used": int(np.count_nonzero(model.coef_[0]))}

    def score(X_test: pd.DataFrame) -> np.ndarray:
        raw = [f.removesuffix("_woe") for f in features]
        test_woe = sc.woebin_ply(X_test[raw], bins)[features]
        info["test_cells_unplaced"] = int(test_woe.isna().sum().sum())
        return np.asarray(model.predict_proba(test_woe.fillna(0.0))[:, 1])

    return score, info


PEERS: dict[str, Callable[[pd.DataFrame, np.ndarray], tuple[Fitted, dict[str, Any]]]] = {
    "scorecardpy": fit_scorecardpy,
}


def timed_fit(
    fit: Callable[[pd.DataFrame, np.ndarray], tuple[Fitted, dict[str, Any]]],
    X: pd.DataFrame,
    y: np.ndarray,
    repeat_below: float,
) -> tuple[Fitted, dict[str, Any], float, int]:
    """Fit once; a fit quicker than ``repeat_below`` s is repeated twice more, fastest kept."""
    times: list[float] = []
    load = os.getloadavg()[0]  # the machine's 1-minute load average, reported with the time
    while True:
        started = time.perf_counter()
        scorer, info = fit(X, y)
        times.append(time.perf_counter() - started)
        if times[0] >= repeat_below or len(times) == 3:
            info["load_1min_before_fit"] = load  # in place: a scorer may add to it
            return scorer, info, min(times), len(times)


def versions() -> dict[str, str]:
    names = ["python", "numpy", "pandas", "scikit-learn", "scipy", "statsmodels", "scorecardpy"]
    found = {"python": sys.version.split()[0]}
    for name in names[1:]:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def main(folder: Path) -> int:
    np.random.seed(42)  # nothing here should draw from it; seeded all the same
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    label = manifest["label"]
    repeat_below = float(manifest["repeat_below_seconds"])
    results: dict[str, dict[str, Any]] = {}
    digests: dict[str, dict[str, str]] = {}
    for entry in manifest["datasets"]:
        name, categorical = entry["name"], entry["categorical"]
        train = read_frame(folder / f"{name}.train.csv", categorical)
        X_test = read_frame(folder / f"{name}.test.csv", categorical)
        y = train.pop(label).to_numpy(dtype=np.int64)
        digests[name] = {"train": frame_digest(train), "test": frame_digest(X_test)}
        results[name] = {}
        for model in manifest["models"]:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scorer, info, seconds, runs = timed_fit(PEERS[model], train, y, repeat_below)
                    scores = scorer(X_test)
                print(f"{name} / {model} (side virtualenv): fit {seconds:.2f} s", file=sys.stderr)
                results[name][model] = {
                    "fit_seconds": seconds,
                    "fit_runs": runs,
                    "scores": [float(s) for s in scores],
                    **info,
                }
            except Exception as exc:  # reported, the other models still run
                traceback.print_exc()
                results[name][model] = {"error": f"{type(exc).__name__}: {exc}"}
    payload = {"versions": versions(), "digests": digests, "results": results}
    (folder / "results.json").write_text(json.dumps(payload), encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: run_peer.py FOLDER")
    sys.exit(main(Path(sys.argv[1])))
