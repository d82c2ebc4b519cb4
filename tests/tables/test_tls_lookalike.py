"""TLS-shaped bytes inside a plaintext stream must not make the flow TLS.

Found by the breaker (301, 302): a plaintext flow was called TLS, so `check` passed a
plaintext cluster and the flow's secrets were never scanned, when a ClientHello shape
sat past the first byte of the client stream (an uploaded jar, a job's records that
carry network traffic) or three record-header shapes sat in a stream caught
mid-connection. The controls below keep real STARTTLS and real mid-stream TLS as TLS.
"""

import random

import flinkwire
from builders import conversation, pcap_bytes, tcp_packet

SECRET = b'{"password": "hunter2-prod-Secret-77"}'
HELLO_SHAPE = bytes.fromhex("16030100050100000103")      # record + client_hello header


def _analyze(tmp_path, packets, name="x.pcap"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes([bytes(p) for p in packets]))
    return flinkwire.analyze(path, reveal=True)


def _lookalikes(analysis):
    rows = analysis.anomalies
    return list(rows[rows["kind"] == "tls-lookalike"]["detail"])


def _one_way(c2s_chunks, s2c_chunks, client=("192.0.2.11", 41000), server=("192.0.2.10", 6123)):
    """Segments of a connection caught after it opened: no SYN, no FIN."""
    (ci, cp), (si, sp) = client, server
    packets, cseq, sseq = [], 100_000, 900_000
    for chunk in c2s_chunks:
        packets.append(tcp_packet(ci, cp, si, sp, cseq, sseq, "PA", chunk))
        cseq += len(chunk)
    for chunk in s2c_chunks:
        packets.append(tcp_packet(si, sp, ci, cp, sseq, cseq, "PA", chunk))
        sseq += len(chunk)
    return packets


def _chunks(data, size=1400):
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_hello_shape_in_an_upload_leaves_the_flow_plaintext(tmp_path):
    body = b"PK\x03\x04" + bytes(range(256)) * 4 + HELLO_SHAPE + bytes(range(200))
    request = (b"POST /jars/upload HTTP/1.1\r\nHost: jm\r\nContent-Type: application/java-archive"
               b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(SECRET)).encode() + b"\r\n\r\n" + SECRET)
    analysis = _analyze(tmp_path, conversation(c2s=[request], s2c=[response]))
    flow = analysis.flows.iloc[0]
    assert (flow.verdict, flow.starttls_offset) == ("plaintext", None)
    assert analysis.tls.empty
    [detail] = _lookalikes(analysis)
    at = request.index(HELLO_SHAPE)
    assert detail == (f"TLS records from offset {at} in c2s, but they stop at offset {at + 10}: "
                      "read as plaintext")
    # The server's reply is scanned now: it was cut off as "before its ServerHello".
    assert "hunter2-prod-Secret-77" in set(analysis.findings["value"])


def test_record_shapes_mid_stream_leave_the_flow_plaintext(tmp_path):
    text = b"user=alice@example.com password=hunter2-prod-secret " * 30
    c2s = text + b"\x17\x03\x03\x00\x01X" * 3 + text
    analysis = _analyze(tmp_path, _one_way(_chunks(c2s), [text]))
    flow = analysis.flows.iloc[0]
    assert flow.verdict == "plaintext" and not flow.handshake_seen
    [detail] = _lookalikes(analysis)
    assert detail.endswith("bytes before them are not a record's tail: read as plaintext")
    values = set(analysis.findings["value"])
    assert "hunter2-prod-secret" in values and "alice@example.com" in values


def test_readable_text_before_a_whole_record_chain_is_not_a_record_tail(tmp_path):
    rng = random.Random(7)
    records = b"".join(b"\x17\x03\x03\x01\x00" + rng.randbytes(256) for _ in range(6))
    text = b"password=hunter2-prod-secret user=alice@example.com\n" * 20
    analysis = _analyze(tmp_path, _one_way(_chunks(text + records), _chunks(records)))
    assert analysis.flows.iloc[0].verdict == "plaintext"
    [detail] = _lookalikes(analysis)
    assert f"the {len(text)} bytes before them are not a record's tail" in detail
    assert "hunter2-prod-secret" in set(analysis.findings["value"])


def test_real_mid_stream_tls_stays_tls(tmp_path):
    rng = random.Random(11)

    def stream():
        tail = rng.randbytes(300)                    # the end of a record cut by the capture
        return tail, tail + b"".join(b"\x17\x03\x03\x02\x00" + rng.randbytes(512)
                                     for _ in range(8))

    (c_tail, c2s), (s_tail, s2c) = stream(), stream()
    analysis = _analyze(tmp_path, _one_way(_chunks(c2s), _chunks(s2c)))
    flow = analysis.flows.iloc[0]
    assert flow.verdict == "tls"
    assert _lookalikes(analysis) == []
    assert analysis.tls.iloc[0].application_data_bytes_c2s == 8 * 512


def test_starttls_answered_by_a_server_hello_stays_tls(tmp_path):
    # Only the record and handshake headers matter here: the server's reply opens with a
    # ServerHello shape, as a real STARTTLS server's does after its plaintext go-ahead.
    hello = bytes.fromhex("160301002d010000290303") + bytes(32) + b"\x00\x00\x02\x00\x2f\x01\x00"
    server_hello = (bytes.fromhex("160303002a020000260303") + bytes(32)
                    + b"\x00\x00\x2f\x00")
    c2s = [b"STARTTLS\r\n", hello]
    s2c = [b"220 Go ahead\r\n", server_hello]
    analysis = _analyze(tmp_path, conversation(c2s=c2s, s2c=s2c))
    flow = analysis.flows.iloc[0]
    assert (flow.verdict, flow.starttls_offset) == ("tls", len(c2s[0]))
    assert _lookalikes(analysis) == []


def test_hello_shape_first_then_plaintext_is_plaintext(tmp_path):
    """The breaker's variant: the shape as the stream's first bytes, plaintext after it."""
    request = HELLO_SHAPE + b"\r\nuser=alice password=hunter2-prod-Secret-88\r\n"
    analysis = _analyze(tmp_path, conversation(c2s=[request], s2c=[SECRET]))
    assert analysis.flows.iloc[0].verdict == "plaintext"
    [detail] = _lookalikes(analysis)
    assert detail == "TLS records from offset 0 in c2s, but they stop at offset 10: read as plaintext"
    values = set(analysis.findings["value"])
    assert {"hunter2-prod-Secret-77", "hunter2-prod-Secret-88"} <= values


# --- breaker round 4: shapes in the reply, long records, lone headers, CONNECT ------------

REQUEST = (b"POST /jars/upload HTTP/1.1\r\nHost: jm\r\nContent-Length: 60\r\n\r\n"
           + bytes(20) + HELLO_SHAPE + bytes(30))
SERVER_HELLO_SHAPE = bytes.fromhex("16030300050200000103")


def _reply(middle: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + middle + SECRET


def test_tls_shapes_inside_a_plaintext_reply_do_not_answer_a_hello(tmp_path):
    """Found by the breaker (401): the hello was taken as answered when the plaintext
    reply held a ServerHello shape, a record chain 5 KB in, or opened with one record."""
    replies = {
        "server-hello shape": _reply(bytes(100) + SERVER_HELLO_SHAPE + bytes(100)),
        "chain deep in": _reply(b"x" * 5000 + b"\x17\x03\x03\x00\x02ab" * 3),
        "one record first": b"\x17\x03\x03\x00\x05abcde" + _reply(b""),
    }
    for name, reply in replies.items():
        analysis = _analyze(tmp_path, conversation(c2s=[REQUEST], s2c=[reply]), f"{name}.pcap")
        assert analysis.flows.iloc[0].verdict == "plaintext", name
        assert "hunter2-prod-Secret-77" in set(analysis.findings["value"]), name


def test_a_hello_record_longer_than_the_closed_stream_is_no_tls(tmp_path):
    """Found by the breaker (402): a shape claiming 4,095 bytes covered the plaintext after
    it in a stream that ended (FIN) sooner, with no reply."""
    request = (bytes.fromhex("160301 0fff 01000001 03".replace(" ", ""))
               + b"\r\nGET / HTTP/1.1\r\nAuthorization: Basic YWRtaW46aHVudGVyMi1wcm9k\r\n"
               + b"\r\n" + SECRET)
    analysis = _analyze(tmp_path, conversation(c2s=[request]))
    assert analysis.flows.iloc[0].verdict == "plaintext"
    [detail] = _lookalikes(analysis)
    assert "runs past the end of the closed stream" in detail
    assert "hunter2-prod-Secret-77" in set(analysis.findings["value"])


def test_a_lone_header_or_a_binary_peer_is_no_mid_stream_tls(tmp_path):
    """Found by the breaker (403): one header whose length ran past the end counted as a
    chain; a binary direction holding a secret, beside a chain, was taken for ciphertext."""
    rng = random.Random(3)
    binary = rng.randbytes(1500) + SECRET + rng.randbytes(100)
    lone = binary + b"\x17\x03\x03\x10\x00" + rng.randbytes(400)
    chain = b"".join(b"\x17\x03\x03\x00\x40" + rng.randbytes(64) for _ in range(3))
    for name, c2s, s2c in (("lone", lone, b""), ("peer", chain, binary),
                           ("swapped", binary, chain)):
        analysis = _analyze(tmp_path, _one_way(_chunks(c2s), _chunks(s2c) if s2c else []),
                            f"{name}.pcap")
        assert analysis.flows.iloc[0].verdict != "tls", name
        assert "hunter2-prod-Secret-77" in set(analysis.findings["value"]), name


def test_a_connect_tunnel_that_carries_plaintext_is_plaintext(tmp_path):
    """Found by the breaker (404): three bytes 16 03 01 after CONNECT made the tunnel TLS."""
    c2s = [b"CONNECT jm:8081 HTTP/1.1\r\nHost: jm:8081\r\n\r\n",
           b"\x16\x03\x01GET /config HTTP/1.1\r\nHost: jm\r\n\r\n"]
    s2c = [b"HTTP/1.1 200 Connection established\r\n\r\n", _reply(b"")]
    analysis = _analyze(tmp_path, conversation(c2s=c2s, s2c=s2c))
    assert analysis.flows.iloc[0].verdict == "plaintext"
    assert "hunter2-prod-Secret-77" in set(analysis.findings["value"])


def test_tls_cut_by_the_capture_or_a_hole_stays_tls(tmp_path):
    """Controls: a record cut where the capture stops (no FIN) or at a hole is TLS's own."""
    rng = random.Random(5)

    def stream(count):
        return b"".join(b"\x17\x03\x03\x02\x00" + rng.randbytes(512) for _ in range(count))

    c2s, s2c = stream(6)[:-100], stream(6)                   # the last record cut short
    analysis = _analyze(tmp_path, _one_way(_chunks(c2s), _chunks(s2c)), "cut.pcap")
    assert analysis.flows.iloc[0].verdict == "tls" and _lookalikes(analysis) == []
    packets = _one_way(_chunks(stream(8), 700), _chunks(s2c))
    del packets[3]                                           # a segment never captured
    analysis = _analyze(tmp_path, packets, "hole.pcap")
    assert analysis.flows.iloc[0].verdict == "tls" and _lookalikes(analysis) == []


# --- breaker round 5: hellos that do not parse, text inside records ----------------------


def test_hello_shapes_on_both_sides_then_plaintext_is_plaintext(tmp_path):
    """Found by the breaker (501): a ClientHello shape and a ServerHello shape, each at its
    stream's first byte, made the flow TLS whatever followed."""
    c2s = HELLO_SHAPE + b"GET /jobs HTTP/1.1\r\nHost: jm\r\n\r\n"
    s2c = SERVER_HELLO_SHAPE + b"\x00" + _reply(b"")
    analysis = _analyze(tmp_path, conversation(c2s=[c2s], s2c=[s2c]))
    assert analysis.flows.iloc[0].verdict == "plaintext"
    assert "hunter2-prod-Secret-77" in set(analysis.findings["value"])


def _record(content_type: int, body: bytes) -> bytes:
    return bytes([content_type, 3, 3]) + len(body).to_bytes(2, "big") + body


def test_text_inside_whole_records_is_not_tls(tmp_path):
    """Found by the breaker (502): only record headers were read, so text that filled
    whole records passed: a hello-shaped record as the whole stream, a reply of one
    record of text, records of text mid-stream, four tiny records before plaintext."""
    text = b"GET /jobs HTTP/1.1\r\nAuthorization: Basic YWRtaW46aHVudGVyMg==\r\n\r\n"
    hello_of_text = _record(22, b"\x01\x00\x00\x01\x03 " + text)
    tiny = b"".join(_record(23, b"x") for _ in range(4))
    cases = {
        "hello record of text, no reply": (conversation(c2s=[hello_of_text]), "c2s"),
        "reply one record of text": (conversation(c2s=[hello_of_text],
                                                  s2c=[_record(23, _reply(b""))]), "c2s"),
        "records of text mid-stream": (_one_way([_record(23, text)] * 3,
                                                [_record(23, _reply(b""))] * 3), "c2s"),
        "four tiny records, then text": (conversation(c2s=[HELLO_SHAPE + tiny + text],
                                                      s2c=[_reply(b"")]), "c2s"),
    }
    for name, (packets, _) in cases.items():
        analysis = _analyze(tmp_path, packets, "case.pcap")
        assert analysis.flows.iloc[0].verdict != "tls", name
        assert _lookalikes(analysis), name
