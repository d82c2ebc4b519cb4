"""TLS layer: the shared capture cases, real in-memory handshakes, and hostile bytes."""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import random
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from flinkwire.protocols import tls_names
from flinkwire.protocols.tls import (
    HANDSHAKE_RECORD_LIMIT,
    MAX_RECORDS_WALKED,
    TlsFacts,
    looks_like_tls_records,
    parse_tls,
    tls_server_start,
    tls_start,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "tls"
CASES = ["tls-8081-plain-443", "tls-ch-split-records", "tls-ch-split-tcp",
         "tls-sslv2-hello", "vlan-ipv6-exthdr"]
PLAINTEXT_FLOWS = ["tls-8081-plain-443.flow1", "vlan-ipv6-exthdr.flow1"]


# --- the shared capture cases ------------------------------------------------------------


def _case(name: str) -> tuple[bytes, bytes, dict, dict]:
    expect = json.loads((DATA / f"{name}.expect.json").read_text())
    flow = next(f for f in expect["tcp_flows"] if f["classification"] == "tls")
    c2s = (DATA / f"{name}.c2s.bin").read_bytes()
    s2c = (DATA / f"{name}.s2c.bin").read_bytes()
    return c2s, s2c, flow, flow["tls"]


@pytest.mark.parametrize("name", CASES)
def test_case_streams_are_the_reassembled_streams(name):
    c2s, s2c, flow, _ = _case(name)
    assert hashlib.sha256(c2s).hexdigest() == flow["stream_sha256"]["c2s"]
    assert hashlib.sha256(s2c).hexdigest() == flow["stream_sha256"]["s2c"]


@pytest.mark.parametrize("name", CASES)
def test_case_handshake_facts(name):
    c2s, s2c, _, expected = _case(name)
    start = tls_start(c2s)
    assert start == 0
    assert looks_like_tls_records(s2c, min_records=3)
    facts = parse_tls(c2s, s2c, start_c2s=start)
    got = dataclasses.asdict(facts)
    checked = 0
    for key, want in expected.items():
        if key.endswith("_note"):
            continue
        if key in ("server_certificates", "client_certificates"):
            assert len(got[key]) == len(want), key
            for cert, cert_want in zip(got[key], want, strict=True):
                for field, value in cert_want.items():
                    assert cert[field] == value, (key, field)
                assert cert["error"] is None
        else:
            assert got[key] == want, key
        checked += 1
    assert checked >= 14
    assert facts.anomalies == []
    assert facts.handshake_complete
    assert facts.application_data_bytes["c2s"] > 0 and facts.application_data_bytes["s2c"] > 0
    assert facts.ends == {"c2s": len(c2s), "s2c": len(s2c)}


def test_case_split_records_counts():
    c2s, s2c, _, _ = _case("tls-ch-split-records")
    facts = parse_tls(c2s, s2c)
    assert facts.client_hello_records == 4
    assert [c["subject_cn"] for c in facts.server_certificates] == [
        "sso.example.org", "Example Issuing CA 1", "Example Test Root CA"]
    assert [c["self_signed"] for c in facts.server_certificates] == [False, False, True]


def test_case_split_tcp_tls13():
    c2s, s2c, _, _ = _case("tls-ch-split-tcp")
    facts = parse_tls(c2s, s2c)
    assert facts.client_hello_bytes == 1526
    assert facts.versions_offered[1:] == ["TLS 1.3", "TLS 1.2"]
    assert facts.versions_offered[0].startswith("GREASE")
    assert "X25519MLKEM768" in facts.groups_offered
    assert facts.session_resumed is False


def test_case_sslv2_compatible_hello():
    c2s, s2c, _, expected = _case("tls-sslv2-hello")
    facts = parse_tls(c2s, s2c)
    assert facts.offered_cipher_specs == expected["offered_cipher_specs"]
    assert facts.ciphers_offered[:3] == ["TLS_RSA_WITH_AES_256_CBC_SHA",
                                         "TLS_RSA_WITH_AES_128_CBC_SHA",
                                         "TLS_RSA_WITH_3DES_EDE_CBC_SHA"]
    assert facts.ciphers_offered[3:5] == ["SSL_CK_RC4_128_WITH_MD5",
                                          "SSL_CK_DES_192_EDE3_CBC_WITH_MD5"]
    assert facts.server_certificates[0]["key_type"] == "RSA"
    assert looks_like_tls_records(c2s)


@pytest.mark.parametrize("name", PLAINTEXT_FLOWS)
def test_plaintext_flows_are_not_tls(name):
    c2s = (DATA / f"{name}.c2s.bin").read_bytes()
    s2c = (DATA / f"{name}.s2c.bin").read_bytes()
    assert tls_start(c2s) is None
    assert not looks_like_tls_records(c2s)
    assert not looks_like_tls_records(s2c)
    facts = parse_tls(c2s, s2c)
    assert not facts.client_hello_seen and facts.version is None
    assert {a["kind"] for a in facts.anomalies} == {"bad-record-header"}


# --- certificates and real handshakes ----------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Flinkwire Test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key(kind: str):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(cn, key, issuer_cn=None, issuer_key=None, ca=False, dns=(), days=(-1, 30)):
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(cn))
               .issuer_name(_name(issuer_cn or cn))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + timedelta(days=days[0]))
               .not_valid_after(now + timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]
                                        + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@dataclasses.dataclass
class Pki:
    ca_file: Path
    server_files: tuple[Path, Path]
    client_files: tuple[Path, Path]
    server_cert: x509.Certificate
    ca_cert: x509.Certificate


def _write(tmp: Path, stem: str, cert, key) -> tuple[Path, Path]:
    cert_path, key_path = tmp / f"{stem}.crt", tmp / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _pki(tmp: Path, kind: str = "ec", days=(-1, 30), self_signed=False) -> Pki:
    ca_key = _key(kind)
    ca = _certificate("Flinkwire Test CA", ca_key, ca=True, days=(-10, 3650))
    server_key = _key(kind)
    if self_signed:
        server = _certificate("jobmanager.flink.test", server_key,
                              dns=("jobmanager.flink.test",), days=days)
    else:
        server = _certificate("jobmanager.flink.test", server_key, "Flinkwire Test CA", ca_key,
                              dns=("jobmanager.flink.test", "jm.flink.test"), days=days)
    client_key = _key(kind)
    client = _certificate("taskmanager-1", client_key, "Flinkwire Test CA", ca_key)
    ca_file = tmp / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_files = _write(tmp, "server", server, server_key)
    chain = server_files[0]
    if not self_signed:
        chain.write_bytes(chain.read_bytes() + ca_file.read_bytes())
    return Pki(ca_file, server_files, _write(tmp, "client", client, client_key), server, ca)


def _contexts(pki: Pki, version=ssl.TLSVersion.TLSv1_2, ciphers=None, require_client=False,
              alpn=("h2", "http/1.1")):
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*pki.server_files)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    for context in (server, client):
        context.minimum_version = version
        context.maximum_version = version
        if ciphers:
            context.set_ciphers(ciphers)
        if alpn:
            context.set_alpn_protocols(list(alpn))
    if require_client:
        server.verify_mode = ssl.CERT_REQUIRED
        server.load_verify_locations(pki.ca_file)
        client.load_cert_chain(*pki.client_files)
    return server, client


class _Link:
    """Client and server SSLObjects joined by memory BIOs, recording both directions."""

    def __init__(self, server_ctx, client_ctx, sni, session):
        self.c_in, self.c_out, self.s_in, self.s_out = (ssl.MemoryBIO() for _ in range(4))
        self.client = client_ctx.wrap_bio(self.c_in, self.c_out, server_hostname=sni,
                                          session=session)
        self.server = server_ctx.wrap_bio(self.s_in, self.s_out, server_side=True)
        self.c2s, self.s2c = bytearray(), bytearray()

    def pump(self):
        moved = self.c_out.read()
        self.c2s.extend(moved)
        self.s_in.write(moved)
        back = self.s_out.read()
        self.s2c.extend(back)
        self.c_in.write(back)


def _handshake(server_ctx, client_ctx, sni="jobmanager.flink.test",
               payload=b"GET / HTTP/1.1\r\n\r\n", session=None, expect_failure=False,
               link_out=None):
    """Run a real handshake and one request/response; returns (c2s, s2c, client)."""
    link = _Link(server_ctx, client_ctx, sni, session)
    if link_out is not None:
        link_out.append(link)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", link.client), ("server", link.server)):
            if done[name]:
                continue
            try:
                side.do_handshake()
                done[name] = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except ssl.SSLError:
                if not expect_failure:
                    raise
                link.pump()
                return bytes(link.c2s), bytes(link.s2c), link.client
        link.pump()
        if all(done.values()):
            break
    assert all(done.values()) and not expect_failure
    link.client.write(payload)
    link.pump()
    assert link.server.read(len(payload)) == payload
    link.server.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    link.pump()
    link.client.read(100)
    link.pump()
    return bytes(link.c2s), bytes(link.s2c), link.client


def test_tls12_ecdhe_ca_signed_chain(tmp_path):
    pki = _pki(tmp_path, "ec")
    c2s, s2c, client = _handshake(*_contexts(pki, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"))
    assert tls_start(c2s) == 0 and looks_like_tls_records(s2c, 3)
    facts = parse_tls(c2s, s2c)
    assert facts.anomalies == []
    assert facts.client_hello_seen and facts.client_hello_format == "tls"
    assert facts.version == "TLS 1.2" == tls_names.version_name(0x0303)
    assert facts.cipher == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    assert facts.cipher_id == "0xc02b"
    assert client.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert facts.sni == "jobmanager.flink.test"
    assert facts.alpn_offered == ["h2", "http/1.1"] and facts.alpn_selected == "h2"
    assert facts.key_exchange_group in ("x25519", "secp256r1")
    assert facts.key_exchange_group in facts.groups_offered
    subjects = [c["subject"] for c in facts.server_certificates]
    assert subjects == ["CN=jobmanager.flink.test,O=Flinkwire Test,C=US",
                        "CN=Flinkwire Test CA,O=Flinkwire Test,C=US"]
    leaf = facts.server_certificates[0]
    assert leaf["issuer_cn"] == "Flinkwire Test CA" and not leaf["self_signed"]
    assert leaf["san_dns"] == ["jobmanager.flink.test", "jm.flink.test"]
    assert leaf["san_ip"] == ["127.0.0.1"]
    assert leaf["key_type"] == "EC" and leaf["key_bits"] == 256
    assert leaf["serial"] == format(pki.server_cert.serial_number, "x")
    assert facts.server_certificates[1]["self_signed"]
    assert facts.client_certificate_requested is False
    assert facts.client_certificates == []
    assert facts.session_resumed is False
    assert facts.handshake_complete
    assert facts.application_data_bytes["c2s"] > 18 and facts.application_data_bytes["s2c"] > 0
    assert facts.records["c2s"] >= 4 and facts.records["s2c"] >= 4


def test_tls12_client_certificate_required(tmp_path):
    pki = _pki(tmp_path, "rsa")
    server, client = _contexts(pki, ciphers="ECDHE-RSA-AES256-GCM-SHA384", require_client=True)
    c2s, s2c, _ = _handshake(server, client)
    facts = parse_tls(c2s, s2c)
    assert facts.anomalies == []
    assert facts.cipher == "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
    assert facts.client_certificate_requested is True
    assert [c["subject_cn"] for c in facts.client_certificates] == ["taskmanager-1"]
    assert facts.client_certificates[0]["issuer_cn"] == "Flinkwire Test CA"
    assert facts.server_certificates[0]["key_type"] == "RSA"
    assert facts.server_certificates[0]["key_bits"] == 2048
    assert facts.server_certificates[0]["signature_algorithm"] == "sha256WithRSAEncryption"
    assert facts.handshake_complete


def test_tls12_rsa_key_exchange_flink_1x_default(tmp_path):
    # TLS_RSA_WITH_AES_128_CBC_SHA is Flink 1.x's security.ssl.algorithms default.
    pki = _pki(tmp_path, "rsa")
    try:
        contexts = _contexts(pki, ciphers="AES128-SHA:@SECLEVEL=0")
    except ssl.SSLError:
        pytest.skip("this OpenSSL refuses AES128-SHA")
    c2s, s2c, _ = _handshake(*contexts)
    facts = parse_tls(c2s, s2c)
    assert facts.cipher == "TLS_RSA_WITH_AES_128_CBC_SHA" and facts.cipher_id == "0x002f"
    assert facts.key_exchange_group is None  # no ServerKeyExchange for RSA key transport
    assert facts.anomalies == []


def test_tls12_dhe_reports_prime_size(tmp_path):
    pki = _pki(tmp_path, "rsa")
    server, client = _contexts(pki, ciphers="DHE-RSA-AES128-GCM-SHA256")
    # RFC 7919 ffdhe2048, written once by `openssl genpkey -genparam ... group:ffdhe2048`.
    dh_file = DATA / "ffdhe2048.pem"
    server.load_dh_params(str(dh_file))
    params = serialization.load_pem_parameters(dh_file.read_bytes())
    c2s, s2c, _ = _handshake(server, client)
    facts = parse_tls(c2s, s2c)
    assert facts.cipher == "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"
    assert facts.key_exchange_group is None
    assert facts.dh_prime_bits == params.parameter_numbers().p.bit_length() == 2048
    assert facts.anomalies == []


def test_tls12_expired_self_signed(tmp_path):
    pki = _pki(tmp_path, "rsa", days=(-400, -30), self_signed=True)
    c2s, s2c, _ = _handshake(*_contexts(pki, alpn=None))
    facts = parse_tls(c2s, s2c)
    assert facts.alpn_offered is None and facts.alpn_selected is None
    [leaf] = facts.server_certificates
    assert leaf["expired"] and not leaf["not_yet_valid"] and leaf["self_signed"]
    assert leaf["subject"] == leaf["issuer"]


def test_tls12_session_resumption(tmp_path):
    pki = _pki(tmp_path, "ec")
    server, client = _contexts(pki)
    _, _, first = _handshake(server, client)
    c2s, s2c, second = _handshake(server, client, session=first.session)
    assert second.session_reused
    facts = parse_tls(c2s, s2c)
    assert facts.session_resumed is True
    assert facts.server_certificates == []
    assert facts.client_certificate_requested is False
    assert facts.handshake_complete and facts.anomalies == []


def test_tls13(tmp_path):
    pki = _pki(tmp_path, "ec")
    server, client = _contexts(pki, version=ssl.TLSVersion.TLSv1_3, require_client=True)
    c2s, s2c, ssl_client = _handshake(server, client)
    facts = parse_tls(c2s, s2c)
    assert facts.anomalies == []
    assert facts.version == "TLS 1.3"
    assert facts.client_hello_legacy_version == "TLS 1.2"
    assert facts.versions_offered == ["TLS 1.3"]
    assert facts.cipher == ssl_client.cipher()[0]
    assert facts.cipher_id == f"0x{tls_names_id(facts.cipher):04x}"
    assert facts.key_exchange_group in facts.groups_offered
    assert facts.sni == "jobmanager.flink.test" and facts.alpn_offered == ["h2", "http/1.1"]
    # ALPN, certificates and CertificateRequest are encrypted in TLS 1.3.
    assert facts.alpn_selected is None
    assert facts.server_certificates == [] and facts.client_certificates == []
    assert facts.client_certificate_requested is None
    assert facts.session_resumed is False
    assert facts.handshake_complete
    assert facts.application_data_bytes["s2c"] > 500  # the encrypted certificate flight


def test_tls13_psk_resumption(tmp_path):
    pki = _pki(tmp_path, "ec")
    server, client = _contexts(pki, version=ssl.TLSVersion.TLSv1_3)
    _, _, first = _handshake(server, client)
    assert first.session is not None  # the NewSessionTicket was read with the response
    c2s, s2c, second = _handshake(server, client, session=first.session)
    assert second.session_reused
    facts = parse_tls(c2s, s2c)
    assert facts.version == "TLS 1.3" and facts.session_resumed is True
    assert 41 in facts.client_extensions  # pre_shared_key
    assert facts.anomalies == []


def test_one_direction_only(tmp_path):
    pki = _pki(tmp_path, "ec")
    c2s, s2c, _ = _handshake(*_contexts(pki))
    server_only = parse_tls(b"", s2c)
    assert not server_only.client_hello_seen and server_only.version == "TLS 1.2"
    assert len(server_only.server_certificates) == 2 and not server_only.handshake_complete
    assert server_only.anomalies == []
    client_only = parse_tls(c2s, b"")
    assert client_only.sni == "jobmanager.flink.test" and client_only.version is None
    assert client_only.client_certificate_requested is None
    assert client_only.session_resumed is None


def test_postgres_style_one_byte_server_answer(tmp_path):
    # PostgreSQL: SSLRequest (8 bytes) from the client, 'S' from the server, then TLS.
    pki = _pki(tmp_path, "ec")
    c2s, s2c, _ = _handshake(*_contexts(pki))
    request = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
    assert tls_start(request + c2s) == 8
    facts = parse_tls(request + c2s, b"S" + s2c, start_c2s=8)
    assert facts.starts == {"c2s": 8, "s2c": 1}
    assert facts.version == "TLS 1.2" and facts.anomalies == []


def _sslv2_record(body: bytes) -> bytes:
    return bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body


def test_genuine_sslv2_session(tmp_path):
    """SSL 2.0 end to end, built from the SSL 2.0 draft's message layouts."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = _certificate("legacy.flink.test", key).public_bytes(serialization.Encoding.DER)
    specs = bytes.fromhex("0700c0" "010080")
    challenge = bytes(range(16))
    client_hello = (b"\x01\x00\x02" + len(specs).to_bytes(2, "big") + b"\x00\x00"
                    + len(challenge).to_bytes(2, "big") + specs + challenge)
    connection_id = bytes(range(16, 32))
    server_hello = (b"\x04\x00\x01\x00\x02" + len(der).to_bytes(2, "big")
                    + len(specs).to_bytes(2, "big") + len(connection_id).to_bytes(2, "big")
                    + der + specs + connection_id)
    master_key = b"\x02" + bytes.fromhex("0700c0") + b"\x00\x00\x01\x00\x00\x08" + bytes(264)
    c2s = _sslv2_record(client_hello) + _sslv2_record(master_key) + _sslv2_record(bytes(40))
    s2c = _sslv2_record(server_hello) + _sslv2_record(bytes(40)) + _sslv2_record(bytes(40))
    assert tls_start(c2s) == 0 and tls_server_start(s2c) == 0
    assert looks_like_tls_records(c2s) and looks_like_tls_records(s2c)
    facts = parse_tls(c2s, s2c)
    assert facts.anomalies == []
    assert facts.client_hello_format == "sslv2-compatible"
    assert facts.client_hello_legacy_version == "SSL 2.0" == facts.version
    assert facts.offered_cipher_specs == ["0x0700c0", "0x010080"]
    assert facts.cipher == "SSL_CK_DES_192_EDE3_CBC_WITH_MD5" and facts.cipher_id == "0x0700c0"
    assert [c["subject_cn"] for c in facts.server_certificates] == ["legacy.flink.test"]
    assert facts.records == {"c2s": 3, "s2c": 3}
    assert facts.handshake_complete and facts.session_resumed is False
    # Cut inside the certificate: no certificate, no exception, the cut is reported.
    cut = parse_tls(c2s, s2c[:200])
    assert cut.version == "SSL 2.0" and cut.server_certificates == []
    assert [a["kind"] for a in cut.anomalies] == ["truncated-record"]


def tls_names_id(name: str) -> int:
    return next(code for code, known in tls_names.CIPHER_SUITES.items() if known == name)


def test_tls13_hello_retry_request(tmp_path):
    pki = _pki(tmp_path, "ec")
    server, client = _contexts(pki, version=ssl.TLSVersion.TLSv1_3)
    # The client's default key share is x25519; a server that takes only P-384 asks again.
    server.set_ecdh_curve("secp384r1")
    c2s, s2c, _ = _handshake(server, client)
    facts = parse_tls(c2s, s2c)
    if not facts.hello_retry_request:
        pytest.skip("OpenSSL did not send a HelloRetryRequest here")
    assert facts.version == "TLS 1.3"
    assert facts.key_exchange_group == "secp384r1"
    assert facts.sni == "jobmanager.flink.test"
    assert facts.handshake_complete and facts.anomalies == []


def test_plaintext_alert_on_untrusted_certificate(tmp_path):
    pki = _pki(tmp_path, "ec")
    server, client = _contexts(pki)
    client.verify_mode = ssl.CERT_REQUIRED  # but no trust anchor loaded
    c2s, s2c, _ = _handshake(server, client, expect_failure=True)
    facts = parse_tls(c2s, s2c)
    assert {"direction": "c2s", "level": "fatal", "description": "unknown_ca"} in facts.alerts
    assert not facts.handshake_complete
    assert facts.server_certificates[0]["subject_cn"] == "jobmanager.flink.test"


def test_encrypted_alert_is_not_decoded(tmp_path):
    pki = _pki(tmp_path, "ec")
    links = []
    _handshake(*_contexts(pki), link_out=links)
    link = links[0]
    try:
        link.client.unwrap()  # close_notify, sent after ChangeCipherSpec: encrypted
    except ssl.SSLWantReadError:
        pass
    link.pump()
    facts = parse_tls(bytes(link.c2s), bytes(link.s2c))
    assert facts.alerts == [{"direction": "c2s", "level": None, "description": "encrypted"}]
    assert facts.anomalies == []


def test_starttls_prefix(tmp_path):
    pki = _pki(tmp_path, "ec")
    c2s, s2c, _ = _handshake(*_contexts(pki))
    client_prefix = b"EHLO client.flink.test\r\nSTARTTLS\r\n"
    server_prefix = b"220 mail.flink.test ESMTP\r\n250 STARTTLS\r\n220 Go ahead\r\n"
    plain_c2s, plain_s2c = client_prefix + c2s, server_prefix + s2c
    assert tls_start(plain_c2s) == len(client_prefix)
    assert tls_server_start(plain_s2c) == len(server_prefix)
    assert tls_start(plain_c2s, limit=10) is None
    facts = parse_tls(plain_c2s, plain_s2c, start_c2s=len(client_prefix))
    assert facts.starts == {"c2s": len(client_prefix), "s2c": len(server_prefix)}
    assert facts.version == "TLS 1.2" and facts.sni == "jobmanager.flink.test"
    assert facts.anomalies == []
    # Without offsets the plaintext prefixes are found as well.
    assert dataclasses.asdict(parse_tls(plain_c2s, plain_s2c)) == dataclasses.asdict(facts)


def _handshake_payload(stream: bytes) -> tuple[bytes, bytes]:
    """Handshake bytes of the leading handshake records, and the stream after them."""
    pos, payload = 0, bytearray()
    while pos + 5 <= len(stream) and stream[pos] == 22:
        length = int.from_bytes(stream[pos + 3:pos + 5], "big")
        payload += stream[pos + 5:pos + 5 + length]
        pos += 5 + length
    return bytes(payload), stream[pos:]


def _records(payload: bytes, size: int, content_type: int = 22) -> bytes:
    return b"".join(bytes([content_type, 3, 3]) + len(payload[i:i + size]).to_bytes(2, "big")
                    + payload[i:i + size] for i in range(0, len(payload), size))


def test_client_hello_fragmented_into_many_records(tmp_path):
    pki = _pki(tmp_path, "ec")
    c2s, s2c, _ = _handshake(*_contexts(pki))
    hello, rest = _handshake_payload(c2s)
    refragmented = _records(hello, 7)
    facts = parse_tls(refragmented + rest, s2c)
    # The payload also holds ClientKeyExchange; the hello is its first message.
    assert facts.client_hello_bytes == 4 + int.from_bytes(hello[1:4], "big")
    assert facts.client_hello_records == -(-facts.client_hello_bytes // 7)
    assert facts.sni == "jobmanager.flink.test" and facts.anomalies == []
    assert tls_start(refragmented) == 0 and tls_start(b"xx" + refragmented) == 2
    # One byte per record needs more records than are kept for handshake parsing.
    tiny = _records(hello, 1)
    assert tls_start(tiny) == 0
    capped = parse_tls(tiny + rest, s2c)
    assert not capped.client_hello_seen
    assert [(a["kind"], a["direction"]) for a in capped.anomalies] == [("limit", "c2s")]
    assert capped.version == "TLS 1.2"


def test_whole_server_flight_in_one_record(tmp_path):
    pki = _pki(tmp_path, "ec")
    c2s, s2c, _ = _handshake(*_contexts(pki))
    flight, rest = _handshake_payload(s2c)
    assert len(flight) < 2**14
    packed = _records(flight, 2**14) + rest
    assert len(packed) < len(s2c)
    before, after = parse_tls(c2s, s2c), parse_tls(c2s, packed)
    assert after.anomalies == [] and after.version == "TLS 1.2"
    assert after.server_certificates == before.server_certificates
    assert after.key_exchange_group == before.key_exchange_group is not None
    assert after.client_certificate_requested is False


# --- hostile and odd input ---------------------------------------------------------------


@pytest.mark.parametrize("c2s,s2c", [(b"", b""), (b"\x16", b"\x16"), (b"\x80", b""),
                                     (b"\x16\x03\x01", b"\x16\x03\x03\x00"),
                                     (b"\x00" * 100, b"\xff" * 100)])
def test_empty_and_tiny_streams(c2s, s2c):
    facts = parse_tls(c2s, s2c)
    assert isinstance(facts, TlsFacts)
    assert not facts.client_hello_seen and facts.version is None
    assert all(a["kind"] in ("truncated-record", "bad-record-header") for a in facts.anomalies)
    assert tls_start(b"") is None and tls_start(b"\x16") is None
    assert not looks_like_tls_records(b"") and not looks_like_tls_records(b"\x16")


def test_short_head_of_a_tls_stream_is_tls():
    assert tls_start(b"\x16\x03\x01\x02\x00\x01") == 0
    assert looks_like_tls_records(b"\x16\x03\x03\x10\x00\x02\x00", min_records=4)
    assert looks_like_tls_records(b"\x17\x03\x03\x00\x02ab\x17\x03", min_records=4)
    assert not looks_like_tls_records(b"\x17\x03\x03\x00\x02abGET / HTTP/1.1", min_records=2)
    assert not looks_like_tls_records(b"\x16\x03\x03\x00\x00", min_records=1)


def test_truncated_record(tmp_path):
    pki = _pki(tmp_path, "ec")
    c2s, s2c, _ = _handshake(*_contexts(pki))
    second_record = 5 + int.from_bytes(s2c[3:5], "big")  # after the ServerHello
    cut = s2c[:second_record + 300]  # inside the Certificate record
    facts = parse_tls(c2s, cut)
    assert [a["kind"] for a in facts.anomalies] == ["truncated-record"]
    assert facts.anomalies[0]["direction"] == "s2c"
    assert facts.anomalies[0]["offset"] == second_record
    assert facts.version == "TLS 1.2" and facts.server_certificates == []
    assert facts.client_certificate_requested is None
    # The same head marked as cut by a retention limit is not an anomaly.
    quiet = parse_tls(c2s, cut, complete_s2c=False)
    assert quiet.anomalies == [] and quiet.version == "TLS 1.2"


def test_bad_length_and_header_after_good_records(tmp_path):
    pki = _pki(tmp_path, "ec")
    c2s, s2c, _ = _handshake(*_contexts(pki))
    facts = parse_tls(c2s + b"\x17\x03\x03\xff\xff" + bytes(64), s2c + b"HTTP/1.1 400\r\n")
    kinds = {(a["kind"], a["direction"], a["offset"]) for a in facts.anomalies}
    assert kinds == {("bad-tls-length", "c2s", len(c2s)), ("bad-record-header", "s2c", len(s2c))}
    assert facts.ends == {"c2s": len(c2s), "s2c": len(s2c)}
    assert facts.version == "TLS 1.2" and facts.handshake_complete


def test_huge_claimed_handshake_length_is_bounded():
    body = b"\x01\xff\xff\xff" + bytes(100)
    c2s = bytes([22, 3, 1]) + len(body).to_bytes(2, "big") + body
    facts = parse_tls(c2s, b"")
    assert not facts.client_hello_seen
    # Over the cap, and (the stream being complete) its bytes never came.
    assert [a["kind"] for a in facts.anomalies] == ["limit", "malformed-handshake"]
    assert [a["kind"] for a in parse_tls(c2s, b"", complete_c2s=False).anomalies] == ["limit"]
    modest = b"\x01\x00\x00\x60" + bytes(96)
    small = parse_tls(bytes([22, 3, 1, 0, 100]) + modest, b"", max_handshake_message=10)
    assert [a["kind"] for a in small.anomalies] == ["limit"]


def test_oversized_certificate_message_is_skipped_not_fatal(tmp_path):
    pki = _pki(tmp_path, "ec")
    c2s, s2c, _ = _handshake(*_contexts(pki, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"))
    full = parse_tls(c2s, s2c)
    capped = parse_tls(c2s, s2c, max_handshake_message=300)
    assert [(a["kind"], a["direction"]) for a in capped.anomalies] == [("limit", "s2c")]
    assert "type 11" in capped.anomalies[0]["detail"]
    assert capped.server_certificates == [] and len(full.server_certificates) == 2
    # What follows the skipped Certificate is still read.
    assert capped.key_exchange_group == full.key_exchange_group is not None
    assert capped.client_certificate_requested is False and capped.session_resumed is False
    assert capped.sni == full.sni and capped.cipher == full.cipher


def test_malformed_client_hello_keeps_what_was_read():
    hello = (b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x04\xc0\x2b\x13\x01" + b"\x01\x00"
             + b"\x00\x50")  # extensions claim 80 bytes, none follow
    body = b"\x01" + len(hello).to_bytes(3, "big") + hello
    c2s = bytes([22, 3, 1]) + len(body).to_bytes(2, "big") + body
    facts = parse_tls(c2s, b"")
    assert facts.client_hello_seen and facts.client_hello_legacy_version == "TLS 1.2"
    assert facts.ciphers_offered == ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                                     "TLS_AES_128_GCM_SHA256"]
    assert [a["kind"] for a in facts.anomalies] == ["malformed-handshake"]


def test_unfinished_handshake_message_at_end_of_stream():
    c2s = bytes([22, 3, 1, 0, 8]) + b"\x01\x00\x01\x00" + bytes(4)
    assert [a["kind"] for a in parse_tls(c2s, b"").anomalies] == ["malformed-handshake"]
    assert parse_tls(c2s, b"", complete_c2s=False).anomalies == []


def test_many_tiny_records_are_counted_but_not_parsed():
    records = bytes([23, 3, 3, 0, 1, 0x41]) * 50_000
    facts = parse_tls(records, records)
    assert facts.records == {"c2s": 50_000, "s2c": 50_000}
    assert facts.application_data_bytes == {"c2s": 50_000, "s2c": 50_000}
    handshakes = bytes([22, 3, 3, 0, 4, 0, 0, 0, 0]) * (HANDSHAKE_RECORD_LIMIT + 10)
    capped = parse_tls(handshakes, b"")
    assert [a["kind"] for a in capped.anomalies] == ["limit"]


def test_record_walk_is_capped():
    flood = bytes([23, 3, 3, 0, 0]) * (MAX_RECORDS_WALKED + 1000)
    facts = parse_tls(flood, b"")
    assert facts.records["c2s"] == MAX_RECORDS_WALKED
    assert [a["kind"] for a in facts.anomalies] == ["limit"]
    assert facts.anomalies[0]["offset"] == 5 * MAX_RECORDS_WALKED


def test_alerts_and_cipher_change_far_into_the_stream():
    application = bytes([23, 3, 3, 0, 3]) + b"abc"
    alert = bytes([21, 3, 3, 0, 2, 1, 0])  # warning close_notify, in clear
    ccs = bytes([20, 3, 3, 0, 1, 1])
    sealed_alert = bytes([21, 3, 3, 0, 26]) + bytes(26)
    stream = application * 100 + alert + ccs + application * 5 + sealed_alert
    facts = parse_tls(stream, b"")
    assert facts.alerts == [
        {"direction": "c2s", "level": "warning", "description": "close_notify"},
        {"direction": "c2s", "level": None, "description": "encrypted"}]
    assert facts.records["c2s"] == 108 and facts.application_data_bytes["c2s"] == 315
    assert facts.anomalies == []


def test_garbage_and_mutated_handshakes_never_raise(tmp_path):
    pki = _pki(tmp_path, "ec")
    c2s, s2c, _ = _handshake(*_contexts(pki))
    rng = random.Random(1234)
    for _ in range(300):
        a, b = bytearray(c2s), bytearray(s2c)
        for buf in (a, b):
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        cut_a, cut_b = rng.randrange(len(a) + 1), rng.randrange(len(b) + 1)
        facts = parse_tls(bytes(a[:cut_a]), bytes(b[:cut_b]), complete_c2s=rng.random() < 0.5)
        assert not any(x["detail"].startswith("parser error") for x in facts.anomalies)
        tls_start(bytes(a))
        looks_like_tls_records(bytes(b), 3)
    for _ in range(200):
        blob = rng.randbytes(rng.randrange(0, 600))
        facts = parse_tls(b"\x16\x03\x01" + blob, b"\x16\x03\x03" + blob)
        assert not any(x["detail"].startswith("parser error") for x in facts.anomalies)


@pytest.mark.parametrize("version", [b"\x00\x02", b"\x03\x01", b"\x03\x04"])
def test_sslv2_hello_found_after_a_binary_head(version):
    """An SSLv2-format hello after bytes full of high-bit bytes and near-misses (the right
    first bytes, a wrong version or type), and one that starts just before the limit."""
    hello = _sslv2_record(b"\x01" + version + b"\x00\x03\x00\x00\x00\x10" + b"\x00\x00\x0a"
                          + bytes(range(16)))
    head = bytes(random.Random(5).randrange(128, 256) for _ in range(300))
    near_misses = (_sslv2_record(b"\x01\x03\x05" + bytes(25)) + b"\x85\x10\x02\x03\x01"
                   + b"\x80\x1c\x01\x03\x01\x00\x04")
    c2s = head + near_misses + hello
    assert tls_start(c2s) == len(head) + len(near_misses)
    # The limit bounds where the hello may start, not where it ends.
    assert tls_start(c2s, limit=len(head) + len(near_misses) + 1) == len(head) + len(near_misses)
    assert tls_start(c2s, limit=len(head) + len(near_misses)) is None


def test_capture_starting_inside_the_server_certificate_is_tls(tmp_path):
    """Found by the breaker (504): a real TLS 1.2 session whose capture began inside the
    server's Certificate record was `opaque` (its tail's printable names and dates were
    refused as a record's tail), so `check` failed a TLS cluster."""
    import flinkwire
    from builders import pcap_bytes, tcp_packet

    c2s, s2c, _ = _handshake(*_contexts(_pki(tmp_path, "ec")))
    hello_end = 5 + int.from_bytes(s2c[3:5], "big")     # the ServerHello record
    s2c = s2c[hello_end + 100:]                          # the capture starts in the next
    client_flight = 5 + int.from_bytes(c2s[3:5], "big")
    c2s = c2s[client_flight:]                            # ... after the ClientHello
    packets = [tcp_packet("192.0.2.11", 43000, "192.0.2.10", 6123, 5000, 9000, "PA", c2s),
               tcp_packet("192.0.2.10", 6123, "192.0.2.11", 43000, 9000, 5000 + len(c2s),
                          "PA", s2c)]
    path = tmp_path / "mid-certificate.pcap"
    path.write_bytes(pcap_bytes([bytes(p) for p in packets]))
    analysis = flinkwire.analyze(path)
    assert analysis.flows.iloc[0].verdict == "tls"
    assert "tls-lookalike" not in set(analysis.anomalies["kind"])
