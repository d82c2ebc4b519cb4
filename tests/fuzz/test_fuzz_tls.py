"""Fuzz TLS record and handshake parsing, and the X.509 hand-off, from real streams.

Seeds are the TLS streams of the repo's cases and of the lab captures
(mutated on either side); DER seeds are the certificates those streams carry
plus a few generated here. Invariants: nothing raises or is swallowed by the
parser's own guard, the facts stay bounded, offsets stay inside the input.
"""

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import (FUZZ, assert_bounded, lab_streams, mutated, mutated_or_random,
                     no_swallowed_errors, stream_files, target)
from flinkwire.protocols import tls
from flinkwire.protocols.x509 import describe_certificate

PAIRS = lab_streams("tls") + [
    (c, s) for c, s in zip(stream_files("*.c2s.bin"), stream_files("*.s2c.bin"))]
C2S = [c for c, _ in PAIRS if c] or [b"\x16\x03\x01\x00\x00"]
S2C = [s for _, s in PAIRS if s] or [b"\x16\x03\x03\x00\x00"]


def _certificates_in(stream: bytes, most: int = 6) -> list[bytes]:
    found, pos = [], stream.find(b"\x30\x82")
    while pos >= 0 and len(found) < most:
        length = int.from_bytes(stream[pos + 2:pos + 4], "big") + 4
        der = stream[pos:pos + length]
        if len(der) == length and der[4:6] == b"\x30\x82":
            try:
                x509.load_der_x509_certificate(der)
                found.append(der)
                pos += length
            except ValueError:
                pass
        pos = stream.find(b"\x30\x82", pos + 1)
    return found


def _generated() -> list[bytes]:
    out = []
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    for key in (ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobmanager.fuzz.example"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fuzz")])
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(12345)
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.SubjectAlternativeName([
                       x509.DNSName("jm.fuzz.example"),
                       x509.IPAddress(ipaddress.ip_address("192.0.2.7"))]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                  critical=True))
        algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        out.append(builder.sign(key, algorithm).public_bytes(
            encoding=__import__("cryptography.hazmat.primitives.serialization",
                                fromlist=["Encoding"]).Encoding.DER))
    return out


DER = [der for s in S2C + C2S for der in _certificates_in(s)][:12] + _generated()


def _check_facts(facts, c2s, s2c):
    assert not [a for a in facts.anomalies if "parser error" in a.get("detail", "")], \
        facts.anomalies
    assert 0 <= facts.starts["c2s"] <= len(c2s) and 0 <= facts.starts["s2c"] <= len(s2c)
    assert len(facts.server_certificates) <= tls.MAX_CERTIFICATES
    assert len(facts.alerts) <= tls.MAX_ALERTS
    assert_bounded(facts, len(c2s) + len(s2c))


@FUZZ
@given(c2s=mutated_or_random(C2S), s2c=st.one_of(st.sampled_from(S2C), mutated(S2C)),
       complete=st.booleans(), max_message=st.sampled_from((256 * 1024, 100, 0)))
@target("tls: parse_tls")
def test_parse_tls(c2s, s2c, complete, max_message):
    with no_swallowed_errors():
        facts = tls.parse_tls(c2s, s2c, complete_c2s=complete, complete_s2c=complete,
                              max_handshake_message=max_message)
    _check_facts(facts, c2s, s2c)


@FUZZ
@given(pair=st.sampled_from(PAIRS), data=st.data())
@target("tls: server side")
def test_parse_tls_server_mutations(pair, data):
    c2s = pair[0]
    s2c = data.draw(mutated([pair[1] or b"\x16\x03\x03"], max_mutations=4))
    with no_swallowed_errors():
        facts = tls.parse_tls(c2s, s2c, start_c2s=tls.tls_start(c2s) or 0)
    _check_facts(facts, c2s, s2c)


@FUZZ
@given(data=mutated_or_random(C2S + S2C), limit=st.sampled_from((1, 4096, 1 << 16)))
@target("tls: start search")
def test_start_search(data, limit):
    for find in (tls.tls_start, tls.tls_server_start):
        at = find(data, limit=limit)
        assert at is None or 0 <= at < len(data)
    assert tls.looks_like_tls_records(data, min_records=3) in (True, False)


@FUZZ
@given(der=st.one_of(mutated(DER, max_mutations=4), st.binary(max_size=600)))
@target("x509: describe_certificate")
def test_describe_certificate(der):
    facts = describe_certificate(der)
    assert isinstance(facts, dict) and "error" in facts
    assert_bounded(facts, len(der), slack=8192)
