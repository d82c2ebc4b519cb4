"""Deterministic generator of large, Flink-like packet captures for the benchmark.

What it writes: Ethernet / IPv4 / TCP captures (pcap or pcapng) of a made-up Flink 2.x
cluster, one JobManager, eight TaskManagers and a few REST clients. Every flow is a full TCP
connection (SYN, SYN/ACK, ACK, data with delayed ACKs, FIN or RST) of one of these kinds:

- data plane: TaskManager -> TaskManager, a PartitionRequest, then BufferResponse frames
  (`[4B len] BA DC 0F FE 00 ...`) whose DATA_BUFFERs hold length-prefixed ASCII records,
  with AddCredit frames going back;
- Pekko RPC: both sides send an ASSOCIATE frame first, then RemoteEnvelope payload frames
  with actor paths and Java-serialization-looking RPC invocations;
- REST: HTTP/1.1 requests and JSON answers on port 8081, keep-alive, now and then a
  multipart job submission;
- TLS 1.2 (half the flows): ClientHello, ServerHello + Certificate + ServerKeyExchange +
  ServerHelloDone, the client's key exchange and Finished, then application_data records
  whose sizes follow the plaintext channel they stand for.

About 10% of the plaintext flows use port 443 and some TLS flows use random ports, so a
tool that decides TLS by port is wrong on both. About 1% of the data segments are sent
twice (a retransmission a few packets later) and about 1% are swapped with the next one
(reordering). Checksums (IPv4 and TCP) are correct. The average frame is about 480 bytes.

How it stays fast: no per-packet objects. Each flow is built as a short list of
(direction, flags, seq, ack, payload) tuples, at most `--concurrent` flows are open at a
time (interleaved packet by packet), and each packet is written with one precompiled
`struct.Struct.pack` for the IPv4+TCP header. Checksums use the identity that the ones'
complement sum of 16-bit words is the big-endian integer modulo 0xFFFF. About 1 GB/min on
one core.

Scale: flow sizes come from the same distribution at every file size, so a 1 GB capture
has ten times the flows of a 100 MB one but the same number open at once (a longer
recording of the same cluster). 100 MB is about 200,000 packets and 2,000 flows.

Determinism: the same seed, size, format and options give a byte-identical file on any
machine (random.Random, fixed start time, deterministic ECDSA certificates). A manifest
`<file>.json` records packets, flows, TLS flows, bytes and the sha256.

    python benchmarks/generate.py --size 100M --format pcap -o benchmarks/data/flink-100M.pcap
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import struct
import sys
from pathlib import Path

GENERATOR_VERSION = 1
START_TIME_US = 1_767_225_600 * 1_000_000   # 2026-01-01T00:00:00Z
MSS = 1460
SNAPLEN = 262_144
MEAN_FLOW_BYTES = 40_000     # tuned so that 100 MB holds about 2,000 flows

ETH_IPV4 = b"\x08\x00"
IP_TCP = struct.Struct("!BBHHHBBH4s4sHHIIBBHHH")
PCAP_HEADER = struct.Struct("<IHHiIII")
PCAP_RECORD = struct.Struct("<IIII")
PCAPNG_EPB = struct.Struct("<IIIIIII")

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

DATA_DIR = Path(__file__).resolve().parent / "data"


# ---------------------------------------------------------------------------------------
# Small encoders


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def proto_field(number: int, body: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(body)) + body


def flink_string(text: str) -> bytes:
    """Flink's StringValue encoding for ASCII text: varint(len + 1), then the bytes."""
    raw = text.encode("ascii")
    return varint(len(raw) + 1) + raw


def parse_size(text: str) -> int:
    units = {"K": 10**3, "M": 10**6, "G": 10**9}
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


# ---------------------------------------------------------------------------------------
# The cluster: hosts, ports, certificates


class Cluster:
    """Addresses and fixed material shared by all flows of one capture."""

    def __init__(self, rng: random.Random):
        self.jobmanager = "10.20.0.10"
        self.taskmanagers = [f"10.20.0.{11 + i}" for i in range(8)]
        self.rest_clients = [f"10.20.8.{20 + i}" for i in range(4)]
        self.tm_rpc_port = {tm: rng.randint(35000, 45000) for tm in self.taskmanagers}
        self.tm_data_port = {tm: rng.randint(45001, 55000) for tm in self.taskmanagers}
        self.next_ephemeral = {}
        self.job_ids = [rng.randbytes(16).hex() for _ in range(6)]
        self.certificates = make_certificates(rng, [self.jobmanager] + self.taskmanagers)
        self.records = make_record_pool(rng)
        self.rpc_messages = make_rpc_pool(rng, self)

    def ephemeral_port(self, host: str, rng: random.Random) -> int:
        port = self.next_ephemeral.get(host)
        if port is None:
            port = rng.randint(32768, 40000)
        port = port + 1 if port < 60999 else 32768
        self.next_ephemeral[host] = port
        return port


def make_certificates(rng: random.Random, hosts: list[str]) -> dict[str, bytes]:
    """One self-signed ECDSA P-256 certificate (DER) per server, the same for a given seed."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    not_before = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc)
    certificates = {}
    for host in hosts:
        key = ec.derive_private_key(rng.getrandbits(250) + 1, ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "flinkwire benchmark"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"flink-{host}"),
        ])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(rng.getrandbits(63) + 1)
            .not_valid_before(not_before)
            .not_valid_after(not_before + datetime.timedelta(days=730))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        )
        certificate = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
        certificates[host] = certificate.public_bytes(serialization.Encoding.DER)
    return certificates


WORDS = ("order", "user", "amount", "status", "region", "sku", "session", "event", "price",
         "token", "account", "email", "note", "device", "merchant", "country")
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")


def make_record_pool(rng: random.Random) -> list[bytes]:
    """Serialized StreamElements: int32 length, tag, optional timestamp, a Flink string."""
    pool = []
    for index in range(4096):
        fields = [f"id={index:06d}", f"user={rng.choice(NAMES)}"]
        for _ in range(rng.randint(2, 9)):
            word = rng.choice(WORDS)
            if word == "email":
                fields.append(f"email={rng.choice(NAMES)}@example.com")
            elif word == "token" and rng.random() < 0.3:
                fields.append(f"password=hunter{rng.randint(0, 999)}")
            elif word == "account" and rng.random() < 0.3:
                fields.append("card=4111111111111111")
            else:
                fields.append(f"{word}={rng.randint(0, 10**rng.randint(1, 9))}")
        body = flink_string(" ".join(fields))
        if rng.random() < 0.5:
            element = b"\x00" + struct.pack("!q", 1_767_225_600_000 + index * 37) + body
        else:
            element = b"\x01" + body
        pool.append(struct.pack("!I", len(element)) + element)
    return pool


RPC_CALLS = (("TaskExecutorGateway", "submitTask"), ("TaskExecutorGateway", "requestSlot"),
             ("TaskExecutorGateway", "freeSlot"), ("JobMasterGateway", "updateTaskExecutionState"),
             ("JobMasterGateway", "offerSlots"), ("JobMasterGateway", "heartbeatFromTaskManager"),
             ("ResourceManagerGateway", "sendSlotReport"),
             ("ResourceManagerGateway", "heartbeatFromTaskManager"),
             ("CheckpointCoordinatorGateway", "acknowledgeCheckpoint"))


def java_class_desc(name: str) -> bytes:
    raw = name.encode()
    return b"\x73\x72" + struct.pack("!H", len(raw)) + raw


def make_rpc_pool(rng: random.Random, cluster: Cluster) -> list[bytes]:
    """SerializedMessage bodies that look like Flink's RemoteRpcInvocation streams."""
    pool = []
    for _ in range(256):
        gateway, method = rng.choice(RPC_CALLS)
        inner = (b"\xac\xed\x00\x05" + java_class_desc(
            "org.apache.flink.runtime.rpc.messages.RemoteRpcInvocation$MethodInvocation")
            + b"\x77" + bytes([min(255, 4 + len(gateway) + len(method) + 4)])
            + struct.pack("!H", len(gateway)) + gateway.encode()
            + struct.pack("!H", len(method)) + method.encode()
            + struct.pack("!I", rng.randint(0, 4)))
        job = rng.choice(cluster.job_ids)
        filler = (f"job {job} attempt {rng.randint(0, 9)} vertex "
                  f"{rng.randbytes(8).hex()} state RUNNING host "
                  f"{rng.choice(cluster.taskmanagers)}").encode()
        inner += filler + rng.randbytes(rng.randint(16, 1200))
        outer = (b"\xac\xed\x00\x05"
                 + java_class_desc("org.apache.flink.runtime.rpc.messages.RemoteRpcInvocation")
                 + b"\x7a" + struct.pack("!I", len(inner)) + inner)
        pool.append(proto_field(1, outer) + b"\x10\x01")
    return pool


# ---------------------------------------------------------------------------------------
# Application messages per flow kind: lists of (from_client, payload)


def data_plane_messages(rng, cluster, budget):
    receiver = rng.randbytes(16)
    request = (b"\xba\xdc\x0f\xfe\x02" + rng.randbytes(20) + rng.randbytes(40)
               + struct.pack("!ii", 0, 0) + receiver + struct.pack("!i", 2))
    messages = [(True, struct.pack("!I", len(request) + 4) + request)]
    records = cluster.records
    sequence = 0
    sent = 0
    while sent < budget:
        count = min(400, max(1, int(rng.lognormvariate(1.6, 1.1))))
        payload = b"".join(rng.choices(records, k=count))
        header = (b"\xba\xdc\x0f\xfe\x00" + receiver
                  + struct.pack("!iiiiBBi", 0, 0, sequence, rng.randint(0, 4), 1, 0,
                                len(payload)))
        frame = struct.pack("!I", len(header) + 4 + len(payload)) + header + payload
        messages.append((False, frame))
        sent += len(frame)
        sequence += 1
        if sequence % 4 == 0:
            credit = b"\xba\xdc\x0f\xfe\x06" + struct.pack("!i", 2) + receiver
            messages.append((True, struct.pack("!I", len(credit) + 4) + credit))
    return messages


def associate(host: str, port: int, uid: bytes) -> bytes:
    address = (proto_field(1, b"flink") + proto_field(2, host.encode())
               + b"\x18" + varint(port) + proto_field(4, b"tcp"))
    handshake = proto_field(1, address) + b"\x11" + uid
    control = b"\x08\x01" + proto_field(2, handshake)
    message = proto_field(2, control)
    return struct.pack("!I", len(message)) + message


def rpc_messages(rng, cluster, budget, client, server):
    client_uid = rng.randbytes(4) + b"\xff\xff\xff\xff"
    server_uid = rng.randbytes(4) + b"\xff\xff\xff\xff"
    messages = [(True, associate(client[0], client[1], client_uid)),
                (False, associate(server[0], server[1], server_uid))]
    endpoint = "resourcemanager_0" if server[0] == cluster.jobmanager else "taskmanager_0"
    recipient = proto_field(1, f"pekko.tcp://flink@{server[0]}:{server[1]}/user/rpc/"
                               f"{endpoint}#{rng.randint(-2**31, 2**31)}".encode())
    sender = proto_field(1, f"pekko.tcp://flink@{client[0]}:{client[1]}/temp/"
                            f"{endpoint}$a{rng.randint(0, 99)}".encode())
    sent = 0
    sequence = 1
    while sent < budget:
        from_client = rng.random() < 0.55
        body = rng.choice(cluster.rpc_messages)
        envelope = (proto_field(1, recipient if from_client else sender)
                    + proto_field(2, body) + proto_field(4, sender if from_client else recipient)
                    + b"\x29" + struct.pack("<Q", sequence))
        container = proto_field(2, envelope)
        payload = proto_field(1, container)
        frame = struct.pack("!I", len(payload)) + payload
        messages.append((from_client, frame))
        sent += len(frame)
        sequence += 1
    return messages


REST_PATHS = ("/v1/overview", "/v1/jobs/overview", "/v1/taskmanagers", "/v1/jobmanager/config",
              "/jobs/{job}", "/jobs/{job}/exceptions", "/jobs/{job}/checkpoints",
              "/v1/jobs/{job}/config")


def http_response(rng, job, size):
    items = []
    while sum(len(item) for item in items) < size:
        items.append(f'{{"id":"{job}","name":"flinkwire-demo","state":"RUNNING",'
                     f'"start-time":{rng.randint(10**12, 2 * 10**12)},'
                     f'"tasks":{{"running":{rng.randint(1, 64)},"failed":0}}}}')
    body = ("{\"jobs\":[" + ",".join(items) + "]}").encode()
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n"
            f"Access-Control-Allow-Origin: *\r\nContent-Length: {len(body)}\r\n"
            f"Connection: keep-alive\r\n\r\n").encode()
    return head + body


def rest_messages(rng, cluster, budget, server):
    messages = []
    sent = 0
    host = f"{server[0]}:{server[1]}"
    while sent < budget:
        job = rng.choice(cluster.job_ids)
        if rng.random() < 0.05:
            part = (b"--FLINKWIREBOUNDARY\r\nContent-Disposition: form-data; name=\"request\"\r\n"
                    b"\r\n{\"executionPlanFileName\":\"flink-executionPlan.bin\","
                    b"\"jobJarFileNames\":[]}\r\n--FLINKWIREBOUNDARY\r\n"
                    b"Content-Disposition: form-data; name=\"file_0\"; "
                    b"filename=\"flink-executionPlan.bin\"\r\n"
                    b"Content-Type: application/octet-stream\r\n\r\n\xac\xed\x00\x05"
                    + b"db.password=swordfish " * rng.randint(1, 40)
                    + rng.randbytes(rng.randint(200, 6000)) + b"\r\n--FLINKWIREBOUNDARY--\r\n")
            request = (f"POST /v1/jobs HTTP/1.1\r\nHost: {host}\r\n"
                       f"Content-Type: multipart/form-data; boundary=FLINKWIREBOUNDARY\r\n"
                       f"Content-Length: {len(part)}\r\n\r\n").encode() + part
            response = (b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 50\r\n\r\n"
                        + f'{{"jobUrl":"/jobs/{job}"}}'.encode().ljust(50))
        else:
            path = rng.choice(REST_PATHS).format(job=job)
            request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
                       f"User-Agent: flink-rest-client\r\nAccept: application/json\r\n\r\n"
                       ).encode()
            response = http_response(rng, job, int(rng.lognormvariate(6.0, 1.2)))
        messages.append((True, request))
        messages.append((False, response))
        sent += len(request) + len(response)
    return messages


# ---------------------------------------------------------------------------------------
# TLS 1.2


def tls_record(content_type: int, body: bytes) -> bytes:
    return struct.pack("!BHH", content_type, 0x0303, len(body)) + body


def handshake_message(kind: int, body: bytes) -> bytes:
    return struct.pack("!I", kind << 24 | len(body)) + body


def client_hello(rng) -> bytes:
    suites = [0xC02B, 0xC02F, 0xC02C, 0xC030, 0x009C, 0x002F, 0x00FF]
    groups = struct.pack("!HHHH", 6, 0x0017, 0x0018, 0x001D)
    algorithms = struct.pack("!HHHHH", 8, 0x0403, 0x0804, 0x0401, 0x0503)
    extensions = (struct.pack("!HH", 10, len(groups)) + groups
                  + struct.pack("!HHBB", 11, 2, 1, 0)
                  + struct.pack("!HH", 13, len(algorithms)) + algorithms
                  + struct.pack("!HH", 23, 0) + struct.pack("!HHB", 65281, 1, 0))
    body = (struct.pack("!H", 0x0303) + rng.randbytes(32) + b"\x00"
            + struct.pack("!H", 2 * len(suites)) + struct.pack(f"!{len(suites)}H", *suites)
            + b"\x01\x00" + struct.pack("!H", len(extensions)) + extensions)
    message = handshake_message(1, body)
    return struct.pack("!BHH", 22, 0x0301, len(message)) + message


def server_flight(rng, certificate: bytes) -> bytes:
    extensions = struct.pack("!HHB", 65281, 1, 0) + struct.pack("!HH", 23, 0)
    hello = (struct.pack("!H", 0x0303) + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
             + struct.pack("!HB", 0xC02B, 0) + struct.pack("!H", len(extensions)) + extensions)
    chain = struct.pack("!I", len(certificate))[1:] + certificate
    cert_body = struct.pack("!I", len(chain))[1:] + chain
    point = b"\x04" + rng.randbytes(64)
    signature = b"\x30\x45\x02\x20" + rng.randbytes(32) + b"\x02\x21\x00" + rng.randbytes(32)
    key_exchange = (struct.pack("!BHB", 3, 0x0017, len(point)) + point
                    + struct.pack("!HH", 0x0403, len(signature)) + signature)
    messages = (handshake_message(2, hello) + handshake_message(11, cert_body)
                + handshake_message(12, key_exchange) + handshake_message(14, b""))
    return tls_record(22, messages)


def client_finish(rng) -> bytes:
    point = b"\x04" + rng.randbytes(64)
    key_exchange = handshake_message(16, bytes([len(point)]) + point)
    return (tls_record(22, key_exchange) + tls_record(20, b"\x01")
            + tls_record(22, rng.randbytes(40)))


def encrypt(rng, payload_length: int) -> bytes:
    """application_data records of AES-GCM size for a plaintext of that length."""
    out = []
    while payload_length > 0:
        chunk = min(payload_length, 16384)
        out.append(tls_record(23, rng.randbytes(chunk + 24)))
        payload_length -= chunk
    return b"".join(out)


def tls_messages(rng, plaintext_messages, certificate):
    messages = [(True, client_hello(rng)), (False, server_flight(rng, certificate)),
                (True, client_finish(rng)),
                (False, tls_record(20, b"\x01") + tls_record(22, rng.randbytes(40)))]
    for from_client, payload in plaintext_messages:
        messages.append((from_client, encrypt(rng, len(payload))))
    if rng.random() < 0.8:
        messages.append((True, tls_record(21, rng.randbytes(26))))
    return messages


# ---------------------------------------------------------------------------------------
# TCP: messages -> packets


def tcp_packets(rng, messages, rst: bool, disorder: float):
    """The packets of one connection as (from_client, flags, seq, ack, payload) tuples."""
    client_seq = rng.getrandbits(32)
    server_seq = rng.getrandbits(32)
    packets = [(True, SYN, client_seq, 0, b""),
               (False, SYN | ACK, server_seq, (client_seq + 1) & 0xFFFFFFFF, b"")]
    client_seq = (client_seq + 1) & 0xFFFFFFFF
    server_seq = (server_seq + 1) & 0xFFFFFFFF
    packets.append((True, ACK, client_seq, server_seq, b""))

    for index, (from_client, payload) in enumerate(messages):
        seq = client_seq if from_client else server_seq
        ack = server_seq if from_client else client_seq
        unacked = 0
        for start in range(0, len(payload), MSS):
            segment = payload[start:start + MSS]
            last = start + MSS >= len(payload)
            packets.append((from_client, ACK | PSH if last else ACK, seq, ack, segment))
            seq = (seq + len(segment)) & 0xFFFFFFFF
            unacked += 1
            if unacked == 2 and not last:
                packets.append((not from_client, ACK, ack, seq, b""))
                unacked = 0
        if from_client:
            client_seq = seq
        else:
            server_seq = seq
        next_sender = messages[index + 1][0] if index + 1 < len(messages) else None
        if next_sender != (not from_client):
            packets.append((not from_client, ACK, ack, seq, b""))

    if rst:
        packets.append((True, RST | ACK, client_seq, server_seq, b""))
    else:
        packets.append((True, FIN | ACK, client_seq, server_seq, b""))
        packets.append((False, FIN | ACK, server_seq, (client_seq + 1) & 0xFFFFFFFF, b""))
        packets.append((True, ACK, (client_seq + 1) & 0xFFFFFFFF,
                        (server_seq + 1) & 0xFFFFFFFF, b""))

    # Retransmissions (a copy a few packets later) and reordering (a swap with the next).
    count = len(packets)
    for position in range(3, count - 3):
        if packets[position][4] and rng.random() < disorder:
            if rng.random() < 0.5:
                packets.insert(position + rng.randint(1, 3), packets[position])
            elif packets[position + 1][4] and packets[position + 1][0] == packets[position][0]:
                packets[position], packets[position + 1] = (packets[position + 1],
                                                           packets[position])
    return packets


# ---------------------------------------------------------------------------------------
# Writing


def mac_of(ip: str) -> bytes:
    return b"\x02\x42" + bytes(int(part) for part in ip.split("."))


def ip_bytes(ip: str) -> bytes:
    return bytes(int(part) for part in ip.split("."))


class Direction:
    """Per-direction constants: Ethernet header and the fixed parts of both checksums."""

    __slots__ = ("eth", "src", "dst", "sport", "dport", "ip_sum", "tcp_sum", "ip_id", "window")

    def __init__(self, src, sport, dst, dport, ip_id, window):
        self.eth = mac_of(dst) + mac_of(src) + ETH_IPV4
        self.src, self.dst = ip_bytes(src), ip_bytes(dst)
        self.sport, self.dport = sport, dport
        words = lambda raw: int.from_bytes(raw, "big")  # noqa: E731  (a sum of words, mod 0xFFFF)
        self.ip_sum = (0x4500 + 0x4000 + 0x4006 + words(self.src) + words(self.dst)) % 0xFFFF
        self.tcp_sum = (words(self.src) + words(self.dst) + 6 + sport + dport) % 0xFFFF
        self.ip_id = ip_id
        self.window = window


class Writer:
    """Streams packets into a pcap or pcapng file, hashing as it goes."""

    def __init__(self, path: Path, fmt: str):
        self.file = open(path, "wb")
        self.fmt = fmt
        self.sha = hashlib.sha256()
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.bytes = 0
        self.packets = 0
        if fmt == "pcap":
            self._put(PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1))
        else:
            self._put(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
            self._put(struct.pack("<IIHHII", 1, 20, 1, 0, SNAPLEN, 20))

    def _put(self, data: bytes):
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > 1 << 22:
            self.flush()

    def flush(self):
        block = b"".join(self.chunks)
        self.file.write(block)
        self.sha.update(block)
        self.bytes += len(block)
        self.chunks.clear()
        self.buffered = 0

    def packet(self, ts_us: int, direction: Direction, flags: int, seq: int, ack: int,
               payload: bytes):
        length = len(payload)
        tcp_length = 20 + length
        total = 20 + tcp_length
        ip_id = direction.ip_id = (direction.ip_id + 1) & 0xFFFF
        s = (direction.ip_sum + total + ip_id) % 0xFFFF
        ip_checksum = 0xFFFF - s if s else 0xFFFF
        offset_flags = 0x5000 | flags
        window = direction.window
        s = direction.tcp_sum + tcp_length + seq + ack + offset_flags + window
        if length:
            value = int.from_bytes(payload, "big")
            s += value << 8 if length & 1 else value
        s %= 0xFFFF
        tcp_checksum = 0xFFFF - s if s else 0xFFFF
        header = IP_TCP.pack(0x45, 0, total, ip_id, 0x4000, 64, 6, ip_checksum, direction.src,
                             direction.dst, direction.sport, direction.dport, seq, ack, 0x50,
                             flags, window, tcp_checksum, 0)
        frame_length = 14 + total
        if self.fmt == "pcap":
            self._put(PCAP_RECORD.pack(ts_us // 1_000_000, ts_us % 1_000_000, frame_length,
                                       frame_length))
            self._put(direction.eth + header + payload)
        else:
            pad = -frame_length & 3
            block_length = 32 + frame_length + pad
            self._put(PCAPNG_EPB.pack(6, block_length, 0, ts_us >> 32, ts_us & 0xFFFFFFFF,
                                      frame_length, frame_length))
            self._put(direction.eth + header + payload + b"\x00" * pad
                      + struct.pack("<I", block_length))
        self.packets += 1
        self.bytes_estimate = self.bytes + self.buffered

    def close(self):
        self.flush()
        self.file.close()


# ---------------------------------------------------------------------------------------
# Flows and the schedule


KINDS = (("data", 0.45), ("rpc", 0.30), ("rest", 0.25))


def new_flow(rng: random.Random, cluster: Cluster, disorder: float):
    """Pick a flow: kind, TLS or not, endpoints; return its packets and its description."""
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    tls = rng.random() < 0.5
    budget = min(1_500_000, max(600, int(rng.lognormvariate(0, 1.0) * MEAN_FLOW_BYTES / 1.65)))

    if kind == "data":
        client_host, server_host = rng.sample(cluster.taskmanagers, 2)
        server_port = cluster.tm_data_port[server_host]
    elif kind == "rpc":
        if rng.random() < 0.6:
            client_host, server_host = rng.choice(cluster.taskmanagers), cluster.jobmanager
            server_port = 6123
        else:
            client_host, server_host = cluster.jobmanager, rng.choice(cluster.taskmanagers)
            server_port = cluster.tm_rpc_port[server_host]
    else:
        client_host, server_host = rng.choice(cluster.rest_clients), cluster.jobmanager
        server_port = 8081
    if tls and rng.random() < 0.15:
        server_port = rng.choice((8443, 443, rng.randint(20000, 30000)))
    elif not tls and rng.random() < 0.10:
        server_port = 443
    client_port = cluster.ephemeral_port(client_host, rng)

    if kind == "data":
        messages = data_plane_messages(rng, cluster, budget)
    elif kind == "rpc":
        messages = rpc_messages(rng, cluster, budget, (client_host, client_port),
                                (server_host, server_port))
    else:
        messages = rest_messages(rng, cluster, budget, (server_host, server_port))
    if tls:
        messages = tls_messages(rng, messages, cluster.certificates[server_host])

    packets = tcp_packets(rng, messages, rst=rng.random() < 0.03, disorder=disorder)
    window = rng.choice((29200, 43690, 64240, 65535))
    directions = (Direction(client_host, client_port, server_host, server_port,
                            rng.getrandbits(16), window),
                  Direction(server_host, server_port, client_host, client_port,
                            rng.getrandbits(16), window))
    description = {"kind": kind, "tls": tls, "client": f"{client_host}:{client_port}",
                   "server": f"{server_host}:{server_port}", "packets": len(packets)}
    return packets, directions, description


def generate(path: Path, size: int, fmt: str = "pcap", seed: int = 1, concurrent: int = 200,
             disorder: float = 0.01, flow_log: Path | None = None) -> dict:
    """Write a capture of about `size` bytes; return (and store beside it) its manifest."""
    rng = random.Random(seed)
    cluster = Cluster(rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = Writer(path, fmt)
    writer.bytes_estimate = 0
    per_packet_overhead = 16 if fmt == "pcap" else 34

    active = []            # [packets, position, directions]
    pending = 0            # bytes still to be written by the open flows
    flows = tls_flows = 0
    by_kind: dict[str, int] = {}
    log = open(flow_log, "w") if flow_log else None
    clock = START_TIME_US

    def open_flow():
        nonlocal pending, flows, tls_flows
        packets, directions, description = new_flow(rng, cluster, disorder)
        active.append([packets, 0, directions])
        pending += sum(54 + per_packet_overhead + len(p[4]) for p in packets)
        flows += 1
        tls_flows += description["tls"]
        key = description["kind"] + ("-tls" if description["tls"] else "")
        by_kind[key] = by_kind.get(key, 0) + 1
        if log:
            log.write(json.dumps(description) + "\n")

    while len(active) < concurrent and writer.bytes_estimate + pending < size:
        open_flow()
    while active:
        index = rng.randrange(len(active))
        flow = active[index]
        packets, position, directions = flow
        burst = min(len(packets) - position, rng.choice((1, 1, 2, 3, 4)))
        for from_client, flags, seq, ack, payload in packets[position:position + burst]:
            clock += rng.randint(1, 400)
            writer.packet(clock, directions[0 if from_client else 1], flags, seq, ack, payload)
            pending -= 54 + per_packet_overhead + len(payload)
        flow[1] = position + burst
        if flow[1] >= len(packets):
            active[index] = active[-1]
            active.pop()
            if writer.bytes_estimate + pending < size:
                open_flow()
    writer.close()
    if log:
        log.close()

    manifest = {"generator_version": GENERATOR_VERSION, "generator": source_digest(),
                "seed": seed, "format": fmt, "target_size": size, "concurrent": concurrent,
                "disorder": disorder,
                "bytes": writer.bytes, "packets": writer.packets, "flows": flows,
                "tls_flows": tls_flows, "flows_by_kind": dict(sorted(by_kind.items())),
                "sha256": writer.sha.hexdigest()}
    Path(str(path) + ".json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def default_path(size: int, fmt: str, seed: int) -> Path:
    label = f"{size // 10**9}G" if size % 10**9 == 0 else f"{size // 10**6}M"
    return DATA_DIR / f"flink-{label}-s{seed}.{fmt}"


def source_digest() -> str:
    """Changes whenever this script does, so a stale capture is made again."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def ensure(size: int, fmt: str = "pcap", seed: int = 1) -> tuple[Path, dict]:
    """The capture for these parameters, generated unless a matching one is already there."""
    path = default_path(size, fmt, seed)
    manifest_path = Path(str(path) + ".json")
    if path.exists() and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if (manifest.get("generator") == source_digest()
                and manifest.get("bytes") == path.stat().st_size):
            return path, manifest
    return path, generate(path, size, fmt, seed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="100M", help="target size: 10M, 100M, 1G ...")
    parser.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrent", type=int, default=200, help="flows open at once")
    parser.add_argument("--disorder", type=float, default=0.01,
                        help="share of data segments retransmitted or reordered, each")
    parser.add_argument("--flow-log", type=Path, help="write one JSON line per flow here")
    parser.add_argument("-o", "--output", type=Path, help="default: benchmarks/data/...")
    args = parser.parse_args(argv)

    size = parse_size(args.size)
    path = args.output or default_path(size, args.format, args.seed)
    manifest = generate(path, size, args.format, args.seed, args.concurrent, args.disorder,
                        args.flow_log)
    print(f"{path}: {manifest['bytes']:,} bytes, {manifest['packets']:,} packets, "
          f"{manifest['flows']:,} flows ({manifest['tls_flows']:,} TLS), "
          f"sha256 {manifest['sha256'][:16]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
