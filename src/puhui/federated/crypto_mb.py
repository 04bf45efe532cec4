"""Intel's multi-buffer X25519 (``crypto_mb``, AVX-512 IFMA): eight scalar multiplications at once.

PSI spends nearly all its time in X25519 scalar multiplications (see :mod:`.x25519`). On a CPU
with AVX-512 IFMA, Intel's ``crypto_mb`` library computes eight of them in one call, four to five
times faster per multiplication than OpenSSL's single-buffer code. It is open source
(Apache-2.0) and published on PyPI as the ``ipp-crypto`` wheel, which installs
``libcrypto_mb.so.13`` under ``<prefix>/lib``. We call it through ``ctypes``.

One wrinkle, and why this module edits a copy of the library. The wheel's binary lists four
Intel compiler runtime libraries as needed (``libsvml``, ``libirng``, ``libimf``,
``libintlc``). It imports no symbol from them (``nm -D --undefined-only`` shows only glibc and
OpenSSL), but the dynamic loader refuses to open the file without them. They ship in
``intel-cmplr-lib-rt``, which is under Intel's proprietary end-user licence, so Puhui does not
depend on it. Instead, :func:`load` writes a copy of ``libcrypto_mb.so.13`` into the user's
cache in which those four entries name ``libm.so.6`` (already needed by the library) and
loads the copy. Only ``DT_NEEDED`` values change; no code. The copy is checked against
RFC 7748's test vector before use, in every lane.

:func:`load` returns ``None``, never raises, when the wheel is absent, the CPU lacks AVX-512
IFMA, the file cannot be read or patched, or the test vector fails. The caller then uses
OpenSSL. ``PUHUI_CRYPTO_MB`` may name the library file to use instead of the wheel's.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import struct
import tempfile
from importlib import metadata
from pathlib import Path

__all__ = ["LANES", "CryptoMb", "load", "needed_libraries", "patch_needed", "unavailable_reason"]

LANES = 8
_LIBRARY = "libcrypto_mb.so.13"
# Declared as needed by the wheel's binary, used by none of its symbols; proprietary licence.
_UNUSED_RUNTIME = {b"libsvml.so", b"libirng.so", b"libimf.so", b"libintlc.so.5"}
_STAND_IN = b"libm.so.6"

# RFC 7748, section 5.2, first test vector.
_KAT_SCALAR = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
_KAT_POINT = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
_KAT_RESULT = bytes.fromhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB = 0, 1, 5


class CryptoMb:
    """``mbx_x25519_mb8`` with its argument types declared once."""

    def __init__(self, lib: ctypes.CDLL, path: Path) -> None:
        self.path = path
        function = lib.mbx_x25519_mb8
        # Each argument is the address of an array of eight pointers (one per lane).
        function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        function.restype = ctypes.c_uint32  # mbx_status: 4 bits per lane, 0 = OK
        self.raw_x25519_mb8 = function
        """``raw_x25519_mb8(outs, scalars, points)``: lane ``i`` writes
        ``X25519(*scalars[i], *points[i])`` to ``*outs[i]``; returns the status word."""


def _needed_entries(image: bytes) -> list[tuple[int, int, bytes]]:
    """``(file offset of the entry, string offset, name)`` of each ``DT_NEEDED`` entry.

    Read through the program headers (``PT_DYNAMIC``, and the ``PT_LOAD`` segment holding the
    string table), which a loadable library always has, even when its section headers are
    stripped. Raises ``ValueError`` for anything but a 64-bit little-endian ELF file.
    """
    if image[:4] != b"\x7fELF" or image[4] != 2 or image[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (phoff,) = struct.unpack_from("<Q", image, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", image, 0x36)
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None
    for k in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", image, phoff + k * phentsize
        )
        if p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        raise ValueError("no dynamic section")
    entries: list[tuple[int, int, int]] = []  # (file offset of the entry, tag, value)
    for offset in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", image, offset)
        if tag == _DT_NULL:
            break
        entries.append((offset, tag, value))
    strtab_vaddr = next(value for _, tag, value in entries if tag == _DT_STRTAB)
    strtab = next(
        offset + strtab_vaddr - vaddr
        for vaddr, offset, size in loads
        if vaddr <= strtab_vaddr < vaddr + size
    )

    def name(value: int) -> bytes:
        start = strtab + value
        return image[start : image.index(b"\0", start)]

    return [(offset, value, name(value)) for offset, tag, value in entries if tag == _DT_NEEDED]


def needed_libraries(image: bytes) -> list[str]:
    """The libraries an ELF image declares it needs (``DT_NEEDED``), in order."""
    return [name.decode() for _, _, name in _needed_entries(image)]


def patch_needed(image: bytes) -> bytes:
    """The ELF image with every ``DT_NEEDED`` entry naming an unused Intel runtime library
    redirected to ``libm.so.6``; raises ``ValueError`` if the image is not the expected kind."""
    needed = _needed_entries(image)
    stand_in = next((value for _, value, lib in needed if lib == _STAND_IN), None)
    if stand_in is None:
        raise ValueError(f"the library does not already need {_STAND_IN.decode()}")
    patched = bytearray(image)
    for offset, _value, lib in needed:
        if lib in _UNUSED_RUNTIME:
            struct.pack_into("<Q", patched, offset + 8, stand_in)
    return bytes(patched)


def _wheel_library() -> Path | None:
    """``libcrypto_mb.so.13`` as installed by the ``ipp-crypto`` wheel, if it is installed."""
    override = os.environ.get("PUHUI_CRYPTO_MB")
    if override:
        return Path(override)
    try:
        files = metadata.files("ipp-crypto") or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == _LIBRARY:
            return Path(str(file.locate()))
    return None


def _cache_dir() -> Path:
    """``$XDG_CACHE_HOME/puhui/crypto_mb`` (default ``~/.cache``); the temporary directory
    where that cannot be written, as in a container with a read-only home."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for root in (base, Path(tempfile.gettempdir())):
        directory = root / "puhui" / "crypto_mb"
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(directory, os.W_OK):
            return directory
    raise OSError("no writable cache directory for the patched crypto_mb copy")


def _patched_copy(source: Path) -> Path:
    """The patched copy in the cache, named by the source's digest; written atomically once."""
    image = source.read_bytes()
    digest = hashlib.sha256(image).hexdigest()[:16]
    target = _cache_dir() / digest / _LIBRARY
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(patch_needed(image))
            os.replace(temporary, target)  # concurrent workers race harmlessly: same bytes
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return target


def _passes_test_vector(mb: CryptoMb) -> bool:
    scalar = ctypes.create_string_buffer(_KAT_SCALAR, 32)
    point = ctypes.create_string_buffer(_KAT_POINT, 32)
    out = ctypes.create_string_buffer(32 * LANES)
    lanes = ctypes.c_void_p * LANES
    outs = lanes(*(ctypes.addressof(out) + 32 * lane for lane in range(LANES)))
    scalars = lanes(*[ctypes.addressof(scalar)] * LANES)
    points = lanes(*[ctypes.addressof(point)] * LANES)
    status = mb.raw_x25519_mb8(
        ctypes.addressof(outs), ctypes.addressof(scalars), ctypes.addressof(points)
    )
    return status == 0 and out.raw == _KAT_RESULT * LANES


def load() -> CryptoMb | None:
    """Intel's multi-buffer X25519 if it can run here and gives RFC 7748's answer, else None."""
    return _load()[0]


def unavailable_reason() -> str | None:
    """Why :func:`load` returns None (for error messages), or None when it loads."""
    return _load()[1]


@functools.cache
def _load() -> tuple[CryptoMb | None, str | None]:
    source = _wheel_library()
    if source is None:
        return None, "the ipp-crypto wheel is not installed (pip install 'puhui[fast-psi]')"
    try:
        path = _patched_copy(source)
        lib = ctypes.CDLL(str(path))
        applicable = lib.mbx_is_crypto_mb_applicable
        applicable.argtypes = [ctypes.c_uint64]
        applicable.restype = ctypes.c_int
        if not applicable(0):  # 0: ask the library to read this CPU's features itself
            return None, "this CPU lacks the AVX-512 IFMA instructions crypto_mb needs"
        mb = CryptoMb(lib, path)
    except (OSError, ValueError, AttributeError, StopIteration) as exc:
        return None, f"cannot load {source}: {exc}"
    if not _passes_test_vector(mb):
        return None, f"{path} does not reproduce RFC 7748's test vector"
    return mb, None
