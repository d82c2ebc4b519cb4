"""Certificate descriptions from DER built by `cryptography`, and from garbage."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from flinkwire.protocols.x509 import describe_certificate

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
SHA256 = hashes.SHA256()


def _name(cn: str, org: str = "Example Org") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _der(subject_key, cn, issuer_key=None, issuer_cn=None, start=NOW - timedelta(days=1),
         end=NOW + timedelta(days=90), san=None, serial=0x1234ABCD, algorithm=SHA256):
    builder = (x509.CertificateBuilder()
               .subject_name(_name(cn)).issuer_name(_name(issuer_cn or cn))
               .public_key(subject_key.public_key()).serial_number(serial)
               .not_valid_before(start).not_valid_after(end))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(issuer_key or subject_key, algorithm)
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP384R1())


def test_rsa_leaf_signed_by_ec_ca(rsa_key, ec_key):
    der = _der(rsa_key, "rest.flink.example.com", ec_key, "Example Issuing CA 1",
               san=[x509.DNSName("rest.flink.example.com"), x509.DNSName("jm.example.com"),
                    x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
                    x509.IPAddress(ipaddress.ip_address("2001:db8::7"))])
    facts = describe_certificate(der, now=NOW)
    assert facts["error"] is None
    assert facts["subject"] == "CN=rest.flink.example.com,O=Example Org,C=US"
    assert facts["issuer"] == "CN=Example Issuing CA 1,O=Example Org,C=US"
    assert facts["subject_cn"] == "rest.flink.example.com"
    assert facts["issuer_cn"] == "Example Issuing CA 1"
    assert facts["san_dns"] == ["rest.flink.example.com", "jm.example.com"]
    assert facts["san_ip"] == ["192.0.2.7", "2001:db8::7"]
    assert facts["serial"] == "1234abcd"
    assert facts["key_type"] == "RSA" and facts["key_bits"] == 2048
    # The signature is the issuer's: ECDSA over SHA-256.
    assert facts["signature_algorithm"] == "ecdsa-with-SHA256"
    assert facts["self_signed"] is False
    assert facts["expired"] is False and facts["not_yet_valid"] is False
    assert facts["not_before"] == (NOW - timedelta(days=1)).isoformat()
    assert facts["sha256"] == ":".join(f"{b:02x}" for b in hashlib.sha256(der).digest())
    assert facts["sha1"] == ":".join(f"{b:02x}" for b in hashlib.sha1(der).digest())


def test_self_signed_ec_and_validity_window(ec_key):
    der = _der(ec_key, "Example Test Root CA", start=NOW - timedelta(days=30),
               end=NOW + timedelta(days=30), algorithm=hashes.SHA384())
    facts = describe_certificate(der, now=NOW)
    assert facts["self_signed"] is True
    assert facts["key_type"] == "EC" and facts["key_bits"] == 384
    assert facts["signature_algorithm"] == "ecdsa-with-SHA384"
    assert facts["san_dns"] == [] and facts["san_ip"] == []
    expired = describe_certificate(der, now=NOW + timedelta(days=31))
    assert expired["expired"] is True and expired["not_yet_valid"] is False
    early = describe_certificate(der, now=NOW - timedelta(days=31))
    assert early["expired"] is False and early["not_yet_valid"] is True
    naive = describe_certificate(der, now=(NOW + timedelta(days=31)).replace(tzinfo=None))
    assert naive["expired"] is True


def test_same_names_but_foreign_signature_is_not_self_signed(rsa_key, ec_key):
    # Subject equals issuer, yet another key signed it: a forged "root".
    der = _der(rsa_key, "Example Test Root CA", issuer_key=ec_key)
    facts = describe_certificate(der, now=NOW)
    assert facts["subject"] == facts["issuer"]
    assert facts["self_signed"] is False


@pytest.mark.parametrize("make,key_type,bits", [
    (lambda: ed25519.Ed25519PrivateKey.generate(), "Ed25519", 256),
    (lambda: dsa.generate_private_key(key_size=2048), "DSA", 2048),
])
def test_other_key_types(make, key_type, bits):
    key = make()
    algorithm = None if key_type == "Ed25519" else hashes.SHA256()
    der = _der(key, "odd.example.net", algorithm=algorithm)
    facts = describe_certificate(der, now=NOW)
    assert facts["error"] is None
    assert facts["key_type"] == key_type and facts["key_bits"] == bits
    assert facts["self_signed"] is True


def test_email_attribute_is_named(rsa_key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ops"),
                      x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.com")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(rsa_key.public_key()).serial_number(1)
            .not_valid_before(NOW).not_valid_after(NOW + timedelta(days=1))
            .sign(rsa_key, hashes.SHA256()))
    facts = describe_certificate(cert.public_bytes(serialization.Encoding.DER), now=NOW)
    assert facts["subject"] == "emailAddress=ops@example.com,CN=ops"
    assert facts["subject_cn"] == "ops"


@pytest.mark.parametrize("der", [b"", b"\x30", b"\x30\x82\xff\xff" + bytes(20),
                                 b"not a certificate at all", bytes(range(256)) * 4])
def test_garbage_never_raises(der):
    facts = describe_certificate(der)
    assert facts["error"] and "\n" not in facts["error"]
    assert facts["subject"] is None and facts["san_dns"] == []
    assert facts["sha256"] == ":".join(f"{b:02x}" for b in hashlib.sha256(der).digest())


def test_truncated_and_flipped_der_never_raises(rsa_key):
    der = _der(rsa_key, "flip.example.org")
    for cut in range(0, len(der), 37):
        assert describe_certificate(der[:cut])["error"]
    for position in range(0, len(der), 11):
        mutated = bytearray(der)
        mutated[position] ^= 0xFF
        facts = describe_certificate(bytes(mutated), now=NOW)
        assert set(facts) >= {"subject", "error", "sha256"}


def test_oversized_input_is_refused():
    facts = describe_certificate(bytes(200_000))
    assert "exceeds" in facts["error"]


def test_non_bytes_input():
    assert describe_certificate("abc")["error"].startswith("not bytes")


def test_a_certificate_seen_again_is_described_alike_and_apart(rsa_key):
    der = _der(rsa_key, "jm.flink.example.com", san=[x509.DNSName("jm.flink.example.com")])
    first = describe_certificate(der, now=NOW)
    first["san_dns"].append("changed by a caller")
    first["subject"] = "changed"
    again = describe_certificate(bytearray(der), now=NOW)
    assert again["san_dns"] == ["jm.flink.example.com"]
    assert again["subject"] == "CN=jm.flink.example.com,O=Example Org,C=US"
    assert not any(key.startswith("_") for key in again)
    assert again["expired"] is False
    # The time of asking still decides the dates' verdicts of a remembered certificate.
    assert describe_certificate(der, now=NOW + timedelta(days=91))["expired"] is True


def test_certificates_above_the_cache_size_are_still_described(rsa_key):
    from flinkwire.protocols import x509 as module
    der = _der(rsa_key, "big.flink.example.com",
               san=[x509.DNSName(f"n{i:04d}.flink.example.com") for i in range(400)])
    assert len(der) > module.MAX_CACHED_BYTES
    facts = describe_certificate(der, now=NOW)
    assert facts["error"] is None and len(facts["san_dns"]) == 400
