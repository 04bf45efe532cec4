"""``puhui fraud rings --from FILE.csv`` end to end, malformed rows included."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from puhui.cli import app
from puhui.fraud.external import LinkColumn, parse_link_spec, read_external
from puhui.fraud.links import LinkKind

runner = CliRunner()

HEADER = "app_id,phone,mail,device,ip,submitted,bad\n"
ROWS = [
    "A1,13800000001,a1@x.cn,DEV-1,10.0.0.1,2024-03-01T10:00:00+08:00,1\n",  # line 2
    "A2,+86 138 0000 0002,a2@x.cn,dev-1,10.0.0.1,2024-03-01T11:00:00+08:00,\n",  # 3
    "A3,13800000003,a3@x.cn,DEV-1;DEV-9,10.0.0.2,2024-03-02T09:00:00+08:00,\n",  # 4
    "B1,13900000001,b1@x.cn,DEV-2,10.0.0.3,2024-03-05T10:00:00+08:00,0\n",  # 5
    "B2,13900000001,b2@x.cn,,10.0.0.4,2024-03-06T10:00:00+08:00,\n",  # 6
    "C1,13700000001,c1@x.cn,DEV-3,10.0.0.5,2024-03-07T10:00:00+08:00,\n",  # 7
    "C2,13700000002,c2@x.cn\n",  # 8: too few columns
    ",13700000003,c3@x.cn,DEV-4,10.0.0.6,2024-03-07T10:00:00+08:00,\n",  # 9: empty id
    "A1,13700000004,c4@x.cn,DEV-5,10.0.0.7,2024-03-07T10:00:00+08:00,\n",  # 10: duplicate id
    "C5,12345,c5@x.cn,DEV-6,10.0.0.8,2024-03-07T10:00:00+08:00,\n",  # 11: bad mobile
    "C6,13700000006,not-mail,DEV-7,10.0.0.9,2024-03-07T10:00:00+08:00,\n",  # 12: bad email
    "C7,13700000007,c7@x.cn,DEV-8,999.1.1.1,2024-03-07T10:00:00+08:00,\n",  # 13: bad ip
    "C8,13700000008,c8@x.cn,DEV-9,10.0.0.10,yesterday,\n",  # 14: bad time
    "<script>alert(1)</script>,13900000001,x@x.cn,,10.0.0.11,2024-03-06T10:00:00+08:00,\n",
]
LINKS = ["phone:mobile", "mail:email", "device:device", "ip:ip"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "legacy.csv"
    path.write_text(HEADER + "".join(ROWS), encoding="utf-8")
    return path


def _args(path: Path, *extra: str) -> list[str]:
    args = ["fraud", "rings", "--from", str(path), "--id", "app_id"]
    for spec in LINKS:
        args += ["--link", spec]
    return [*args, "--time", "submitted", "--label", "bad", *extra]


def test_malformed_rows_are_reported_by_line_and_the_rest_processed(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "groups.csv"
    result = runner.invoke(app, _args(data, "--out", str(out)))
    assert result.exit_code == 0, result.output
    for line, reason in [
        (8, "3 columns, the header has 7"),
        (9, "empty id"),
        (10, "duplicate id (first on line 2)"),
        (11, "not a mainland mobile number"),
        (12, "not an email address"),
        (13, "not an IP address"),
        (14, "not a time"),
    ]:
        assert f"line {line}:" in result.output and reason in result.output, (line, result.output)
    assert "14 rows: 7 read, 7 skipped" in result.output

    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "group", "group_size", "score"]
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {"A1", "A2", "A3", "B1", "B2", "C1", "<script>alert(1)</script>"}
    assert by_id["A1"]["group"] == by_id["A2"]["group"] == by_id["A3"]["group"] != ""
    assert by_id["A1"]["group_size"] == "3"
    assert (
        by_id["B1"]["group"] == by_id["B2"]["group"] == by_id["<script>alert(1)</script>"]["group"]
    )
    assert by_id["C1"]["group"] == "" and float(by_id["C1"]["score"]) == 0.0
    assert float(by_id["A1"]["score"]) > 0


def test_no_identifier_text_reaches_the_output(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "groups.csv"
    result = runner.invoke(app, _args(data, "--out", str(out), "--use-weak"))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8").lower()
    for secret in ("1380000000", "13900000001", "@x.cn", "dev-1", "10.0.0."):
        assert secret not in text
        assert secret not in result.output.lower().replace("line", "")


def test_pictures_are_written_and_html_is_escaped(data: Path, tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    result = runner.invoke(app, _args(data, "--pictures", str(pictures), "--top", "5"))
    assert result.exit_code == 0, result.output
    pngs = sorted(pictures.glob("group-*.png"))
    pages = sorted(pictures.glob("group-*.html"))
    assert len(pngs) == len(pages) == 2
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
    html = "".join(p.read_text(encoding="utf-8") for p in pages)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "data:image/png;base64," in html


def test_missing_column_and_bad_link_spec_fail_clearly(data: Path) -> None:
    result = runner.invoke(
        app, ["fraud", "rings", "--from", str(data), "--id", "nope", "--link", "phone:mobile"]
    )
    assert result.exit_code == 1 and "not in the header: nope" in result.output
    result = runner.invoke(
        app, ["fraud", "rings", "--from", str(data), "--id", "app_id", "--link", "phone:fax"]
    )
    assert result.exit_code == 1 and "unknown kind" in result.output
    result = runner.invoke(app, ["fraud", "rings", "--from", str(data)])
    assert result.exit_code == 1 and "--link" in result.output


def test_read_external_and_link_specs(data: Path) -> None:
    assert parse_link_spec("a:b:mobile") == LinkColumn("a:b", LinkKind.MOBILE)
    read = read_external(
        data,
        "app_id",
        [parse_link_spec(s) for s in LINKS],
        time_column="submitted",
        label_column="bad",
    )
    assert read.rows == 14 and read.table.n_records == 7
    assert [p.line for p in read.problems] == list(range(8, 15))
    assert read.meta.labels is not None and read.meta.labels.tolist()[:4] == [1, -1, -1, 0]
    assert read.meta.timestamps is not None and read.meta.timestamps[0] == 1709258400.0
