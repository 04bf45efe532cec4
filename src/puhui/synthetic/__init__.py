"""Synthetic small-business applicants for tests, the demo and benchmarks.

Real applicant data cannot ship with an open-source project, yet every part of Puhui — the
identifier checks, the fraud graph, the scorecards, the API — needs realistic input. This
package generates it from a seed: valid identifiers with real division codes, financials whose
risk shows in outcomes, and fraud rings hidden among honest applicants who share hubs too.

>>> from datetime import date
>>> from puhui.synthetic import generate
>>> population = generate(1_000, seed=7, start=date(2024, 3, 1), days=40)
>>> len(population)
1000

The package is the public surface: :mod:`~puhui.synthetic.model` holds the records,
:mod:`~puhui.synthetic.generator` draws them, :mod:`~puhui.synthetic.rings` plans the fraud rings
and :mod:`~puhui.synthetic.export` writes CSV. Import from here rather than from those modules.
"""

from __future__ import annotations

from puhui.synthetic.export import FIELDNAMES, to_rows, write_csv
from puhui.synthetic.generator import DEFAULT_INSTITUTIONS, business_days, generate
from puhui.synthetic.model import (
    FraudRing,
    Population,
    SyntheticApplication,
    SyntheticEnterprise,
    SyntheticPerson,
)
from puhui.synthetic.rings import RING_SHAPES

__all__ = [
    "DEFAULT_INSTITUTIONS",
    "FIELDNAMES",
    "RING_SHAPES",
    "FraudRing",
    "Population",
    "SyntheticApplication",
    "SyntheticEnterprise",
    "SyntheticPerson",
    "business_days",
    "generate",
    "to_rows",
    "write_csv",
]
