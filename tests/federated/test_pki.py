"""The operators' CA: what a party certificate holds, file modes, and clear refusals."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from puhui.federated.pki import (
    CA_CERT,
    PkiError,
    check_party_files,
    create_ca,
    issue_party_certificate,
    load_certificate,
    other_role,
    role_of_certificate,
    role_of_peer_cert,
)


def test_ca_and_party_certificate(tmp_path: Path) -> None:
    ca = create_ca(tmp_path / "ca", valid_days=30)
    files = issue_party_certificate(
        tmp_path / "ca", "host", "数据伙伴", tmp_path / "out", hosts=["partner.test", "10.0.0.7"]
    )
    assert (ca.key.stat().st_mode & 0o777) == 0o600
    assert (files.key.stat().st_mode & 0o777) == 0o600
    assert files.ca_cert.read_bytes() == ca.cert.read_bytes()  # the party gets the CA too

    ca_cert = load_certificate(ca.cert)
    cert = load_certificate(files.cert)
    cert.verify_directly_issued_by(ca_cert)
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert role_of_certificate(cert) == "host"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "host"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "数据伙伴"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["partner.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usage)
    assert cert.not_valid_after_utc <= ca_cert.not_valid_after_utc  # never outlives its CA
    check_party_files(files, "host")


def test_openssl_reads_the_role_as_the_transport_will(tmp_path: Path) -> None:
    """The transport reads the role from ``getpeercert()``: check that form, via a real
    handshake-free decode of the certificate by the ssl module."""
    create_ca(tmp_path / "ca")
    files = issue_party_certificate(tmp_path / "ca", "guest", "bank", tmp_path / "out")
    decoded = ssl._ssl._test_decode_cert(str(files.cert))  # type: ignore[attr-defined]
    assert role_of_peer_cert(decoded) == "guest"
    assert ("DNS", "localhost") in decoded["subjectAltName"]
    assert ("IP Address", "127.0.0.1") in decoded["subjectAltName"]
    assert role_of_peer_cert({}) is None
    assert role_of_peer_cert({"subjectAltName": (("URI", "https://x"),)}) is None


def test_refusals_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match=r"CA certificate not found: .*nowhere/ca.crt"):
        issue_party_certificate(tmp_path / "nowhere", "guest", "bank", tmp_path / "out")
    create_ca(tmp_path / "ca")
    with pytest.raises(PkiError, match="already exists"):
        create_ca(tmp_path / "ca")
    with pytest.raises(PkiError, match="role must be 'guest' or 'host'"):
        issue_party_certificate(tmp_path / "ca", "observer", "x", tmp_path / "out")
    with pytest.raises(PkiError, match="must not be empty"):
        issue_party_certificate(tmp_path / "ca", "guest", " ", tmp_path / "out")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / CA_CERT).write_text("not a certificate")
    with pytest.raises(PkiError, match="is not a PEM certificate"):
        issue_party_certificate(tmp_path / "broken", "guest", "bank", tmp_path / "out")
    issue_party_certificate(tmp_path / "ca", "guest", "bank", tmp_path / "out")
    with pytest.raises(PkiError, match="already exists"):
        issue_party_certificate(tmp_path / "ca", "guest", "bank", tmp_path / "out")
    assert other_role("guest") == "host" and other_role("host") == "guest"


def test_party_files_that_do_not_fit_together(tmp_path: Path) -> None:
    create_ca(tmp_path / "ca")
    create_ca(tmp_path / "other")
    guest = issue_party_certificate(tmp_path / "ca", "guest", "bank", tmp_path / "g")
    host = issue_party_certificate(tmp_path / "ca", "host", "partner", tmp_path / "h")
    foreign = issue_party_certificate(tmp_path / "other", "host", "x", tmp_path / "f")
    with pytest.raises(
        PkiError, match="certificate for the guest role, but this party is the host"
    ):
        check_party_files(guest, "host")
    with pytest.raises(PkiError, match="not the private key"):
        check_party_files(type(guest)(guest.ca_cert, guest.cert, host.key), "guest")
    with pytest.raises(PkiError, match="not issued by the CA"):
        check_party_files(type(guest)(guest.ca_cert, foreign.cert, foreign.key), "host")
    with pytest.raises(PkiError, match=r"party private key \(tls.key\) not found"):
        check_party_files(type(guest)(guest.ca_cert, guest.cert, tmp_path / "missing"), "guest")
