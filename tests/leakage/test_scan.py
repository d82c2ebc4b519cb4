"""Tests of the leakage scanners against the shared corpus, peer captures and crafted bytes.

The stream files under tests/data/leakage/ are rebuilt by extract_streams.py with
tshark; the corpus tests check each one against its case's stream_sha256 first,
so they run on exactly the bytes the expect.json describes.
"""

import hashlib
import json
import pathlib
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import flink_string_value
from flinkwire.leakage.luhn import luhn_valid
from flinkwire.leakage.scan import Secret, find_secrets, readable_runs

DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "leakage"

# The corpus names kinds roughly; these are the kinds of ours that count for each.
KINDS = {
    "password": {"password", "basic-auth", "config-secret"},
    "token": {"token", "bearer-token", "api-key", "jwt", "config-secret"},
    "cookie_or_token": {"cookie", "token", "bearer-token"},
    "email": {"email"},
}


def load_case(name: str) -> dict:
    # copies of /work/shared/corpus/cases/<case>.expect.json
    return json.loads((DATA / f"{name}.expect.json").read_text())


CASES = sorted(p.name.split(".flow")[0] for p in DATA.glob("*.flow0.c2s.bin"))


def stream(case: str, flow: int, direction: str) -> bytes:
    return (DATA / f"{case}.flow{flow}.{direction}.bin").read_bytes()


def values(findings: list[Secret]) -> set[str]:
    return {f.value for f in findings}


def test_every_case_of_the_corpus_has_its_streams():
    assert len(CASES) == 10
    for case in CASES:
        expect = load_case(case)
        for flow, _ in enumerate(expect["tcp_flows"]):
            for direction in ("c2s", "s2c"):
                assert (DATA / f"{case}.flow{flow}.{direction}.bin").exists()


@pytest.mark.parametrize("case", CASES)
def test_stream_files_are_the_reassembled_streams(case):
    expect = load_case(case)
    for flow, facts in enumerate(expect["tcp_flows"]):
        for direction in ("c2s", "s2c"):
            digest = hashlib.sha256(stream(case, flow, direction)).hexdigest()
            assert digest == facts["stream_sha256"][direction], (case, flow, direction)


@pytest.mark.parametrize("case", CASES)
def test_corpus_must_find(case):
    expect = load_case(case)
    for wanted in expect["secrets"].get("must_find", []):
        findings = find_secrets(stream(case, wanted["flow"], wanted["direction"]))
        accepted = {wanted["value"], wanted.get("wire_form"), wanted.get("digits")} - {None}
        matches = [f for f in findings if f.value in accepted]
        assert matches, f"{case}: {wanted['value']!r} not in {sorted(values(findings))}"
        finding = matches[0]
        assert finding.kind in KINDS[wanted["kind"]], (case, finding)
        if "context" in wanted:
            assert finding.context == wanted["context"], (case, finding)
        if "username" in wanted:
            assert finding.username == wanted["username"], (case, finding)


@pytest.mark.parametrize("case", CASES)
def test_corpus_must_not_find(case):
    expect = load_case(case)
    every = []
    texts = []
    for flow, _ in enumerate(expect["tcp_flows"]):
        for direction in ("c2s", "s2c"):
            data = stream(case, flow, direction)
            every.extend(find_secrets(data))
            texts.extend(text for _, text in readable_runs(data))
    for unwanted in expect["secrets"].get("must_not_find", []):
        value = unwanted["value"]
        if unwanted.get("match") == "exact":
            assert value not in values(every), (case, value)
        else:
            assert not any(value in f.value for f in every), (case, value)
        if unwanted["scope"] in ("anywhere", "stream_and_findings"):
            assert not any(value in text for text in texts), (case, value)


def test_sni_host_name_is_not_a_finding():
    # tls-ch-split-tcp carries video.example.com in its ClientHello, readable bytes
    hello = stream("tls-ch-split-tcp", 0, "c2s")
    assert b"video.example.com" in hello
    assert all("video.example.com" not in f.value for f in find_secrets(hello))


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("tls-")])
def test_tls_handshakes_carry_no_secret(case):
    # certificates and hellos are readable but hold nothing of the kinds we report;
    # the flow-1 streams of tls-8081-plain-443 are the plaintext ones
    for direction in ("c2s", "s2c"):
        assert find_secrets(stream(case, 0, direction)) == []


def test_optional_finds_of_the_partial_record_are_absent_from_complete_records():
    # pcap-truncated-data has its emails only in the cut record, which tshark drops
    assert stream("pcap-truncated-data", 0, "s2c") == b""
    assert find_secrets(stream("pcap-truncated-data", 0, "s2c")) == []


def test_offsets_point_at_the_wire_form():
    for path in sorted(DATA.glob("*.bin")):
        data = path.read_bytes()
        text = data.decode("latin-1")
        for finding in find_secrets(data):
            start, end = finding.span
            assert 0 <= start < end <= len(data), (path.name, finding)
            if finding.kind not in ("basic-auth",) and finding.context not in (
                    "AUTH PLAIN", "AUTH LOGIN") and "%" not in text[start:end]:
                assert text[start:end] == finding.value, (path.name, finding)


# --- peer captures with labelled credentials -------------------------------------

PEERS = json.loads((DATA / "peers.json").read_text())


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_peer_streams_are_the_recorded_ones(peer):
    for direction in ("c2s", "s2c"):
        data = (DATA / f"{peer}.{direction}.bin").read_bytes()
        assert hashlib.sha256(data).hexdigest() == PEERS[peer]["sha256"][direction]


@pytest.mark.parametrize("peer", sorted(
    p for p in PEERS if (PEERS[p]["flow"].get("credentials") or {}).get("password")))
def test_peer_credentials_are_found(peer):
    credentials = PEERS[peer]["flow"]["credentials"]
    findings = find_secrets((DATA / f"{peer}.c2s.bin").read_bytes())
    matches = [f for f in findings if f.value == credentials["password"]]
    assert matches, (peer, findings)
    assert matches[0].username == credentials["username"]


def test_peer_http_basic_auth_without_label_is_decoded():
    # nDPI flags the credentials of ndpi__http_auth but does not print them
    findings = find_secrets((DATA / "ndpi__http_auth.c2s.bin").read_bytes())
    basic = [f for f in findings if f.kind == "basic-auth"]
    assert [(f.username, f.value) for f in basic] == [("test", "fail2")]


def test_peer_cookie_is_found():
    findings = find_secrets((DATA / "suricata__base64-issue-5223.c2s.bin").read_bytes())
    cookies = [f for f in findings if f.kind == "cookie"]
    assert [f.context for f in cookies] == ["Cookie: foobar"]
    assert cookies[0].value.startswith("np%2BA%2B")


def test_pop3_pass_is_labelled_pop3():
    findings = find_secrets((DATA / "ndpi__pop3.c2s.bin").read_bytes())
    assert [f.context for f in findings if f.kind == "password"] == ["POP3 PASS"]


# --- excerpts of the real Flink lab captures (captures/README.md) -----------------------

LAB = json.loads((DATA / "lab.json").read_text())


def injected_literals(excerpt: dict) -> set[str]:
    """The injected values a scanner should report: the part after `password=`, no names."""
    wanted = set()
    for value in excerpt["injected_present"]:
        if value.startswith("password="):
            value = value.split("=", 1)[1]
        if " " not in value:  # the person names are readable, but no secret kind
            wanted.add(value)
    return wanted


@pytest.mark.parametrize("name", sorted(LAB))
def test_lab_excerpts_are_the_recorded_ones(name):
    data = (DATA / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == LAB[name]["sha256"]


@pytest.mark.parametrize("name", sorted(LAB))
def test_lab_excerpt_findings_are_exactly_the_injected_values(name):
    # both ways: every injected value in the excerpt is found, and nothing else is
    found = values(find_secrets((DATA / name).read_bytes()))
    assert found == injected_literals(LAB[name])


def test_lab_rpc_deployment_reads_the_serialized_config():
    name = next(n for n in LAB if n.startswith("lab-s1-") and "jobmanager-rpc.s2c" in n)
    findings = {f.value: f for f in find_secrets((DATA / name).read_bytes())}
    assert findings["fake-s3-secret-key-Qm9vLzEyMw"].context == "key s3.secret-key"
    assert findings["AKIAFAKEEXAMPLE0LAB01"].context == "key s3.access-key"
    assert findings["s3cr3t-fake-db-pass-7Q2x"].kind == "password"
    assert findings["tok_live_fake_jobparam_9Zy8Xw7V"].context == "key payments.api-key"


def test_lab_rest_masks_differ_by_version():
    # /jobs/<id>/config: 2.3 masks payments.api-key, 1.20 has no "api-key" substring yet
    new = next(n for n in LAB if n.startswith("lab-s1-") and n.endswith("-17-rest.s2c.0.bin"))
    old = next(n for n in LAB if n.startswith("lab-s6-") and n.endswith("-17-rest.s2c.0.bin"))
    assert b"******" in (DATA / new).read_bytes()
    assert "tok_live_fake_jobparam_9Zy8Xw7V" not in values(find_secrets((DATA / new).read_bytes()))
    assert "tok_live_fake_jobparam_9Zy8Xw7V" in values(find_secrets((DATA / old).read_bytes()))


# --- readable runs -------------------------------------------------------------------


def test_readable_runs_of_a_binary_frame():
    data = b"\x00\x00\x00\x24\x00\x80" + b"\x00" * 7 + b"\x1bbravo password=hunter2 two\xff\x01ab"
    runs = readable_runs(data)
    assert runs == [(14, "bravo password=hunter2 two")]
    offset, text = runs[0]
    assert data[offset:offset + len(text)].decode() == text


def test_readable_runs_min_len_and_whitespace():
    data = b"short\x00tab\there\r\nline\x01x"
    assert readable_runs(data, min_len=5) == [(0, "short"), (6, "tab\there\r\nline")]
    assert readable_runs(data, min_len=100) == []


def test_readable_runs_split_long_runs_and_keep_every_byte():
    data = (b"word " * 1000) + b"\x00" + b"y" * 2000
    runs = readable_runs(data)
    assert all(384 <= len(text) <= 640 for _, text in runs[:-1])
    assert "".join(text for _, text in runs) == (data[:5000] + data[5001:]).decode()
    for offset, text in runs:
        assert data[offset:offset + len(text)].decode() == text
    # the prose run was cut after a space, not inside a word
    assert runs[0][1].endswith(" ")


def test_readable_runs_max_runs_and_non_bytes():
    data = b"abcdefgh\x00" * 100
    assert len(readable_runs(data, max_runs=7)) == 7
    assert readable_runs(bytearray(b"abcdefghij")) == [(0, "abcdefghij")]
    assert readable_runs("not bytes") == []  # type: ignore[arg-type]
    assert readable_runs(b"") == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=-3, max_value=40))
def test_readable_runs_invariants(data, min_len):
    previous_end = -1
    for offset, text in readable_runs(data, min_len=min_len):
        assert offset > previous_end - 1
        assert data[offset:offset + len(text)] == text.encode("ascii")
        assert all(c in "\t\r\n" or " " <= c <= "~" for c in text)
        previous_end = offset + len(text)


# --- key = value in its many notations -----------------------------------------------


def only(data: bytes, kind: str | None = None) -> Secret:
    findings = [f for f in find_secrets(data) if kind is None or f.kind == kind]
    assert len(findings) == 1, findings
    return findings[0]


@pytest.mark.parametrize("data, value, context", [
    (b"user=bob&password=hunter2&x=1", "hunter2", "password="),
    (b"passwd: s3cr3t-value\n", "s3cr3t-value", "passwd:"),
    (b"login pwd=abc123XYZ;", "abc123XYZ", "pwd="),
    (b'{"password": "p@ss \\"quoted\\" w"}', 'p@ss "quoted" w', '"password":'),
    (b"{'password':'single'}", "single", "password:"),
    (b"db_password = 'tiger'\n", "tiger", "db_password="),
    (b"--password=cli-secret ", "cli-secret", "password="),
])
def test_password_notations(data, value, context):
    finding = only(data)
    assert (finding.kind, finding.value, finding.context) == ("password", value, context)


def test_flat_config_key_yaml_line():
    data = b"rest.port: 8081\nsecurity.ssl.internal.keystore-password: ks-Pa55word # set by ops\n"
    finding = only(data)
    assert finding.kind == "password"
    assert finding.value == "ks-Pa55word"
    assert finding.context == "key security.ssl.internal.keystore-password"
    assert data[finding.offset:finding.end] == b"ks-Pa55word"


@pytest.mark.parametrize("key", [
    "fs.azure.account.key.acct.blob.core.windows.net", "metrics.reporter.dd.apikey",
    "security.kerberos.login.jaas.config.extra", "s3.secret-key", "gs.auth-params",
    "pipeline.global-job-parameters.basic-auth", "kafka.service-key", "otel.http-headers",
    "metrics.reporter.x.api-key",
])
def test_every_flink_sensitive_substring_is_a_config_secret(key):
    data = f"{key}: VALUE-{len(key)}-xyz\n".encode()
    finding = only(data)
    assert finding.value == f"VALUE-{len(key)}-xyz"
    assert finding.kind in ("config-secret", "password", "api-key")
    assert finding.context == f"key {key}"


def test_custom_sensitive_keys_replace_the_default():
    data = b"my.vault.cred: abcdef123\nsecurity.ssl.key-password: qwerty123\n"
    assert values(find_secrets(data, sensitive_keys=("cred",))) == {"abcdef123", "qwerty123"}
    assert values(find_secrets(data)) == {"qwerty123"}


def test_jvm_dynamic_property():
    finding = only(b"java -Dsecurity.ssl.rest.truststore-password=TrustMe99 -jar x.jar")
    assert finding.value == "TrustMe99"
    assert finding.context == "key security.ssl.rest.truststore-password"


def test_flink_mask_and_placeholders_are_not_secrets():
    rest = (b'[{"key":"security.ssl.internal.keystore-password","value":"******"},'
            b'{"key":"rest.port","value":"8081"}]')
    assert find_secrets(rest) == []
    for data in (b"password=******", b"password: ${KEYSTORE_PASSWORD}", b'"token": null',
                 b"password=\n", b"security.delegation.tokens.enabled: true",
                 b"token.type: jwt", b'"password": {"nested": 1}'):
        assert find_secrets(data) == [], data


def test_flink_rest_config_listing_unmasked_value():
    rest = b'[{"key":"s3.secret-key","value":"AbCdEf0123456789"}]'
    finding = only(rest)
    assert (finding.kind, finding.value, finding.context) == (
        "config-secret", "AbCdEf0123456789", "key s3.secret-key")


def test_sql_gateway_create_table_options():
    sql = b"CREATE TABLE t (a INT) WITH ('connector'='jdbc', 'password'='jdbc-Secret-1')"
    finding = only(sql)
    assert finding.value == "jdbc-Secret-1"
    assert sql[finding.offset:finding.end] == b"jdbc-Secret-1"


def test_program_arguments_on_a_command_line_and_in_the_rest_run_request():
    cli = b"flink run job.jar --db.password s3cr3t-1 --verbose --password pw-two --x -y"
    assert [(f.value, f.context) for f in find_secrets(cli)] == [
        ("s3cr3t-1", "key db.password"), ("pw-two", "--password")]
    body = b'{"programArgsList": ["--db.password", "s3cr3t-2", "--token", "--next", "x"]}'
    assert [(f.value, f.context) for f in find_secrets(body)] == [("s3cr3t-2", "key db.password")]


def test_access_keys_flink_does_not_mask_are_found():
    data = b"s3.access-key: AKIAFAKEEXAMPLE0LAB01\nfs.s3a.access.key: minio-user\n"
    assert values(find_secrets(data)) == {"AKIAFAKEEXAMPLE0LAB01", "minio-user"}


def test_url_encoded_value_is_decoded_and_span_covers_the_wire_form():
    data = b"username=ops&password=a%21b%20c+d&otp=1"
    finding = only(data)
    assert finding.value == "a!b c d"
    assert data[finding.offset:finding.end] == b"a%21b%20c+d"


def test_prose_mentions_of_passwords_are_not_findings():
    for data in (b"331 Password required for deploy-bot\r\n",
                 b"<input type=\"password\" name=\"pwd\">",
                 b"the current password. Below are listed",
                 b"Your password\nis wrong today",
                 b"GET /password-ok.php HTTP/1.1\r\n"):
        assert find_secrets(data) == [], data


def java_string(text: str) -> bytes:
    raw = text.encode()
    return b"t" + struct.pack(">H", len(raw)) + raw


def string_value(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) + 1 < 0x80
    return bytes([len(raw) + 1]) + raw


def test_java_serialized_map_entry():
    # HashMap<String, String> entry as ObjectOutputStream writes it: TC_STRING key, TC_STRING value
    data = (b"\xac\xed\x00\x05sr\x00\x11java.util.HashMap" + b"\x00" * 12 + b"w\x08\x00\x00\x00\x10"
            + java_string("rest.port") + java_string("8081")
            + java_string("security.ssl.internal.keystore-password") + java_string("hunter2")
            + b"x")
    finding = only(data)
    assert finding.value == "hunter2"
    assert finding.context == "key security.ssl.internal.keystore-password"
    assert data[finding.offset:finding.end] == b"hunter2"


def test_flink_configuration_write_format():
    # Configuration.write: StringValue key, type byte 0 (String), StringValue value
    data = (b"\x00\x00\x00\x02" + string_value("taskmanager.numberOfTaskSlots") + b"\x01"
            + b"\x00\x00\x00\x04" + string_value("s3.secret-key") + b"\x00"
            + string_value("wJalrXUtnFEMI-K7MDENG") + string_value("x"))
    finding = only(data)
    assert finding.value == "wJalrXUtnFEMI-K7MDENG"
    assert finding.context == "key s3.secret-key"


def test_string_value_of_127_chars_and_more_after_a_key():
    # The length of a value of 127+ chars takes two varint bytes (161 + 1 = A2 01).
    value = "K" + "x7Qp" * 40
    head = b"\x00\x00\x01\x50\x01" + flink_string_value("password")
    data = head + flink_string_value(value) + flink_string_value("next")
    assert data[len(head):len(head) + 2] == b"\xa2\x01"
    finding = only(data)
    assert (finding.value, finding.context) == (value, "key password")
    assert finding.span == (len(head) + 2, len(head) + 2 + len(value))


def test_string_value_with_chars_past_ascii_after_a_key():
    # ä is E4 01 on the wire: the value is decoded, the span covers every byte of it.
    value = "Pässwort-Geheim-42"
    head = b"\x00\x00\x00\x20\x01" + flink_string_value("password")
    encoded = flink_string_value(value)
    data = head + encoded + flink_string_value("next")
    assert b"\xe4\x01" in encoded
    finding = only(data)
    assert (finding.value, finding.context) == (value, "key password")
    assert finding.span == (len(head) + 1, len(head) + len(encoded))
    for value in ("中文-Geheimnis-€", "emoji-\U0001f600-pw"):
        assert values(find_secrets(flink_string_value("db.password")
                                   + flink_string_value(value))) == {value}


def test_string_value_of_every_length_after_a_key():
    # Whatever byte the value's length is (a letter or digit joining the key's run,
    # `=` or `:` reading as a separator, a blank), the key's own length says where it ends.
    head = flink_string_value("s3.secret-key")
    for length in range(1, 600):
        value = ("Kx7Q-p" * 100)[:length]
        data = head + flink_string_value(value) + b"\x00\x00\x00\x07"
        found = [(s.value, s.span) for s in find_secrets(data)]
        if length > 512:   # past MAX_VALUE: not read
            continue
        start = len(head) + (1 if length < 127 else 2)
        assert found == [(value, (start, start + length))], length
        config = head + b"\x00" + flink_string_value(value)   # Configuration.write type byte
        assert values(find_secrets(config)) == {value}, length


def test_hostile_string_value_lengths_after_a_key():
    key = flink_string_value("password")
    for prefix in (b"\xff\xff\xff\xff\x07", b"\x80\x80\x80\x80\x80\x80",
                   b"\x80\x02", b"\x03\xbd\xb0\x03zz"):
        assert find_secrets(key + prefix + b"hunter2-hunter2") == []
    assert find_secrets(key + b"\x04ab\xe4") == []    # a char cut by the end


def test_write_utf_pair():
    data = (struct.pack(">H", 12) + b"api.password" + struct.pack(">H", 9) + b"Utf-Pass1"
            + b"\x00\x00")
    finding = only(data)
    assert (finding.value, finding.context) == ("Utf-Pass1", "key api.password")


def test_class_descriptor_fields_are_not_map_entries():
    # ObjectStreamClass field: type code, writeUTF name, TC_STRING type signature
    data = (b"sr\x00\x10RemoteFencedMsg" + b"\x00" * 8 + b"\x02\x00\x02"
            + b"L\x00\x0cfencingToken" + java_string("Ljava/io/Serializable;")
            + b"[\x00\x0dinitialTokens" + java_string("[B") + b"xp")
    assert find_secrets(data) == []


def test_strings_cut_at_their_declared_length():
    # the `t` of the next TC_STRING must not become part of an e-mail or a token
    data = (java_string("ops.contact") + java_string("oncall-fake@example.net")
            + java_string("note") + java_string("tok_live_fake_jobparam_9Zy8Xw7V")
            + java_string("x"))
    assert sorted(values(find_secrets(data))) == [
        "oncall-fake@example.net", "tok_live_fake_jobparam_9Zy8Xw7V"]


def test_a_serialized_value_containing_a_keyword_is_not_a_key():
    data = (java_string("db.password") + java_string("my-pass-word")
            + java_string("records.delay-ms") + java_string("100"))
    assert [(f.value, f.context) for f in find_secrets(data)] == [
        ("my-pass-word", "key db.password")]


def test_data_plane_record_string():
    # a String record in a DATA_BUFFER, as the Flink lab captured it
    data = (b"\x00\x00\x00\x24\x00" + b"\x80" + b"\x00" * 7 + b"\x1b"
            + b"bravo password=hunter2 two")
    assert only(data).value == "hunter2"


# --- line protocols ---------------------------------------------------------------------


def test_ftp_user_pass_pairs_each_password_with_its_user():
    data = b"USER alice\r\nPASS first-pass\r\nUSER bob\r\nPASS second:pass word\r\nQUIT\r\n"
    findings = find_secrets(data)
    assert [(f.username, f.value, f.context) for f in findings] == [
        ("alice", "first-pass", "FTP PASS"), ("bob", "second:pass word", "FTP PASS")]


def test_imap_login_quoted():
    data = b'a1 CAPABILITY\r\na2 LOGIN "joe user" "p\\"w d"\r\n'
    finding = only(data, "password")
    assert (finding.username, finding.value, finding.context) == ("joe user", 'p"w d', "IMAP LOGIN")


def test_auth_plain_inline_and_on_next_line():
    import base64
    blob = base64.b64encode(b"\x00mailuser\x00Plain-Pass-1").decode()
    for data in (f"AUTH PLAIN {blob}\r\n".encode(),
                 f"a3 AUTHENTICATE PLAIN\r\n{blob}\r\n".encode()):
        finding = only(data)
        assert (finding.username, finding.value, finding.context) == (
            "mailuser", "Plain-Pass-1", "AUTH PLAIN")
        assert data[finding.offset:finding.end].decode() == blob


def test_auth_login_two_lines():
    data = b"EHLO x\r\nAUTH LOGIN\r\ndXNlcg==\r\nc2VjcmV0LTEyMw==\r\nMAIL FROM:<a@b.cd>\r\n"
    finding = only(data, "password")
    assert (finding.username, finding.value, finding.context) == (
        "user", "secret-123", "AUTH LOGIN")


def test_url_userinfo():
    data = (b"jdbc:postgresql://db.example.com/shop "
            b"url=postgresql://app:p%40ss:w0rd@db.example.com:5432/shop "
            b"pekko.tcp://flink@192.0.2.10:6123/user/rpc http://user:****@proxy")
    findings = [f for f in find_secrets(data) if f.kind == "password"]
    assert [(f.username, f.value, f.context) for f in findings] == [
        ("app", "p@ss:w0rd", "postgresql:// user:password")]
    assert data[findings[0].offset:findings[0].end] == b"p%40ss:w0rd"


def test_zookeeper_digest_auth_packet():
    blob = b"flink-ha:zk-Secret-9"
    packet = (b"\x00\x00\x00\x2e\xff\xff\xff\xfc\x00\x00\x00\x64\x00\x00\x00\x00"
              b"\x00\x00\x00\x06digest" + len(blob).to_bytes(4, "big") + blob)
    finding = only(packet)
    assert (finding.username, finding.value, finding.context) == (
        "flink-ha", "zk-Secret-9", "ZooKeeper digest auth")
    assert packet[finding.offset:finding.end] == b"zk-Secret-9"
    # a cut packet or a length beyond the data is not read
    assert find_secrets(packet[:-3]) == []


# --- HTTP -------------------------------------------------------------------------------


def test_basic_auth_keeps_colons_in_the_password():
    import base64
    blob = base64.b64encode(b"svc:pa:ss:word").decode()
    data = f"GET / HTTP/1.1\r\nAuthorization: Basic {blob}\r\n\r\n".encode()
    finding = only(data)
    assert (finding.kind, finding.username, finding.value) == ("basic-auth", "svc", "pa:ss:word")
    assert finding.context == "Authorization: Basic"
    assert data[finding.offset:finding.end].decode() == blob


def test_basic_auth_that_is_not_base64_is_reported_raw():
    finding = only(b"Authorization: Basic !!notb64!!\r\n")
    assert (finding.kind, finding.value, finding.username) == ("basic-auth", "!!notb64!!", None)


def test_bearer_kinds_follow_the_token_shape():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXZhbHVl"
    data = (b"Authorization: Bearer opaque-0123456789\r\n"
            b"Proxy-Authorization: Bearer " + jwt.encode() + b"\r\n")
    findings = find_secrets(data)
    assert [(f.kind, f.value, f.context) for f in findings] == [
        ("bearer-token", "opaque-0123456789", "Authorization: Bearer"),
        ("jwt", jwt, "Proxy-Authorization: Bearer"),
    ]


def test_cookies_and_set_cookie():
    data = (b"Cookie: JSESSIONID=ABCDEF0123; _ga=GA1.2.3; theme=dark\r\n"
            b"Set-Cookie: sid=s%3Aabc.def; Path=/; HttpOnly\r\n")
    findings = find_secrets(data)
    assert [(f.context, f.value) for f in findings] == [
        ("Cookie: JSESSIONID", "ABCDEF0123"), ("Cookie: theme", "dark"),
        ("Set-Cookie: sid", "s%3Aabc.def")]
    for finding in findings:
        assert data[finding.offset:finding.end].decode() == finding.value


def test_api_key_header():
    finding = only(b"X-Api-Key: 9f8e7d6c5b4a\r\n")
    assert (finding.kind, finding.value, finding.context) == (
        "api-key", "9f8e7d6c5b4a", "X-Api-Key:")


# --- shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("token", [
    "tok_abcdef123456", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "xoxb-123456789012-abcdefABCDEF", "xoxp-1234-5678-abcdef", "key_test_ns_0c2f7d19e4",
])
def test_prefixed_tokens(token):
    data = f"payload ({token}) end".encode()
    finding = only(data)
    assert (finding.kind, finding.value) == ("token", token)
    assert data[finding.offset:finding.end].decode() == token


def test_prefixed_token_inside_a_word_is_not_a_token():
    assert find_secrets(b"mytok_abcdef123456 xtok_abcdefgh") == []


def test_aws_access_key_id():
    finding = only(b"aws_access_key_id=AKIAIOSFODNN7EXAMPLE\n")
    assert (finding.kind, finding.value) == ("aws-access-key", "AKIAIOSFODNN7EXAMPLE")
    assert find_secrets(b"XAKIAIOSFODNN7EXAMPLE") == []
    assert find_secrets(b"AKIAIOSFODNN7EXAMPLE1") == []


def test_jwt_standing_alone():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJmbGluayJ9.AbC-dEf_123"
    finding = only(f'{{"jwt_in_body": 1, "x": "{jwt}"}}'.encode())
    assert (finding.kind, finding.value) == ("jwt", jwt)


def test_pem_private_key_whole_and_cut():
    block = (b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n"
             b"-----END RSA PRIVATE KEY-----")
    finding = only(b"junk\n" + block + b"\ntrailer")
    assert (finding.kind, finding.value) == ("private-key", block.decode())
    cut = only(b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg")
    assert cut.kind == "private-key" and cut.value.endswith("MIIEvQIBADANBg")
    assert find_secrets(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----") == []


# --- e-mail addresses ---------------------------------------------------------------------


@pytest.mark.parametrize("data, expected", [
    (b"owner ivan@example.com.", ["ivan@example.com"]),
    (b'"owner":"fiona.ops@example.net"', ["fiona.ops@example.net"]),
    (b"mailto:a.b+tag@mail.example.org>", ["a.b+tag@mail.example.org"]),
    (b"pekko.tcp://flink@jobmanager.default.svc:6123/user/rpc", []),
    (b"akka.tcp://flink@127.0.0.1:6123", []),
    (b"NcFTP@ anonymous", []),
    (b"x@localhost", []),
    (b"a..b@example.com", []),
    (b"user@bad-.example.com", []),
    (b"\x91w@7.RjH\x03", []),
    (b"OPS@EXAMPLE.COM", ["OPS@EXAMPLE.COM"]),
])
def test_emails(data, expected):
    assert [f.value for f in find_secrets(data) if f.kind == "email"] == expected


# --- card numbers ----------------------------------------------------------------------------


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("")
    assert not luhn_valid("4111-1111")
    # Arabic-Indic digits pass str.isdigit() but are not ASCII digits
    assert not luhn_valid("٤١١١١١١١١١١١١١١١")


@pytest.mark.parametrize("data, digits", [
    (b"card 4111111111111111 exp", "4111111111111111"),
    (b"card=6011111111111117;seq=1", "6011111111111117"),
    (b"4111 1111 1111 1111 110", "4111111111111111110"),
    (b"card=4111-1111-1111-1111;", "4111111111111111"),
    (b"amex 3782 822463 10005.", "378282246310005"),
    (b"[5555 5555 5555 4444]", "5555555555554444"),
    (b"4111111111111111", "4111111111111111"),
])
def test_cards_standing_alone(data, digits):
    finding = only(data)
    assert (finding.kind, finding.value) == ("card-number", digits)
    assert data[finding.offset:finding.end].replace(b" ", b"").replace(b"-", b"") == digits.encode()


@pytest.mark.parametrize("data", [
    b"41111111111111119",  # a valid card plus a digit: one longer number
    b"94111111111111111",
    b"id 123-4111111111111111",
    b"4111111111111111-7",
    b"3.4111111111111111",
    b"4111111111111111.5",
    b"deadbeef4111111111111111",
    b"4111111111111111abc",
    b"order_4111111111111111",
    b"4111111111111112",  # Luhn fails
    b"4111 1111 1111 1112",
    b"1767225600123456789",  # a nanosecond timestamp: no card starts with 1
    b"0000000000000000",
    b"4111-1111-11111111",  # dashes not in card groups
    b"2024-01-15 4111",
    b"seq=4611686018427387942;",  # a Java long near 2**62 that passes Luhn
    b"4111111111111111110",  # 19 digits, Luhn-valid, but ungrouped
])
def test_not_cards(data):
    assert [f for f in find_secrets(data) if f.kind == "card-number"] == []


def test_list_of_cards_separated_by_spaces():
    data = b"4111 1111 1111 1111 5555 5555 5555 4444 12 25"
    assert [f.value for f in find_secrets(data)] == ["4111111111111111", "5555555555554444"]


# --- the whole ----------------------------------------------------------------------------------


def test_findings_are_sorted_deterministic_and_deduplicated():
    data = (b"api_key=tok_abcdef123456 Cookie-less\r\nAuthorization: Bearer tok_abcdef123456\r\n"
            b"ivan@example.com 4111111111111111")
    first = find_secrets(data)
    assert first == find_secrets(data)
    assert [f.offset for f in first] == sorted(f.offset for f in first)
    assert len({f.span for f in first}) == len(first)
    token = [f for f in first if f.offset == 8]
    assert len(token) == 1 and token[0].context == "api_key="


def test_max_findings():
    data = b"".join(b"u%d@example.com " % i for i in range(500))
    assert len(find_secrets(data, max_findings=50)) == 50
    assert len(find_secrets(data)) == 500
    assert find_secrets(data, max_findings=0) == []


def test_never_raises_on_odd_arguments():
    assert find_secrets(None) == []  # type: ignore[arg-type]
    assert find_secrets("password=x") == []  # type: ignore[arg-type]
    assert find_secrets(memoryview(b"password=abcdef"))[0].value == "abcdef"
    assert find_secrets(b"password=abcdef", sensitive_keys="password")[0].value == "abcdef"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise_and_offsets_are_in_range(data):
    for finding in find_secrets(data):
        start, end = finding.span
        assert 0 <= start < end <= len(data)
        assert finding.kind in {
            "password", "token", "api-key", "bearer-token", "basic-auth", "cookie",
            "card-number", "email", "private-key", "aws-access-key", "jwt", "config-secret"}


KEYWORDS = [b"password", b"=", b":", b'"', b"'", b"\x00", b"t", b"\x07", b"USER ", b"PASS ",
            b"\r\n", b"@", b".", b"example.com", b"4111", b" ", b"-", b"eyJ", b"tok_",
            b"Authorization: Basic ", b"Cookie: ", b"AKIA", b"LOGIN ", b"AUTH PLAIN "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(KEYWORDS) | st.binary(max_size=6), max_size=80))
def test_keyword_soup_never_raises(pieces):
    data = b"".join(pieces)
    for finding in find_secrets(data):
        assert 0 <= finding.span[0] < finding.span[1] <= len(data)


# --- adversarial input: linear time --------------------------------------------------------------

ADVERSARIAL = {
    "at-signs": b"a@" * (2 * 1024 * 1024),
    "password=": b"password=" * (4 * 1024 * 1024 // 9),
    "password= spaced": b"password= " * (4 * 1024 * 1024 // 10),
    "pwd=${": b"pwd=${" * (4 * 1024 * 1024 // 6),
    "passpass": b"pass" * (1024 * 1024),
    "digits": b"4" * (4 * 1024 * 1024),
    "digit groups": b"4111 " * (4 * 1024 * 1024 // 5),
    "dashed digits": b"1-" * (2 * 1024 * 1024),
    "eyJ": b"eyJ" * (4 * 1024 * 1024 // 3),
    "eyJ chain": b"eyJab." * (4 * 1024 * 1024 // 6),
    "local parts": b"a.b" * (4 * 1024 * 1024 // 3) + b"@",
    "domains": b"x@" + b"a." * (2 * 1024 * 1024),
    "binary keys": (b"\x00\x08password" + b"\x00\x10") * (4 * 1024 * 1024 // 12),
    "pem begins": b"-----BEGIN RSA PRIVATE KEY-----" * (4 * 1024 * 1024 // 31),
    "header lines": b"Authorization: Basic " * (4 * 1024 * 1024 // 21),
    "cookie line": b"Cookie: " + b"a=b; " * (4 * 1024 * 1024 // 5),
    "user pass": b"USER a\nPASS b\n" * (4 * 1024 * 1024 // 14),
    "quotes": b'"password":"' * (4 * 1024 * 1024 // 12),
    "tokens": b"tok_" * (1024 * 1024),
    "AKIA": b"AKIA" * (1024 * 1024),
    "url userinfo": b"x://u:p" * (4 * 1024 * 1024 // 7),
    "url schemes": b"a://" * (1024 * 1024),
    "zookeeper digest": b"\x00\x00\x00\x06digest" * (4 * 1024 * 1024 // 10),
    "jaas lines": b"jaas.config: password=" * (4 * 1024 * 1024 // 22),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_input_finishes_quickly(name):
    data = ADVERSARIAL[name]
    began = time.perf_counter()
    findings = find_secrets(data)
    runs = readable_runs(data)
    elapsed = time.perf_counter() - began
    assert elapsed < 5.0, f"{name}: {elapsed:.2f} s"
    assert len(findings) <= 10_000 and len(runs) <= 10_000


def write_utf(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


FRAMED_VALUE = "Zm9vYmFyQmF6UXV4UXVva2thWmVicmE3OTEyMw=="


def test_length_prefixed_key_of_every_length():
    # A key's length byte that is a letter, digit, `-`, `.` or `_` (44-122 chars) is taken
    # into the key's identifier run, as is the tail of the value before it (`1024m`); the
    # prefix whose length ends at the key's end says where the key starts.
    before = b"\x00\x00\x00\x02" + flink_string_value("taskmanager.memory") + b"\x00"
    layouts = {
        "configuration": (lambda s: before + flink_string_value("1024m") + flink_string_value(s)
                          + b"\x00" + flink_string_value(FRAMED_VALUE) + b"\x00\x00", 126),
        "string value": (lambda s: before + flink_string_value("1024m") + flink_string_value(s)
                         + flink_string_value(FRAMED_VALUE) + b"\x00\x00", 126),
        "writeUTF": (lambda s: write_utf("1024m") + write_utf(s) + write_utf(FRAMED_VALUE), 128),
        "TC_STRING": (lambda s: java_string("1024m") + java_string(s)
                      + java_string(FRAMED_VALUE) + b"x", 127),  # its `t` runs on: 129
    }
    for name, (layout, longest) in layouts.items():
        for length in range(1, 131):
            key = ("fs.azure.account.key.acct7-x_y" * 5)[:length - 8] + "password"
            data = layout(key[-length:])
            found = [(s.value, s.context, data[s.offset:s.end]) for s in find_secrets(data)]
            if 8 <= length <= longest:
                assert found == [(FRAMED_VALUE, f"key {key}", FRAMED_VALUE.encode())], \
                    (name, length)
            else:
                assert FRAMED_VALUE not in [value for value, _, _ in found], (name, length)


def test_length_prefixed_values_with_tabs_and_line_breaks():
    value = "Quokka7Zebra9Mango3\t3ognaM9arbeZ7akkouQ"
    crlf, newline = value.replace("\t", "\r\n"), value.replace("\t", "\n")
    for data, expected in (
            (flink_string_value("db.password") + flink_string_value(value), value),
            (flink_string_value("db.password") + b"\x00" + flink_string_value(crlf), crlf),
            (write_utf("db.password") + write_utf(value), value),
            (java_string("db.password") + java_string(newline), newline)):
        data = b"\x00\x01" + data + b"\x00"
        finding = only(data)
        assert (finding.value, finding.context) == (expected, "key db.password")
        assert data[finding.offset:finding.end] == expected.encode()
    # Without a length that frames it, text after a tab is no binary value.
    assert find_secrets(b"db.password\tQuokka7Zebra9Mango3\t3ognaM9arbeZ7akkouQ\n") == []


def test_write_utf_values_with_any_utf8_char():
    # ł is C5 82 and € is E2 82 AC: bytes 0x80-0x9F, which no Latin-1 text holds.
    for char in ("\u0142", "\u20ac", "\u00e9"):
        value = f"Quokka7Zebra9Mango3{char}3ognaM9arbeZ7akkouQ"
        for key, framed in ((write_utf("db.password"), write_utf(value)),
                            (java_string("db.password"), java_string(value))):
            data = b"\x00\x01" + key + framed + b"\x00"
            finding = only(data)
            assert finding.value in (value, value.encode().decode("latin-1")), char
            assert data[finding.offset:finding.end] == value.encode(), char
