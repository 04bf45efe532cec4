"""Tagged messages between the two parties, and the one wire format they all use.

Every federated protocol (PSI, SecureBoost, vertical LR, online scoring) is written against
:class:`Channel`: ``send(tag, payload)`` to the peer and ``recv(tag)`` for the next message the
peer sent under that tag. Messages under one tag arrive in the order they were sent. The
protocol code therefore never knows whether the peer is a thread in the same process (tests,
notebooks: :func:`local_pair`) or another process across the network (the party runtime in
:mod:`puhui.federated.transport`), and the same code is tested in both.

Every payload is encoded to bytes with :func:`encode` even in-process, so the codec is always
exercised and a :class:`MessageLog` sees exactly the bytes that would cross a network. That log
is how the leak test asserts that no feature value, label or gradient crosses in the clear,
and how the demo reports bytes per step.

The codec is msgpack (no pickle: a peer must not be able to make us run code), extended with
two types: integers of any size (Paillier ciphertexts and plaintexts are 2048–4096-bit) and
numpy arrays of numeric dtypes (shape, dtype and raw little-endian bytes).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

import msgpack
import numpy as np

from puhui.federated.errors import FederatedError, PeerTimeout

_EXT_BIGINT = 1
_EXT_NDARRAY = 2
_ALLOWED_DTYPES = frozenset("?bBhHiIlLqQefd")


def _default(obj: Any) -> Any:
    if isinstance(obj, int):  # only reached for ints outside msgpack's 64-bit range
        sign = b"-" if obj < 0 else b"+"
        magnitude = abs(obj)
        return msgpack.ExtType(
            _EXT_BIGINT, sign + magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
        )
    if isinstance(obj, np.ndarray):
        if obj.dtype.char not in _ALLOWED_DTYPES:
            raise TypeError(f"cannot send a numpy array of dtype {obj.dtype} (numeric only)")
        array = np.ascontiguousarray(obj, dtype=obj.dtype.newbyteorder("<"))
        header = msgpack.packb([array.dtype.str, list(array.shape)])
        return msgpack.ExtType(
            _EXT_NDARRAY, len(header).to_bytes(4, "big") + header + array.tobytes()
        )
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot send a value of type {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_BIGINT:
        value = int.from_bytes(data[1:], "big")
        return -value if data[:1] == b"-" else value
    if code == _EXT_NDARRAY:
        header_len = int.from_bytes(data[:4], "big")
        dtype_str, shape = msgpack.unpackb(data[4 : 4 + header_len])
        dtype = np.dtype(dtype_str)
        if dtype.char not in _ALLOWED_DTYPES:
            raise FederatedError(f"peer sent an array of dtype {dtype_str}, which is not allowed")
        return np.frombuffer(data[4 + header_len :], dtype=dtype).reshape(shape)
    raise FederatedError(f"peer sent an unknown msgpack extension type {code}")


def encode(payload: Any) -> bytes:
    """Encode a payload (None, bool, int, float, str, bytes, list, dict, numpy array)."""
    packed: bytes = msgpack.packb(payload, default=_default, use_bin_type=True, strict_types=False)
    return packed


def decode(data: bytes) -> Any:
    """Decode what :func:`encode` produced; a malformed message raises FederatedError."""
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise FederatedError(f"malformed message from the peer: {exc}") from exc


@dataclass(frozen=True)
class LoggedMessage:
    """One message as it crossed: who sent it, under which tag, and its exact bytes."""

    sender: str
    tag: str
    data: bytes

    def payload(self) -> Any:
        return decode(self.data)


@dataclass
class MessageLog:
    """Every message both ways, thread-safe; the leak test and the demo's cost table read it."""

    messages: list[LoggedMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, sender: str, tag: str, data: bytes) -> None:
        with self._lock:
            self.messages.append(LoggedMessage(sender, tag, data))

    def bytes_by_tag(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for message in self.messages:
            totals[message.tag] += len(message.data)
        return dict(totals)


class Channel(Protocol):
    """A party's end of the conversation with its one peer."""

    role: str  # this party's role: "guest" or "host"
    peer: str  # the peer's role

    def send(self, tag: str, payload: Any) -> None:
        """Send ``payload`` to the peer under ``tag``; raises FederatedError if it cannot."""
        ...

    def recv(self, tag: str, timeout: float | None = None) -> Any:
        """The next payload the peer sent under ``tag``; raises PeerTimeout after ``timeout``."""
        ...


@dataclass
class ChannelStats:
    """What a channel cost: bytes each way and seconds spent waiting for the peer."""

    bytes_sent: int = 0
    bytes_received: int = 0
    seconds_waiting: float = 0.0


class _Mailbox:
    """Per-tag FIFO queues of encoded messages, created on first use."""

    def __init__(self) -> None:
        self._queues: dict[str, queue.Queue[bytes]] = defaultdict(queue.Queue)
        self._lock = threading.Lock()

    def queue_for(self, tag: str) -> queue.Queue[bytes]:
        with self._lock:
            return self._queues[tag]


class LocalChannel:
    """One end of an in-process channel pair (see :func:`local_pair`)."""

    def __init__(
        self,
        role: str,
        peer: str,
        inbox: _Mailbox,
        outbox: _Mailbox,
        log: MessageLog | None,
        default_timeout: float,
    ) -> None:
        self.role = role
        self.peer = peer
        self._inbox = inbox
        self._outbox = outbox
        self._log = log
        self._default_timeout = default_timeout
        self.stats = ChannelStats()

    def send(self, tag: str, payload: Any) -> None:
        data = encode(payload)
        if self._log is not None:
            self._log.record(self.role, tag, data)
        self.stats.bytes_sent += len(data)
        self._outbox.queue_for(tag).put(data)

    def recv(self, tag: str, timeout: float | None = None) -> Any:
        limit = self._default_timeout if timeout is None else timeout
        started = time.perf_counter()
        try:
            data = self._inbox.queue_for(tag).get(timeout=limit)
        except queue.Empty:
            raise PeerTimeout(self.peer, tag, limit) from None
        finally:
            self.stats.seconds_waiting += time.perf_counter() - started
        self.stats.bytes_received += len(data)
        return decode(data)


def local_pair(
    log: MessageLog | None = None, timeout: float = 600.0
) -> tuple[LocalChannel, LocalChannel]:
    """A connected (guest, host) pair of in-process channels, for tests and notebooks."""
    to_guest, to_host = _Mailbox(), _Mailbox()
    guest = LocalChannel(
        "guest", "host", inbox=to_guest, outbox=to_host, log=log, default_timeout=timeout
    )
    host = LocalChannel(
        "host", "guest", inbox=to_host, outbox=to_guest, log=log, default_timeout=timeout
    )
    return guest, host


class PipeChannel:
    """One end of a channel over an OS pipe, for two processes on one machine (benchmarks).

    Unlike :class:`LocalChannel` the two ends may live in different processes (create the pair
    with :func:`pipe_pair`, then fork or spawn), so the parties really run in parallel. One
    party's protocol code must use its end from one thread.
    """

    def __init__(
        self, role: str, peer: str, connection: Connection, default_timeout: float
    ) -> None:
        self.role = role
        self.peer = peer
        self._connection = connection
        self._pending: dict[str, list[bytes]] = defaultdict(list)
        self._default_timeout = default_timeout
        self.stats = ChannelStats()

    def send(self, tag: str, payload: Any) -> None:
        data = encode(payload)
        self.stats.bytes_sent += len(data)
        self._connection.send_bytes(tag.encode() + b"\0" + data)

    def recv(self, tag: str, timeout: float | None = None) -> Any:
        limit = self._default_timeout if timeout is None else timeout
        started = time.perf_counter()
        try:
            while not self._pending[tag]:
                remaining = limit - (time.perf_counter() - started)
                if remaining <= 0 or not self._connection.poll(remaining):
                    raise PeerTimeout(self.peer, tag, limit)
                try:
                    frame = self._connection.recv_bytes()
                except EOFError:
                    raise FederatedError(f"the {self.peer} party closed the channel") from None
                frame_tag, _, data = frame.partition(b"\0")
                self._pending[frame_tag.decode()].append(data)
        finally:
            self.stats.seconds_waiting += time.perf_counter() - started
        data = self._pending[tag].pop(0)
        self.stats.bytes_received += len(data)
        return decode(data)


def pipe_pair(timeout: float = 600.0) -> tuple[PipeChannel, PipeChannel]:
    """A connected (guest, host) pair over a duplex OS pipe; fork, and each keeps its end."""
    guest_end, host_end = multiprocessing.Pipe(duplex=True)
    return (
        PipeChannel("guest", "host", guest_end, timeout),
        PipeChannel("host", "guest", host_end, timeout),
    )
