"""Sample alignment by ECDH private set intersection (DH-PSI) over ristretto255.

Before the bank (guest) and its data partner (host) can train together they must find the
businesses both of them know, without showing each other the ones they do not share. This
module does it with the classic Diffie-Hellman PSI (Meadows 1986; Huberman, Franklin & Hogg
1999): each side raises hashed identifiers to its own secret exponent; because exponentiation
commutes, ``H(x)^(ab) == H(y)^(ba)`` exactly when ``x == y``, and nothing else matches.

Message sequence (what crosses the wire, and nothing else)::

    guest (ids X, secret a)                               host (ids Y, secret b)
    A_i = H(x_i)^a, in the guest's order    --- 1 --->
                                            <--- 2 ---    A_i^b, in the same order,
                                                          B_j = H(y_j)^b, in the host's order
    B_j^a; match A_i^b == B_j^a -> pairs (i, j)
    j of each matched pair, in the order of i  --- 3 --->  (only if the host must learn it;
                                                          in vertical FL it must, to align rows)

With the library: the guest calls :meth:`PsiParty.blind` (message 1); the host calls
:meth:`PsiParty.reblind` on it and :meth:`PsiParty.blind` on its own ids (message 2); the guest
calls :meth:`PsiParty.reblind` on ``B`` and :meth:`PsiParty.intersect` on ``(A^b, B^a)``, which
returns the ``(i, j)`` pairs; message 3 is the list of ``j``.

What each side learns, in the semi-honest model:

* **Guest**: the intersection X ∩ Y (as its own indexes ``i``), the size |Y|, and, for each
  shared id, the host's position ``j`` — which tells it nothing if the host shuffles its rows
  before blinding (recommended; the host keeps the permutation). Host ids outside the
  intersection reach the guest only as ``H(y)^b``, pseudorandom group elements under the
  decisional Diffie-Hellman assumption with ``H`` a random oracle.
* **Host**: the size |X| after message 2; after message 3, the intersection (as its own
  indexes ``j``) and the guest's relative order of the shared ids — nothing about the guest's
  other ids, which it sees only as ``H(x)^a`` and ``H(x)^(ab)``. Without message 3 the host
  learns only |X| (the two-message variant where the guest alone learns the intersection).
* Both learn the set sizes; pad with dummy ids if the sizes themselves are sensitive.

Threat model: **semi-honest** (honest-but-curious) parties that follow the protocol and try to
learn more from what they see. A malicious party can deviate — e.g. the host could answer
message 1 with points of its choosing or send fewer ``B_j`` — and this protocol does not detect
that; the channel must authenticate the peer and protect the messages in transit (the party
runtime's job). A **fresh secret per session** matters: with a reused exponent, a peer could link
the same id across runs. Duplicate ids are rejected because equal ids give equal points.

Choices. The group is ristretto255 (prime order ℓ ≈ 2^252, no cofactor pitfalls, canonical
32-byte encodings). ``H`` is libsodium's ``crypto_core_ristretto255_from_hash`` — two
Elligator maps of the two halves of a 64-byte SHA-512 digest, added: a hash to the group
usable as a random oracle, not a naive hash to an x-coordinate (whose discrete logs could be
related). Ids are UTF-8 with a domain-separation prefix (``b"puhui-psi/v1:"``) before SHA-512,
so the same id hashed for another purpose or protocol version gives an unrelated point. The
secret is a uniformly random non-zero scalar from libsodium's OS randomness
(``crypto_core_ristretto255_scalar_random``); tests and benchmarks may derive it from a seed.

Why ctypes and not PyNaCl: PyNaCl (1.6.2 at the time of writing) binds libsodium's ed25519
point functions but none of the ristretto255 ones, and does not export them from its bundled
library. We call the system libsodium (ISC licence; ≥ 1.0.18, Debian/Ubuntu ``libsodium23``)
through ctypes. ``PUHUI_LIBSODIUM`` may name the library file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Literal

__all__ = [
    "DEFAULT_PREFIX",
    "POINT_BYTES",
    "SCALAR_BYTES",
    "PsiError",
    "PsiParty",
    "hash_to_group",
]

DEFAULT_PREFIX = b"puhui-psi/v1:"
POINT_BYTES = 32
SCALAR_BYTES = 32
_HASH_BYTES = 64
_CHUNK = 65_536  # ids per task in a parallel batch: large enough to amortise dispatch


class PsiError(ValueError):
    """A PSI step cannot go on: invalid input from the peer, a bad scalar, or no libsodium."""


class _Sodium:
    """The four libsodium functions the protocol needs, with argument types declared once."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        if lib.sodium_init() < 0:
            raise PsiError("libsodium failed to initialise")
        try:
            self.from_hash = lib.crypto_core_ristretto255_from_hash
            self.scalarmult = lib.crypto_scalarmult_ristretto255
            self.scalar_random = lib.crypto_core_ristretto255_scalar_random
            self.scalar_reduce = lib.crypto_core_ristretto255_scalar_reduce
        except AttributeError as exc:  # libsodium < 1.0.18
            raise PsiError("libsodium has no ristretto255 functions; need >= 1.0.18") from exc
        self.from_hash.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.from_hash.restype = ctypes.c_int
        self.scalarmult.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        self.scalarmult.restype = ctypes.c_int
        self.scalar_random.argtypes = [ctypes.c_void_p]
        self.scalar_random.restype = None
        self.scalar_reduce.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.scalar_reduce.restype = None


@functools.cache
def _sodium() -> _Sodium:
    """Load libsodium once per process (worker processes load their own)."""
    name = os.environ.get("PUHUI_LIBSODIUM") or ctypes.util.find_library("sodium")
    if not name:
        raise PsiError(
            "libsodium not found: install it (Debian/Ubuntu: apt install libsodium23) "
            "or set PUHUI_LIBSODIUM to the library file"
        )
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise PsiError(f"cannot load libsodium from {name!r}: {exc}") from exc
    return _Sodium(lib)


def hash_to_group(identifier: str, prefix: bytes = DEFAULT_PREFIX) -> bytes:
    """``H(id)``: the ristretto255 point of ``SHA-512(prefix || UTF-8(id))``, 32 bytes.

    Never sent to the peer (it would let anyone test a guess); exposed for tests and audits.
    """
    out = ctypes.create_string_buffer(POINT_BYTES)
    digest = hashlib.sha512(prefix + identifier.encode("utf-8")).digest()
    _sodium().from_hash(ctypes.addressof(out), digest)
    return out.raw


def _reduce(wide: bytes) -> bytes:
    out = ctypes.create_string_buffer(SCALAR_BYTES)
    _sodium().scalar_reduce(ctypes.addressof(out), wide)
    return out.raw


def _blind_chunk(scalar: bytes, prefix: bytes, ids: Sequence[str], start: int) -> bytes:
    """``H(id)^a`` for a run of ids, concatenated: one buffer out, no per-point objects kept."""
    sodium = _sodium()
    from_hash, scalarmult, sha512 = sodium.from_hash, sodium.scalarmult, hashlib.sha512
    point = ctypes.create_string_buffer(POINT_BYTES)
    point_addr = ctypes.addressof(point)
    out = ctypes.create_string_buffer(POINT_BYTES * len(ids))
    base = ctypes.addressof(out)
    for k, identifier in enumerate(ids):
        from_hash(point_addr, sha512(prefix + identifier.encode("utf-8")).digest())
        if scalarmult(base + POINT_BYTES * k, scalar, point.raw) != 0:
            raise PsiError(f"id at position {start + k} hashed to the identity")  # ~2^-252
    return out.raw


def _reblind_chunk(scalar: bytes, points: bytes, start: int) -> bytes:
    """``P^a`` for a run of concatenated peer points; rejects any that is not a valid point."""
    scalarmult = _sodium().scalarmult
    n = len(points) // POINT_BYTES
    out = ctypes.create_string_buffer(POINT_BYTES * n)
    base = ctypes.addressof(out)
    for k in range(n):
        offset = POINT_BYTES * k
        # libsodium returns -1 for a non-canonical or off-group encoding and for the identity.
        if scalarmult(base + offset, scalar, points[offset : offset + POINT_BYTES]) != 0:
            raise PsiError(f"peer sent an invalid ristretto255 point at position {start + k}")
    return out.raw


def _split(raw: bytes) -> list[bytes]:
    return [raw[i : i + POINT_BYTES] for i in range(0, len(raw), POINT_BYTES)]


class PsiParty:
    """One side of a DH-PSI session: a secret scalar and the three steps that use it.

    Create one per session (see the module docstring on reusing secrets). ``scalar=None`` draws
    a fresh secret from the OS through libsodium; pass 32 bytes (a canonical, non-zero scalar)
    or use :meth:`from_seed` only for reproducible tests and benchmarks.

    Batches of at least ``parallel_threshold`` points are cut into chunks and spread over
    ``workers`` processes (default: measured fastest on 2 cores) or threads (no copying, and
    libsodium runs without the GIL, but the per-id Python work still serialises on it).
    """

    def __init__(
        self,
        scalar: bytes | None = None,
        *,
        prefix: bytes = DEFAULT_PREFIX,
        workers: int = 2,
        parallel: Literal["threads", "processes"] = "processes",
        parallel_threshold: int = 20_000,
    ) -> None:
        sodium = _sodium()
        if scalar is None:
            buf = ctypes.create_string_buffer(SCALAR_BYTES)
            sodium.scalar_random(ctypes.addressof(buf))  # uniform in [1, ℓ)
            scalar = buf.raw
        if len(scalar) != SCALAR_BYTES:
            raise PsiError(f"scalar must be {SCALAR_BYTES} bytes, got {len(scalar)}")
        if _reduce(scalar + bytes(32)) != scalar or scalar == bytes(SCALAR_BYTES):
            raise PsiError("scalar must be canonical (below the group order) and non-zero")
        if workers < 1:
            raise PsiError("workers must be at least 1")
        self._scalar = scalar
        self.prefix = prefix
        self.workers = workers
        self.parallel = parallel
        self.parallel_threshold = parallel_threshold

    @classmethod
    def from_seed(cls, seed: bytes | str | int, **kwargs: object) -> PsiParty:
        """A party whose secret is derived from ``seed`` — reproducible, so never in production."""
        material = str(seed).encode() if not isinstance(seed, bytes) else seed
        scalar = _reduce(hashlib.sha512(b"puhui-psi/v1/test-seed:" + material).digest())
        return cls(scalar, **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:  # never print the secret
        return f"PsiParty(prefix={self.prefix!r}, workers={self.workers})"

    def blind(self, ids: Sequence[str]) -> list[bytes]:
        """``H(id)^a`` for each id, in input order: the message this side sends first."""
        ids = list(ids)
        n = len(ids)
        tasks = [(self._scalar, self.prefix, ids[s : s + c], s) for s, c in self._chunks(n)]
        return _split(b"".join(self._run(_blind_chunk, tasks)))

    def reblind(self, points: Sequence[bytes]) -> list[bytes]:
        """``P^a`` for each of the peer's points, in the peer's order.

        Raises :class:`PsiError` if any point is not 32 bytes or not a valid ristretto255
        encoding (or is the identity): a malformed message must not be silently matched.
        """
        for k, point in enumerate(points):
            if len(point) != POINT_BYTES:
                raise PsiError(f"peer point at position {k} is {len(point)} bytes, not 32")
        raw = b"".join(points)
        tasks = [
            (self._scalar, raw[s * POINT_BYTES : (s + c) * POINT_BYTES], s)
            for s, c in self._chunks(len(points))
        ]
        return _split(b"".join(self._run(_reblind_chunk, tasks)))

    @staticmethod
    def intersect(
        own_double_blinded: Sequence[bytes], their_double_blinded: Sequence[bytes]
    ) -> list[tuple[int, int]]:
        """Pairs ``(i, j)`` with ``own[i] == their[j]``, ascending in ``i``.

        ``own_double_blinded`` is this side's ``H(x)^(ab)`` in its own order (returned by the
        peer); ``their_double_blinded`` is the peer's ``H(y)^(ba)`` (re-blinded here). Peer
        bytes are only compared with points this side computed, so a malformed one can never
        match; duplicates on either side are rejected, since they mean duplicate ids.
        """
        index: dict[bytes, int] = {}
        for j, point in enumerate(their_double_blinded):
            if len(point) != POINT_BYTES:
                raise PsiError(f"peer point at position {j} is {len(point)} bytes, not 32")
            if index.setdefault(point, j) != j:
                raise PsiError(f"duplicate point at peer positions {index[point]} and {j}")
        seen: set[bytes] = set()
        pairs = []
        for i, point in enumerate(own_double_blinded):
            if point in seen:
                raise PsiError(f"duplicate point at own position {i}: ids must be unique")
            seen.add(point)
            match = index.get(point)
            if match is not None:
                pairs.append((i, match))
        return pairs

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        """``(start, count)`` runs covering ``range(n)``: one run unless the batch is large."""
        if n < self.parallel_threshold or self.workers == 1:
            return [(0, n)]
        parts = max(self.workers, -(-n // _CHUNK))
        size = -(-n // parts)
        return [(s, min(size, n - s)) for s in range(0, n, size)]

    def _run(self, fn: Callable[..., bytes], tasks: Sequence[tuple[object, ...]]) -> list[bytes]:
        if len(tasks) == 1:
            return [fn(*tasks[0])]
        pool: Executor
        if self.parallel == "processes":
            pool = ProcessPoolExecutor(max_workers=self.workers)
        else:
            pool = ThreadPoolExecutor(max_workers=self.workers)
        with pool:
            return list(pool.map(fn, *zip(*tasks, strict=True)))
