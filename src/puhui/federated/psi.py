"""Sample alignment by ECDH private set intersection (DH-PSI) in Curve25519's prime-order group.

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
Peer points are checked for length, canonical encoding and small order. A u-coordinate on
Curve25519's twist is not detected (that needs a square root per point): its product matches
nothing, and Curve25519 is twist-secure (the twist's large subgroup has prime order), so it
teaches the sender nothing useful about the secret.

The group and the hash (protocol version 2; docs/federated.md has the derivation):

* **Group**: the prime-order subgroup of Curve25519 (order ℓ ≈ 2^252), in X25519's x-only
  form: an element travels as its Montgomery u-coordinate, 32 bytes, and "raise to the secret
  ``a``" is RFC 7748's ``X25519(a, u)``. x-only form identifies ``P`` with ``-P``; two distinct
  ids collide that way with probability about 2^-251. X25519 clamps ``a`` to a multiple of 8,
  which removes any small-order component a point may carry.
* **Hash to the group**: libsodium's ``crypto_core_ristretto255_from_hash`` over
  ``SHA-512(b"puhui-psi/v2:" || UTF-8(id))`` — two Elligator maps of the digest's halves,
  added: a hash usable as a random oracle onto ristretto255, which is isomorphic to that
  subgroup. Not a naive hash to an x-coordinate, whose outputs could have related discrete
  logs. The ristretto255 encoding ``s`` becomes a u-coordinate without a square root: the
  Edwards point ristretto255 decodes ``s`` to has ``y = (1 - s²)/(1 + s²)``, so Montgomery
  ``u = (1 + y)/(1 - y) = 1/s²``; adding the 2-torsion point ``(0, 0)`` maps ``u`` to ``1/u``,
  i.e. ``s²``, and the clamped scalar removes that torsion again. So ``H(id)`` enters X25519
  as ``s² mod p`` — one multiplication (tests check it against libsodium's ristretto255
  scalar multiplication). The prefix separates this use from any other hashing of the ids.
* **Secrets**: 32 bytes from the OS (``secrets``); tests and benchmarks may derive them from a
  seed with :meth:`PsiParty.from_seed`.

Why this form and not ristretto255 throughout (protocol version 1): X25519 costs about 24 µs
per point in OpenSSL and 7 µs in Intel's multi-buffer code (:mod:`.x25519`), against 35 µs for
libsodium's ristretto255 multiplication, and PSI is four multiplications per pair of ids.

Why ctypes and not PyNaCl for the hash: PyNaCl (1.6.2 at the time of writing) binds none of
libsodium's ristretto255 functions. We call the system libsodium (ISC licence; ≥ 1.0.18,
Debian/Ubuntu ``libsodium23``) through ctypes. ``PUHUI_LIBSODIUM`` may name the library file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import os
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Literal

from puhui.federated import x25519
from puhui.federated.x25519 import POINT_BYTES

__all__ = [
    "DEFAULT_PREFIX",
    "POINT_BYTES",
    "SCALAR_BYTES",
    "PsiError",
    "PsiParty",
    "hash_to_group",
    "libsodium",
]

DEFAULT_PREFIX = b"puhui-psi/v2:"
SCALAR_BYTES = 32
_P = 2**255 - 19
_CHUNK = 65_536  # ids per task in a parallel batch: large enough to amortise dispatch


class PsiError(ValueError):
    """A PSI step cannot go on: invalid input from the peer, a bad scalar, or no libsodium."""


@functools.cache
def libsodium() -> ctypes.CDLL:
    """The system libsodium, initialised, loaded once per process (``PUHUI_LIBSODIUM`` may name
    the file); :class:`PsiError` says how to install it where it is missing."""
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
    if lib.sodium_init() < 0:
        raise PsiError("libsodium failed to initialise")
    return lib


@functools.cache
def _from_hash() -> Callable[[int, bytes], int]:
    """libsodium's ``crypto_core_ristretto255_from_hash``, with its argument types declared."""
    try:
        function = libsodium().crypto_core_ristretto255_from_hash
    except AttributeError as exc:  # libsodium < 1.0.18
        raise PsiError("libsodium has no ristretto255 functions; need >= 1.0.18") from exc
    function.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    function.restype = ctypes.c_int
    return function


def _hash_chunk(prefix: bytes, ids: Sequence[str]) -> bytes:
    """``H(id)`` as X25519 u-coordinates (``s² mod p``, see the module docstring), joined."""
    from_hash, sha512 = _from_hash(), hashlib.sha512
    encoded = ctypes.create_string_buffer(POINT_BYTES)
    address = ctypes.addressof(encoded)
    out = bytearray(POINT_BYTES * len(ids))
    for k, identifier in enumerate(ids):
        from_hash(address, sha512(prefix + identifier.encode("utf-8")).digest())
        s = int.from_bytes(encoded.raw, "little")
        out[POINT_BYTES * k : POINT_BYTES * (k + 1)] = (s * s % _P).to_bytes(32, "little")
    return bytes(out)


def hash_to_group(identifier: str, prefix: bytes = DEFAULT_PREFIX) -> bytes:
    """``H(id)`` as the 32-byte u-coordinate that enters X25519.

    Never sent to the peer (it would let anyone test a guess); exposed for tests and audits.
    """
    return _hash_chunk(prefix, [identifier])


def _multiply(scalar: bytes, points: bytes, start: int, backend: str | None, what: str) -> bytes:
    try:
        return x25519.multiply(scalar, points, backend)
    except x25519.LowOrderPoint as exc:
        raise PsiError(f"{what} at position {start + exc.position} has small order") from exc


def _blind_chunk(
    scalar: bytes, prefix: bytes, ids: Sequence[str], start: int, backend: str | None
) -> bytes:
    """``H(id)^a`` for a run of ids, concatenated: one buffer out, no per-point objects kept."""
    # Small order only if H(id) is the identity: probability about 2^-252 per id.
    return _multiply(scalar, _hash_chunk(prefix, ids), start, backend, "id")


def _reblind_chunk(scalar: bytes, points: bytes, start: int, backend: str | None) -> bytes:
    """``P^a`` for a run of concatenated peer points; refuses non-canonical and small-order ones
    (a twist point is not detected: see the threat model in the module docstring)."""
    canonical = x25519.is_canonical(points)
    if not canonical.all():
        position = start + int((~canonical).argmax())
        raise PsiError(f"peer sent a non-canonical point at position {position}")
    return _multiply(scalar, points, start, backend, "peer point")


def _split(raw: bytes) -> list[bytes]:
    return [raw[i : i + POINT_BYTES] for i in range(0, len(raw), POINT_BYTES)]


class PsiParty:
    """One side of a DH-PSI session: a secret scalar and the three steps that use it.

    Create one per session (see the module docstring on reusing secrets). ``scalar=None`` draws
    a fresh 32-byte secret from the OS; pass 32 bytes, or use :meth:`from_seed`, only for
    reproducible tests and benchmarks.

    Batches of at least ``parallel_threshold`` points are cut into chunks and spread over
    ``workers`` processes (default: measured fastest on 2 cores) or threads (no copying; the
    native calls run without the GIL, but the per-id Python work still serialises on it).
    ``backend`` picks the X25519 implementation (:mod:`.x25519`; default ``PUHUI_PSI_BACKEND``,
    else the fastest that runs here). Both give the same bytes, so the peer may use either.
    """

    def __init__(
        self,
        scalar: bytes | None = None,
        *,
        prefix: bytes = DEFAULT_PREFIX,
        workers: int = 2,
        parallel: Literal["threads", "processes"] = "processes",
        parallel_threshold: int = 20_000,
        backend: x25519.Backend | None = None,
    ) -> None:
        if scalar is None:
            scalar = secrets.token_bytes(SCALAR_BYTES)
        if len(scalar) != SCALAR_BYTES:
            raise PsiError(f"scalar must be {SCALAR_BYTES} bytes, got {len(scalar)}")
        if len(set(scalar)) == 1:
            raise PsiError("scalar must be random bytes, not one byte repeated")
        if workers < 1:
            raise PsiError("workers must be at least 1")
        try:
            self.backend = x25519.backend_name(backend)
        except ValueError as exc:
            raise PsiError(str(exc)) from exc
        _from_hash()  # fail here, not in a worker, if libsodium is missing
        self._scalar = scalar
        self.prefix = prefix
        self.workers = workers
        self.parallel = parallel
        self.parallel_threshold = parallel_threshold

    @classmethod
    def from_seed(cls, seed: bytes | str | int, **kwargs: object) -> PsiParty:
        """A party whose secret is derived from ``seed`` — reproducible, so never in production."""
        material = str(seed).encode() if not isinstance(seed, bytes) else seed
        scalar = hashlib.sha512(b"puhui-psi/v2/test-seed:" + material).digest()[:SCALAR_BYTES]
        return cls(scalar, **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:  # never print the secret
        return f"PsiParty(prefix={self.prefix!r}, workers={self.workers}, backend={self.backend})"

    def blind(self, ids: Sequence[str]) -> list[bytes]:
        """``H(id)^a`` for each id, in input order: the message this side sends first."""
        ids = list(ids)
        tasks = [
            (self._scalar, self.prefix, ids[s : s + c], s, self.backend)
            for s, c in self._chunks(len(ids))
        ]
        return _split(b"".join(self._run(_blind_chunk, tasks)))

    def reblind(self, points: Sequence[bytes]) -> list[bytes]:
        """``P^a`` for each of the peer's points, in the peer's order.

        Raises :class:`PsiError` if any point is not 32 bytes, is not a canonical
        u-coordinate, or has small order (its product would be zero): a malformed message must
        not be silently matched.
        """
        for k, point in enumerate(points):
            if len(point) != POINT_BYTES:
                raise PsiError(f"peer point at position {k} is {len(point)} bytes, not 32")
        raw = b"".join(points)
        tasks = [
            (self._scalar, raw[s * POINT_BYTES : (s + c) * POINT_BYTES], s, self.backend)
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
