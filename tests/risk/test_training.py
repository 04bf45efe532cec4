"""Reading a training CSV with errors that help, training with full metadata, and `puhui train`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from puhui.risk import metrics
from puhui.risk.artifact import ModelArtifact, library_versions
from puhui.risk.frame import DataError
from puhui.risk.training import read_training_csv, train_model
from puhui.settings import get_settings


def training_table(seed: int = 5, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(size=n)
    kind = rng.choice(["shop", "farm", "plant"], size=n)
    z = -1.5 + 1.2 * income + np.where(kind == "plant", 0.7, 0.0)
    bad = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    return pd.DataFrame(
        {
            "income": income.round(3),
            "kind": kind,
            "years": rng.integers(0, 30, size=n),
            "status": np.where(bad == 1, "bad", "good"),
        }
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- reading
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_training_csv(tmp_path / "nope.csv", "bad")


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match="is empty"):
        read_training_csv(path, "bad")


def test_header_only(tmp_path: Path) -> None:
    path = write(tmp_path / "header.csv", "income,kind,bad\n")
    with pytest.raises(DataError, match="header but no rows"):
        read_training_csv(path, "bad")


def test_target_column_missing_names_it_and_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "no-target.csv", "income,kind\n1,a\n2,b\n")
    with pytest.raises(DataError) as info:
        read_training_csv(path, "defaulted")
    message = str(info.value)
    assert "'defaulted'" in message
    assert "income" in message and "kind" in message


@pytest.mark.parametrize(
    ("text", "target", "kwargs"),
    [
        ("income,bad\n1,0\n2,0\n3,0\n", "bad", {}),
        ("income,bad\n1,1\n2,1\n", "bad", {}),
        ("income,status\n1,good\n2,good\n", "status", {"bad_label": "bad"}),
    ],
    ids=["all-zero", "all-one", "label-never-present"],
)
def test_one_class_only(tmp_path: Path, text: str, target: str, kwargs: dict[str, str]) -> None:
    path = write(tmp_path / "one.csv", text)
    with pytest.raises(DataError, match="one class"):
        read_training_csv(path, target, **kwargs)


def test_text_target_without_bad_label_suggests_it(tmp_path: Path) -> None:
    path = write(tmp_path / "text.csv", "income,status\n1,good\n2,bad\n3,good\n")
    with pytest.raises(DataError) as info:
        read_training_csv(path, "status")
    message = str(info.value)
    assert "--bad-label" in message
    assert "'status'" in message
    assert "bad" in message and "good" in message


def test_value_neither_label_when_both_given(tmp_path: Path) -> None:
    path = write(tmp_path / "three.csv", "income,status\n1,good\n2,bad\n3,late\n")
    with pytest.raises(DataError) as info:
        read_training_csv(path, "status", bad_label="bad", good_label="good")
    assert "'late'" in str(info.value)
    assert "neither" in str(info.value)


def test_target_with_empty_values(tmp_path: Path) -> None:
    path = write(tmp_path / "gaps.csv", "income,bad\n1,0\n2,\n3,1\n")
    with pytest.raises(DataError, match=r"1 rows have no value in 'bad'"):
        read_training_csv(path, "bad")


def test_numeric_column_with_junk_names_column_and_line(tmp_path: Path) -> None:
    rows = [f"{i * 1.5},{i % 2}" for i in range(40)]
    rows[7] = "12a,1"  # data row 8 → line 9 of the file (line 1 is the header)
    path = write(tmp_path / "junk.csv", "income,bad\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as info:
        read_training_csv(path, "bad")
    message = str(info.value)
    assert message.startswith("income:")
    assert "'12a'" in message
    assert "line 9" in message
    assert path.read_text().splitlines()[8] == "12a,1"


def test_junk_line_number_counts_blank_lines(tmp_path: Path) -> None:
    rows = [f"{i * 1.5},{i % 2}" for i in range(40)]
    rows[7] = "12a,1"
    text = "income,bad\n" + "\n".join(rows[:3]) + "\n\n" + "\n".join(rows[3:]) + "\n"
    path = write(tmp_path / "junk-blank.csv", text)
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if t == "12a,1")
    assert line == 10
    with pytest.raises(DataError, match=f"line {line};"):
        read_training_csv(path, "bad")


def test_text_labels_are_mapped_by_bad_label(tmp_path: Path) -> None:
    path = write(
        tmp_path / "labels.csv", "income,kind,status\n1.5,a,good\n2.5,b,bad\n3,a,good\n4,b,bad\n"
    )
    frame, y = read_training_csv(path, "status", bad_label="bad")
    assert list(y) == [0, 1, 0, 1]
    assert list(frame.columns) == ["income", "kind"]
    assert frame["income"].tolist() == [1.5, 2.5, 3.0, 4.0]
    # the same with only the good label
    _, y_good = read_training_csv(path, "status", good_label="good")
    assert list(y_good) == [0, 1, 0, 1]
    # and with both
    _, y_both = read_training_csv(path, "status", bad_label="bad", good_label="good")
    assert list(y_both) == [0, 1, 0, 1]


def test_numeric_target_is_read_as_is(tmp_path: Path) -> None:
    path = write(tmp_path / "num.csv", "income,bad\n1,0\n2,1\n3,0\n")
    frame, y = read_training_csv(path, "bad")
    assert y.dtype == np.int64
    assert list(y) == [0, 1, 0]
    assert "bad" not in frame.columns


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("training") / "train.csv"
    training_table().to_csv(path, index=False)
    return path


def test_train_model_metadata(csv_path: Path) -> None:
    frame, y = read_training_csv(csv_path, "status", bad_label="bad")
    run = train_model(
        frame, y, seed=3, data_source="unit test", data_path=csv_path, target="status"
    )
    meta = run.artifact.metadata
    assert meta["data"]["sha256"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert meta["data"]["rows"] == len(frame)
    assert meta["data"]["columns"] == ["income", "kind", "years"]
    assert meta["data"]["target"] == "status"
    assert meta["data"]["bad_rate"] == pytest.approx(float(y.mean()))
    assert meta["split"] == {"test_size": 0.3, "seed": 3, "stratified": True}
    assert meta["libraries"] == library_versions()
    for name in ("python", "numpy", "pandas", "scikit-learn", "scipy", "lightgbm"):
        assert meta["libraries"][name]
    for part in ("train", "test"):
        assert set(meta["metrics"][part]) == {"auc", "ks", "gini", "brier"}
    assert meta["metrics"]["test"]["auc"] == pytest.approx(metrics.auc(run.y_test, run.pd_test))
    assert meta["metrics"]["test"]["auc"] > 0.65
    assert run.test_metrics == meta["metrics"]["test"]
    assert len(run.y_test) == round(0.3 * len(frame))
    # a stratified split keeps the bad rate
    assert run.y_test.mean() == pytest.approx(y.mean(), abs=0.01)
    assert meta["features"] == run.artifact.features
    assert meta["kind"] == "scorecard"
    assert {r["name"] for r in meta["selection"]} == {"income", "kind", "years"}
    # the profile covers the features and the training scores
    profiled = set(meta["profile"]["features"])
    assert set(run.artifact.features) <= profiled <= {"income", "kind", "years"}
    for entry in meta["profile"]["features"].values():
        assert sum(entry["counts"]) == len(run.y_train)
    assert sum(meta["profile"]["score"]["counts"]) == len(run.y_train)
    # the artifact survives its own JSON
    back = ModelArtifact.from_json(run.artifact.to_json())
    assert np.array_equal(back.scores(run.x_test), run.score_test)


def test_in_memory_data_gets_a_content_digest() -> None:
    table = training_table(seed=8, n=300)
    y = (table.pop("status") == "bad").astype(int).to_numpy()
    one = train_model(table, y, data_source="memory")
    two = train_model(table.copy(), y, data_source="memory")
    digest = one.artifact.metadata["data"]["sha256"]
    assert len(digest) == 64
    assert digest == two.artifact.metadata["data"]["sha256"]
    changed = table.copy()
    changed.loc[0, "income"] += 1
    assert (
        train_model(changed, y, data_source="memory").artifact.metadata["data"]["sha256"] != digest
    )


def test_same_seed_gives_the_same_model(csv_path: Path) -> None:
    frame, y = read_training_csv(csv_path, "status", bad_label="bad")
    one = train_model(frame, y, seed=11, data_source="t", data_path=csv_path)
    two = train_model(frame, y, seed=11, data_source="t", data_path=csv_path)
    assert one.artifact.model.to_dict() == two.artifact.model.to_dict()
    assert np.array_equal(one.score_test, two.score_test)
    other = train_model(frame, y, seed=12, data_source="t", data_path=csv_path)
    assert not other.x_test.index.equals(one.x_test.index)


def test_train_model_rejects_bad_arguments() -> None:
    table = training_table(seed=9, n=200)
    y = (table.pop("status") == "bad").astype(int).to_numpy()
    with pytest.raises(DataError, match="test_size"):
        train_model(table, y, data_source="t", test_size=1.5)
    with pytest.raises(DataError, match="model"):
        train_model(table, y, data_source="t", kind="forest")
    few = np.zeros(len(y), dtype=np.int64)
    few[:3] = 1
    with pytest.raises(DataError, match="at least 5"):
        train_model(table, few, data_source="t")


# ----------------------------------------------------------------------------- CLI
@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PUHUI_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_cli_train_end_to_end(cli_env: Path, csv_path: Path) -> None:
    from puhui.cli import app

    out = cli_env / "model-out"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(csv_path),
            "--target",
            "status",
            "--bad-label",
            "bad",
            "--no-register",
            "--out",
            str(out),
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "test AUC" in result.output
    for name in ("model.json", "report.html", "report.md"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0
    artifact = ModelArtifact.load(out / "model.json")
    assert artifact.kind == "scorecard"
    assert artifact.metadata["data"]["sha256"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert artifact.metadata["split"]["seed"] == 3
    auc = artifact.metadata["metrics"]["test"]["auc"]
    assert f"test AUC {auc:.4f}" in " ".join(result.output.split())
    assert json.loads((out / "model.json").read_text())["format"] == "puhui.model/1"


def test_cli_train_error_exits_non_zero_with_the_message(cli_env: Path, csv_path: Path) -> None:
    from puhui.cli import app

    out = cli_env / "never"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(csv_path),
            "--target",
            "status",
            "--no-register",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code != 0
    text = " ".join(result.output.split())
    assert "error:" in text
    assert "--bad-label" in text
    assert not out.exists()
    missing = CliRunner().invoke(
        app,
        ["train", "--data", str(cli_env / "none.csv"), "--target", "bad", "--no-register"],
    )
    assert missing.exit_code != 0
    assert "no such file" in " ".join(missing.output.split())
