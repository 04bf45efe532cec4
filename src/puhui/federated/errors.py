"""Errors of the federated protocols and the party runtime.

Each says what went wrong in terms an operator can act on: which peer, which protocol step,
and what to check. A federated run that cannot complete correctly raises one of these rather
than producing a model that silently differs from the one the protocol promises.
"""

from __future__ import annotations


class FederatedError(Exception):
    """A federated protocol or the party runtime could not go on."""


class PeerTimeout(FederatedError):
    """The peer did not send the expected message in time (stopped, restarted or unreachable)."""

    def __init__(self, peer: str, tag: str, seconds: float) -> None:
        self.peer = peer
        self.tag = tag
        self.seconds = seconds
        super().__init__(
            f"the {peer} party sent no '{tag}' message within {seconds:g} s: it has stopped, "
            f"restarted or cannot reach us; check its log and start the run again"
        )


class ProtocolMismatch(FederatedError):
    """The two parties disagree on the run (different run id, parameters or data version)."""
