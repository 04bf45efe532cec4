"""The bundled default credit model: what a fresh installation decides with.

Real repayment data cannot ship with an open-source project, so the default scorecard is
trained on the synthetic generator's applicants (seeded; fraud-ring members left out) and its
metadata says ``"synthetic": true`` with the generator's seed — as does the README. A bank
replaces it by training on its own data (``puhui train``) and promoting the result
(``puhui models promote``).

``python -m puhui.risk.bundled`` rebuilds the file; a test checks the shipped file is what the
code and seed produce, so it cannot drift from them silently.
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from puhui.risk.artifact import ModelArtifact

if TYPE_CHECKING:
    from puhui.risk.training import TrainingRun

SEED = 2026
APPLICATIONS = 20_000
FILE = "default_scorecard.json"


def build(applications: int = APPLICATIONS, seed: int = SEED) -> TrainingRun:
    """Generate the synthetic sample and train the default scorecard on it (≈ 10 s)."""
    from puhui.risk.explain import FEATURE_TEXTS
    from puhui.risk.features import FEATURES, training_frame
    from puhui.risk.training import train_model
    from puhui.synthetic import generate

    population = generate(
        applications, seed=seed, fraud_rate=0.02, start=date(2024, 1, 2), days=250
    )
    frame, labels = training_frame(population.applications)
    return train_model(
        frame,
        labels.to_numpy(),
        kind="scorecard",
        name="sme-credit",
        seed=seed,
        data_source=f"puhui.synthetic.generate(n={applications}, seed={seed}, fraud_rate=0.02)",
        synthetic=True,
        texts={f: FEATURE_TEXTS[f] for f in FEATURES},
    )


def load() -> ModelArtifact:
    text = resources.files("puhui.risk").joinpath("data", FILE).read_text(encoding="utf-8")
    return ModelArtifact.from_json(text)


def main() -> None:
    run = build()
    path = Path(__file__).parent / "data" / FILE
    path.parent.mkdir(exist_ok=True)
    run.artifact.save(path)
    print(f"wrote {path}: test AUC {run.test_metrics['auc']:.4f}, KS {run.test_metrics['ks']:.4f}")


if __name__ == "__main__":
    main()
