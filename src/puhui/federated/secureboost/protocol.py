"""Message tags of SecureBoost and the checks every received message goes through.

Training (one ``→`` per message; G = guest, H = host)::

    G → H  secureboost.setup       format, model_id, params, public key, n_rows
    H → G  secureboost.ready       model_id, ok (or ok=False and the host's reason)
    per tree t (tree 0 skipped when guest_only_first_tree):
      G → H  secureboost.gradients   Enc(g_int · 2^B + h_int) per row, one blob
      H → G  secureboost.level       depth 0: the root's packed encrypted candidate sums
      per depth d < max_depth, while some node is still open:
        G → H  secureboost.splits    per open node: leaf | guest split + its left bitmap |
                                     host split as the chosen opaque candidate index(es)
        H → G  secureboost.level     depth d+1: left bitmaps of the host splits chosen at d,
                                     with their new split ids, and (if d + 1 < max_depth) the
                                     packed candidate sums of the nodes at depth d + 1
    G → H  secureboost.done        model_id, n_trees

Prediction (one round trip per batch)::

    G → H  secureboost.predict     model_id, n_rows, the host split ids the trees use
    H → G  secureboost.directions  a left/right bitmap per split id (or the host's error)

Every field read from the peer goes through the helpers below, so a malformed or hostile
message raises :class:`FederatedError` naming the message and field instead of a KeyError deep
in the protocol code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from puhui.federated.errors import FederatedError, ProtocolMismatch

FORMAT = "puhui.federated.secureboost/1"

SETUP = "secureboost.setup"
READY = "secureboost.ready"
GRADIENTS = "secureboost.gradients"
LEVEL = "secureboost.level"
SPLITS = "secureboost.splits"
DONE = "secureboost.done"
PREDICT = "secureboost.predict"
DIRECTIONS = "secureboost.directions"


def field(message: Any, name: str, kind: type | tuple[type, ...], tag: str) -> Any:
    """``message[name]``, checked to be a ``kind``."""
    if not isinstance(message, dict):
        raise FederatedError(f"the peer's '{tag}' message is not a mapping")
    if name not in message:
        raise FederatedError(f"the peer's '{tag}' message lacks the field '{name}'")
    value = message[name]
    if kind is int and isinstance(value, bool):
        raise FederatedError(f"the field '{name}' of the peer's '{tag}' message must be an integer")
    if not isinstance(value, kind):
        raise FederatedError(f"the field '{name}' of the peer's '{tag}' message has a wrong type")
    return value


def expect(message: Any, tag: str, **values: Any) -> None:
    """The fields named in ``values`` must have exactly those values (run, tree, depth...)."""
    for name, value in values.items():
        found = field(message, name, type(value), tag)
        if found != value:
            raise ProtocolMismatch(
                f"the peer's '{tag}' message is for {name}={found!r}, expected {value!r}: the "
                f"parties are out of step or on different runs"
            )


def pack_mask(mask: npt.NDArray[np.bool_]) -> bytes:
    return np.packbits(mask).tobytes()


def unpack_mask(data: Any, count: int, tag: str) -> npt.NDArray[np.bool_]:
    """A bitmap of ``count`` rows, refusing a wrong length."""
    if not isinstance(data, bytes) or len(data) != (count + 7) // 8:
        raise FederatedError(f"a bitmap in the peer's '{tag}' message does not cover {count} rows")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=count)
    return bits.astype(bool)


def check_ok(message: Any, tag: str) -> None:
    """Raise the peer's own error if it sent one instead of an answer."""
    if isinstance(message, dict) and "error" in message:
        raise FederatedError(f"the peer refused at '{tag}': {message['error']}")
