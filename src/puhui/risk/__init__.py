"""Credit-risk modelling toolkit: binning and WOE, indicator selection, a logistic scorecard,
a LightGBM challenger, metrics, reason codes, and the registry, strategy and monitoring that put
models to work. Usable from a notebook without a database::

    from puhui.risk import Scorecard
    card = Scorecard().fit(X, y)          # y: 1 = bad
    card.points_table()                   # what a credit committee reads
    card.explain({"age": 41, ...})        # score, PD and reason codes for one applicant

See docs/risk.md.
"""

from puhui.risk.gbm import GBMModel, GBMScorer
from puhui.risk.scorecard import Scorecard
from puhui.risk.scorecard_model import ScorecardModel

__all__ = ["GBMModel", "GBMScorer", "Scorecard", "ScorecardModel"]
