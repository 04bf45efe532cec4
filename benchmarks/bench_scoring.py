"""Scoring one application in-process: our serving paths beside the library calls under them.

Run: ``.venv/bin/python benchmarks/bench_scoring.py`` (about a minute). Seeded throughout.

Issue 4 asks for scoring one application "in well under a millisecond in-process (no pandas on
the hot path)". Both models are trained on the synthetic generator's applicants (as the bundled
default is) and score the same 2,000 applications given as plain dicts, the way a decision
hands them over:

* **Scorecard** — ``ScorecardModel.score_one`` (bins, points, PD and all reason codes) against
  the peer path a notebook would take: the fitted estimator's ``predict_proba`` on a one-row
  DataFrame.
* **GBM** — ``GBMModel.score_one`` with and without TreeSHAP reason codes, against LightGBM's
  own ``Booster.predict`` on the same one-row NumPy array, and against the scikit-learn wrapper
  ``LGBMClassifier.predict_proba`` on a one-row DataFrame.
* **The whole credit assessment** — ``ModelCreditAssessor.assess`` (champion + challenger +
  strategy + knock-outs + monitoring bins), which is what the decision calls.

Results go to benchmarks/results/scoring.json.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pandas as pd

import hostinfo
from puhui.origination.assessment import ApplicationFacts
from puhui.origination.credit_model import ModelCreditAssessor
from puhui.risk.features import features_of_synthetic, training_frame
from puhui.risk.serving import LiveModel, LivePair
from puhui.risk.training import train_model
from puhui.synthetic import generate

RESULTS = Path(__file__).parent / "results" / "scoring.json"
SEED = 2026
SAMPLE = 2000


def latencies_us(fn: Callable[[Any], object], items: Sequence[Any], rounds: int = 3) -> list[float]:
    """Per-call wall time in µs over every item, best of ``rounds`` passes per item."""
    for item in items[:50]:
        fn(item)  # warm caches
    best = [float("inf")] * len(items)
    for _ in range(rounds):
        for i, item in enumerate(items):
            t = time.perf_counter_ns()
            fn(item)
            best[i] = min(best[i], (time.perf_counter_ns() - t) / 1000)
    return best


def summary(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100)
    return {
        "p50_us": round(q[49], 1),
        "p99_us": round(q[98], 1),
        "mean_us": round(statistics.fmean(values), 1),
    }


def main() -> None:
    population = generate(20_000, seed=SEED, fraud_rate=0.02, start=date(2024, 1, 2), days=250)
    frame, labels = training_frame(population.applications)
    y = labels.to_numpy()
    card = train_model(frame, y, kind="scorecard", seed=SEED, data_source="synthetic")
    gbm = train_model(frame, y, kind="gbm", seed=SEED, data_source="synthetic")
    apps = [a for a in population.applications if not a.is_fraud][:SAMPLE]
    rows = [features_of_synthetic(a) for a in apps]
    one_row_frames = [pd.DataFrame([r], columns=list(frame.columns)) for r in rows]

    card_model = card.artifact.model
    gbm_model = gbm.artifact.model
    booster: lgb.Booster = gbm_model.booster  # type: ignore[union-attr]
    encoded = [gbm_model.encode_one(r) for r in rows]  # type: ignore[union-attr]
    categorical = [
        c
        for c in frame.columns
        if frame[c].dtype == object or str(frame[c].dtype) in ("str", "string")
    ]
    sk = lgb.LGBMClassifier(n_estimators=booster.num_trees(), verbose=-1)
    sk_frame = frame.copy()
    for c in categorical:
        sk_frame[c] = sk_frame[c].astype("category")
    sk.fit(sk_frame, y)
    sk_rows = []
    for f in one_row_frames:
        g = f.copy()
        for c in categorical:
            g[c] = pd.Categorical(g[c], categories=sk_frame[c].cat.categories)
        sk_rows.append(g)

    facts = []
    for a in apps[:500]:
        e = a.enterprise
        facts.append(
            ApplicationFacts(
                application_id=a.application_id,
                institution_id="ins",
                business_date=a.submitted_at.date(),
                amount=Decimal(a.requested_amount),
                term_months=a.term_months,
                repayment_method=a.repayment_method,
                applicant_age=int(features_of_synthetic(a)["applicant_age"]),
                years_in_business=Decimal(str(round(e.years_in_business, 2))),
                annual_revenue=Decimal(e.annual_revenue),
                tax_grade=e.tax_grade,
                industry_code=e.industry_section,
                employees=e.employees,
                uscc_needs_verification=False,
            )
        )
    assessor = ModelCreditAssessor(
        LivePair(
            LiveModel("c", "champion", card.artifact), LiveModel("g", "challenger", gbm.artifact)
        ),
        challenger_share=1.0,
    )

    paths: dict[str, dict[str, float]] = {
        "scorecard.score_one (dict → PD, score, reasons)": summary(
            latencies_us(card_model.score_one, rows)
        ),
        "peer: Scorecard.predict_proba (1-row DataFrame)": summary(
            latencies_us(card.estimator.predict_proba, one_row_frames[:300])
        ),
        "gbm.score_one with TreeSHAP reasons": summary(latencies_us(gbm_model.score_one, rows)),
        "gbm.score_one, score only": summary(
            latencies_us(lambda r: gbm_model.score_one(r, explain=False), rows)  # type: ignore[call-arg]
        ),
        "peer: Booster.predict (1-row NumPy)": summary(
            latencies_us(lambda x: booster.predict(x, num_threads=1), encoded)
        ),
        "peer: LGBMClassifier.predict_proba (1-row DataFrame)": summary(
            latencies_us(sk.predict_proba, sk_rows[:300])
        ),
        "credit assessment (scorecard champion + GBM challenger + strategy)": summary(
            latencies_us(assessor.assess, facts)
        ),
    }
    t = time.perf_counter()
    card_model.predict_pd(frame)
    batch_card = len(frame) / (time.perf_counter() - t)
    t = time.perf_counter()
    gbm_model.predict_pd(frame)
    batch_gbm = len(frame) / (time.perf_counter() - t)

    result = {
        "benchmark": "scoring",
        "machine": hostinfo.describe(),
        "gbm_trees": booster.num_trees(),
        "paths": paths,
        "batch_rows_per_second": {"scorecard": round(batch_card), "gbm": round(batch_gbm)},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"{'path':70} {'p50 µs':>8} {'p99 µs':>8}")
    for name, s in paths.items():
        print(f"{name:70} {s['p50_us']:8.1f} {s['p99_us']:8.1f}")
    print(f"batch: scorecard {batch_card:,.0f} rows/s, gbm {batch_gbm:,.0f} rows/s")


if __name__ == "__main__":
    main()
