"""The operators' certificate authority for the two federated parties (mutual TLS).

The bank and its data partner each run a party process that is both a TLS server (it receives
the peer's messages) and a TLS client (it sends its own). Both sides must prove who they are,
so the operators create one small CA for the federation (``puhui federated ca init``) and issue
each party a certificate from it (``puhui federated ca issue``). A party then trusts exactly
that CA — never the system's public roots — so "a valid certificate" means "issued by our
operators", not "issued by anyone on the internet".

Chaining to the CA is not enough: a guest must not accept a peer that presents the *guest*
certificate (a copied file, a mis-typed URL that points back at itself). The certificate
therefore records the party's role twice: as the subject's organisational unit (``OU=guest``,
readable by people in ``openssl x509 -text``) and as a subject-alternative-name URI
``puhui:role:guest``, which Python's :meth:`ssl.SSLSocket.getpeercert` exposes after the
handshake, so the transport can check the role without parsing DER itself.

Keys are EC P-256 (fast handshakes, small certificates, supported everywhere) and are written
unencrypted with mode 0600: the party process must start unattended, and file permissions on a
protected volume are the protection, as for the platform's own key files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from puhui.federated.errors import FederatedError

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "ROLES",
    "ROLE_URI_PREFIX",
    "CaFiles",
    "PartyFiles",
    "PkiError",
    "check_party_files",
    "check_role",
    "create_ca",
    "issue_party_certificate",
    "load_certificate",
    "load_private_key",
    "name_of_peer_cert",
    "other_role",
    "role_of_certificate",
    "role_of_peer_cert",
    "tls_context",
]

ROLES = ("guest", "host")
ROLE_URI_PREFIX = "puhui:role:"
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
KEY_MODE = 0o600
DEFAULT_HOSTS = ("localhost", "127.0.0.1")


class PkiError(FederatedError):
    """A CA or party certificate file is missing, unreadable, or not what it should be."""


@dataclass(frozen=True)
class CaFiles:
    """Where a CA's certificate and key are."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class PartyFiles:
    """What a party needs for mutual TLS: the CA certificate, its own certificate and key."""

    ca_cert: Path
    cert: Path
    key: Path


def other_role(role: str) -> str:
    """The peer's role: ``guest`` for ``host`` and the other way round."""
    check_role(role)
    return "host" if role == "guest" else "guest"


def check_role(role: str) -> str:
    """``role`` itself if it is ``guest`` or ``host``; a PkiError naming both otherwise."""
    if role not in ROLES:
        raise PkiError(f"role must be 'guest' or 'host', not {role!r}")
    return role


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_new(path: Path, data: bytes, mode: int, overwrite: bool) -> None:
    """Write ``data`` to ``path`` created with ``mode`` from the start (a key is never readable
    by others, not even for a moment); refuse to replace an existing file unless asked."""
    if path.exists() and not overwrite:
        raise PkiError(f"{path} already exists; remove it or choose another directory")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # new directories: owner only
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT keeps an existing temporary file's old mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise PkiError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def load_certificate(path: Path, what: str = "certificate") -> x509.Certificate:
    """A PEM certificate from ``path``; a PkiError naming the file if it is missing or invalid."""
    data = _read(path, what)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise PkiError(f"{what} {path} is not a PEM certificate: {exc}") from None


def load_private_key(path: Path, what: str = "private key") -> ec.EllipticCurvePrivateKey:
    """An unencrypted PEM EC private key from ``path``."""
    data = _read(path, what)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PkiError(f"{what} {path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{what} {path} is not an EC key")
    return key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def create_ca(
    directory: Path,
    *,
    name: str = "Puhui federation CA",
    valid_days: int = 3650,
    overwrite: bool = False,
) -> CaFiles:
    """Create the federation CA in ``directory``: ``ca.key`` (0600) and ``ca.crt``.

    The CA may sign party certificates only (path length 0); it is the single trust anchor of
    both parties. Refuses to overwrite an existing CA, which would orphan every party
    certificate issued from it, unless ``overwrite``.
    """
    if valid_days < 1:
        raise PkiError("valid_days must be at least 1")
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not overwrite:
        for path in (cert_path, key_path):
            if path.exists():
                raise PkiError(f"{path} already exists: a CA is already set up in {directory}")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Puhui federated learning"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    now = _now()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate small clock skew
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_new(key_path, _key_pem(key), KEY_MODE, overwrite)
    _write_new(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644, overwrite)
    return CaFiles(cert=cert_path, key=key_path)


def _san_entries(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        host = host.strip()
        if not host:
            raise PkiError("a host name for the certificate is empty")
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue_party_certificate(
    ca_dir: Path,
    role: str,
    name: str,
    out_dir: Path,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    valid_days: int = 825,
    overwrite: bool = False,
) -> PartyFiles:
    """Issue a certificate for the party ``name`` acting as ``role``; write it to ``out_dir``.

    ``out_dir`` receives ``<role>.crt``, ``<role>.key`` (0600) and a copy of ``ca.crt``: the
    three files the party's ``party.toml`` names, ready to hand to that party's operator.
    ``hosts`` are the DNS names and IP addresses under which the *peer* reaches this party
    (its ``peer.url`` host must be one of them: the peer checks it as a browser would). The
    certificate serves both as TLS server and TLS client certificate, since a party is both.
    """
    check_role(role)
    if not name.strip():
        raise PkiError("the party name must not be empty")
    if valid_days < 1:
        raise PkiError("valid_days must be at least 1")
    hosts = list(hosts)
    if not hosts:
        raise PkiError("give at least one host name or IP address for the certificate")
    ca_cert = load_certificate(ca_dir / CA_CERT, "CA certificate")
    ca_key = load_private_key(ca_dir / CA_KEY, "CA private key")
    if ca_cert.public_key() != ca_key.public_key():
        raise PkiError(f"{ca_dir / CA_KEY} is not the key of {ca_dir / CA_CERT}")
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    now = _now()
    not_after = min(now + dt.timedelta(days=valid_days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Puhui federated learning"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [*_san_entries(hosts), x509.UniformResourceIdentifier(ROLE_URI_PREFIX + role)]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = PartyFiles(
        ca_cert=out_dir / CA_CERT, cert=out_dir / f"{role}.crt", key=out_dir / f"{role}.key"
    )
    for path in (files.cert, files.key):
        if path.exists() and not overwrite:
            raise PkiError(f"{path} already exists; remove it or choose another --out directory")
    _write_new(files.key, _key_pem(key), KEY_MODE, overwrite)
    _write_new(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644, overwrite)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    if files.ca_cert.resolve() != (ca_dir / CA_CERT).resolve():
        existing = files.ca_cert.read_bytes() if files.ca_cert.exists() else None
        if existing is not None and existing != ca_pem:
            raise PkiError(f"{files.ca_cert} holds another CA certificate; use another --out")
        if existing is None:
            _write_new(files.ca_cert, ca_pem, 0o644, overwrite=False)
    return files


def role_of_certificate(cert: x509.Certificate) -> str | None:
    """The role a party certificate was issued for (its ``puhui:role:`` URI), or None."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    roles = [
        uri.removeprefix(ROLE_URI_PREFIX)
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
        if uri.startswith(ROLE_URI_PREFIX)
    ]
    return roles[0] if len(roles) == 1 else None


def _peer_cert_values(cert: Mapping[str, Any], kind: str) -> list[str]:
    return [value for key, value in cert.get("subjectAltName", ()) if key == kind]


def role_of_peer_cert(cert: Mapping[str, Any] | None) -> str | None:
    """The role in a certificate as :meth:`ssl.SSLSocket.getpeercert` returns it, or None."""
    if not cert:
        return None
    roles = [
        uri.removeprefix(ROLE_URI_PREFIX)
        for uri in _peer_cert_values(cert, "URI")
        if uri.startswith(ROLE_URI_PREFIX)
    ]
    return roles[0] if len(roles) == 1 else None


def name_of_peer_cert(cert: Mapping[str, Any] | None) -> str:
    """The party name (subject common name) of a peer certificate, for error messages."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return "?"


def check_party_files(files: PartyFiles, role: str) -> None:
    """Fail early, naming the file, if a party's TLS files do not fit together.

    Checks that each file is readable, that the certificate was issued by the CA in
    ``ca_cert`` (signature and issuer name), that it is for ``role``, and that the key is the
    certificate's. Without this, a mix-up would only show as an opaque TLS alert on the peer.
    """
    ca = load_certificate(files.ca_cert, "CA certificate (tls.ca_cert)")
    cert = load_certificate(files.cert, "party certificate (tls.cert)")
    key = load_private_key(files.key, "party private key (tls.key)")
    if cert.issuer != ca.subject:
        raise PkiError(f"{files.cert} was not issued by the CA in {files.ca_cert}")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise PkiError(f"{files.cert} was not issued by the CA in {files.ca_cert}: {exc}") from None
    found = role_of_certificate(cert)
    if found != role:
        raise PkiError(
            f"{files.cert} is a certificate for the {found or 'unknown'} role, but this party "
            f"is the {role}; issue one with `puhui federated ca issue --role {role}`"
        )
    if cert.public_key() != key.public_key():
        raise PkiError(f"{files.key} is not the private key of {files.cert}")
    if cert.not_valid_after_utc < _now():
        raise PkiError(f"{files.cert} expired on {cert.not_valid_after_utc:%Y-%m-%d}")


def tls_context(files: PartyFiles, *, server_side: bool) -> ssl.SSLContext:
    """The federation's TLS rules for one party: its CA only (never the system's roots), a
    certificate required from the peer in both directions, TLS 1.2 or later. Raises
    :class:`PkiError` naming the files when they cannot be loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_verify_locations(cafile=str(files.ca_cert))
        ctx.load_cert_chain(certfile=str(files.cert), keyfile=str(files.key))
    except (ssl.SSLError, OSError) as exc:
        raise PkiError(f"cannot load this party's TLS files {files}: {exc}") from None
    return ctx
