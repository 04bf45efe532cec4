"""Server CPU per submission of this checkout against an earlier commit, alternating runs.

Run: ``.venv/bin/python benchmarks/side_by_side.py --before REV [--database postgresql]
[--rounds 4] [--n 400]``. Writes ``benchmarks/results/submit_cpu_side_by_side.json``.

Why: the shared 2-core machine's speed drifts by a quarter or more within an hour, so a
figure measured today says little against one from yesterday. This checks ``REV`` out into a
temporary git worktree and runs ``profile_submit.py`` from each tree in turn (before, after,
before, after …), each in its own process with its own source on ``PYTHONPATH`` and the same
virtual environment, so each pair saw the same machine. The comparison is the ratio of the
per-request server CPU (and, on PostgreSQL, the database backends' CPU) within each pair.
Not part of ``make bench``: it answers "did this change help", not "how fast is Puhui".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "submit_cpu_side_by_side.json"
FIGURES = {
    "server_cpu_ms_mean": r"server CPU ms/request mean ([\d.]+)",
    "server_cpu_ms_median": r"median ([\d.]+)",
    "wall_ms_mean": r"wall ms mean ([\d.]+)",
    "statements": r"statements/request ([\d.]+)",
    "backend_cpu_ms": r"backend CPU ms/request ([\d.]+)",
    "round_trips": r"round trips/request ([\d.]+)",
}


def run_once(tree: Path, database: str, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    script = str(tree / "benchmarks" / "profile_submit.py")
    command = [sys.executable, script, "--database", database, "--n", str(n)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    out = done.stdout.strip().splitlines()[-1]
    figures = {}
    for name, pattern in FIGURES.items():
        found = re.search(pattern, out)
        if found:
            figures[name] = float(found.group(1))
    return figures


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--n", type=int, default=400)
    args = parser.parse_args(argv)
    before_rev = subprocess.run(
        ["git", "rev-parse", "--short", args.before],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    after_rev = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pairs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="puhui-before-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), before_rev],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            for i in range(args.rounds):
                before = run_once(tree, args.database, args.n)
                after = run_once(ROOT, args.database, args.n)
                pairs.append({"before": before, "after": after})
                ratio = after["server_cpu_ms_mean"] / before["server_cpu_ms_mean"]
                print(
                    f"round {i + 1}: server CPU ms/request {before['server_cpu_ms_mean']:.2f} → "
                    f"{after['server_cpu_ms_mean']:.2f} (× {ratio:.2f})"
                    + (
                        f"; PostgreSQL {before['backend_cpu_ms']:.2f} → "
                        f"{after['backend_cpu_ms']:.2f}"
                        if "backend_cpu_ms" in before and "backend_cpu_ms" in after
                        else ""
                    )
                )
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)],
                cwd=ROOT,
                check=False,
                capture_output=True,
            )
    ratios = {
        name: statistics.median(p["after"][name] / p["before"][name] for p in pairs)
        for name in ("server_cpu_ms_mean", "backend_cpu_ms", "wall_ms_mean")
        if all(name in p["before"] and name in p["after"] for p in pairs)
    }
    print("median after/before:", ", ".join(f"{k} × {v:.3f}" for k, v in ratios.items()))
    try:
        previous = json.loads(RESULTS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    previous[f"{before_rev}..{after_rev} {args.database}"] = {
        "before": before_rev,
        "after": after_rev,
        "database": args.database,
        "n": args.n,
        "pairs": pairs,
        "median_ratio_after_over_before": ratios,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(previous, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main(sys.argv[1:])
