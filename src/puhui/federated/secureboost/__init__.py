"""SecureBoost-style vertical gradient boosting (issue 6): lossless, with Paillier 2048.

The bank (guest: labels and some features) and a data partner (host: other features about the
same, aligned rows) grow one gradient-boosted tree model together. The guest owns the Paillier
key and sends encrypted, packed gradients; the host returns encrypted histograms under opaque
candidate positions and keeps its thresholds; the guest picks the splits and keeps the leaves.
With the same binning and parameters the federated trees equal those of :func:`train_central`
on the joined data, node for node.

Entry points: :func:`train_guest` / :func:`train_host` (training over a
:class:`puhui.federated.channel.Channel`), :func:`predict_guest` /
:func:`serve_host_predictions` (batch scoring, one round trip per batch), the models
:class:`GuestModel` / :class:`HostModel` (JSON dicts) and :class:`SecureBoostParams`. The
message sequence is in :mod:`.protocol`; what each side learns in :mod:`.guest` and :mod:`.host`.
"""

from puhui.federated.secureboost.central import CentralModel, train_central
from puhui.federated.secureboost.guest import predict_guest, train_guest
from puhui.federated.secureboost.host import serve_host_predictions, train_host
from puhui.federated.secureboost.model import GuestModel, HostModel, HostSplit, resolve_trees
from puhui.federated.secureboost.params import SecureBoostParams

__all__ = [
    "CentralModel",
    "GuestModel",
    "HostModel",
    "HostSplit",
    "SecureBoostParams",
    "predict_guest",
    "resolve_trees",
    "serve_host_predictions",
    "train_central",
    "train_guest",
    "train_host",
]
