"""What the CLI says about bad input, line by line.

A file that is not a capture: one line naming the file and what is wrong, exit 2, and a
`CaptureError` from the library. A damaged capture: one warning line per kind of damage
(however many packets it hit), exit 0; when no packet at all could be read, one closing
line more and exit 2. Every file is built here.
"""

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import flinkwire
from builders import conversation, pcap_bytes
from flinkwire.errors import CaptureError
from flinkwire.reading import open_capture

ROOT = Path(__file__).resolve().parents[2]
FRAMES = [bytes(p) for p in conversation(c2s=[b"GET / HTTP/1.1\r\nHost: jm\r\n\r\n"])]


def _report(path):
    run = subprocess.run([sys.executable, "-m", "flinkwire.faces.cli", "report", "--quiet",
                          str(path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert "Traceback" not in run.stderr + run.stdout
    return run.returncode, run.stderr.splitlines()


def _block(btype, body):
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


SHB = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
IDB = _block(1, struct.pack("<HHI", 1, 0, 262144))


def _epbs(frames, ifid=0):
    return b"".join(_block(6, struct.pack("<IIIII", ifid, 0, i, len(f), len(f)) + f)
                    for i, f in enumerate(frames))


NOT_CAPTURES = {
    # Found by the breaker: a 102-byte corrupt gzip was reported as "is empty".
    "garbage.pcap.gz": (b"\x1f\x8b" + b"\xff" * 100, "is not a valid gzip file"),
    "cut.pcap.gz": (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", "gzip file cut short"),
    # Found by the breaker: the pcap magic and 6 bytes more gave a warning and then
    # "no packet could be read"; without a whole file header it is not a capture.
    "magic-only.pcap": (pcap_bytes(FRAMES)[:10], "pcap file header"),
    "shb-cut.pcapng": (SHB[:20], "pcapng section header"),
    "shb-bad-magic.pcapng": (SHB[:8] + b"\x00" * 4 + SHB[12:] + _epbs(FRAMES),
                             "byte-order magic"),
}


@pytest.mark.parametrize("name", list(NOT_CAPTURES))
def test_not_a_capture_is_one_line_and_exit_two(tmp_path, name):
    content, says = NOT_CAPTURES[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CaptureError) as err:
        open_capture(path)
    assert says in err.value.reason and "empty" not in err.value.reason
    code, lines = _report(path)
    assert (code, len(lines)) == (2, 1), lines
    assert lines[0] == f"flinkwire: {path}: {err.value.reason}"


def test_pcapng_without_interface_block_is_damage_said_once(tmp_path):
    """Found by the breaker: 40 packet blocks and no interface description block gave 16
    warnings, a 17th counting the rest, then "no packet could be read". Its packets cannot
    be given a link type, so nothing is read (tshark: "appears to be damaged or corrupt",
    exit 2): one warning for the one kind of damage, the closing line, exit 2."""
    path = tmp_path / "no-idb.pcapng"
    path.write_bytes(SHB + _epbs(FRAMES * 5))
    analysis = flinkwire.analyze(path)
    rows = analysis.anomalies[analysis.anomalies["source"] == "reading"]
    assert set(rows["kind"]) == {"unknown_interface"}
    code, lines = _report(path)
    assert (code, len(lines)) == (2, 2), lines
    assert lines[0].startswith(f"flinkwire: warning: {path}: unknown_interface at file "
                               f"offset {len(SHB)}: ")
    assert f"{len(FRAMES) * 5 - 1} more" in lines[0]
    assert lines[1] == f"flinkwire: {path}: no packet could be read"


def test_damage_after_good_packets_is_one_warning_per_kind_and_exit_zero(tmp_path):
    path = tmp_path / "later-damage.pcapng"
    liar = _block(6, struct.pack("<IIIII", 0, 0, 1, 4000, 4000) + FRAMES[0])
    path.write_bytes(SHB + IDB + _epbs(FRAMES) + _epbs(FRAMES * 4, ifid=7) + liar * 3)
    code, lines = _report(path)
    assert code == 0
    assert len(lines) == 2, lines
    assert "unknown_interface" in lines[0] and "bad_record_length" in lines[1]
    assert all(line.startswith(f"flinkwire: warning: {path}: ") for line in lines)


def test_gzip_with_a_bad_checksum_is_one_warning_and_exit_zero(tmp_path):
    """Found by the breaker (207): refused with exit 2 before; now read, with a warning."""
    packed = bytearray(gzip.compress(pcap_bytes(FRAMES)))
    packed[-8] ^= 0xFF
    path = tmp_path / "bad-crc.pcap.gz"
    path.write_bytes(bytes(packed))
    code, lines = _report(path)
    assert code == 0
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"flinkwire: warning: {path}: gzip-checksum at file offset "
                               f"{len(packed) - 8}: ")
    assert len(flinkwire.analyze(path).flows) == 1


def test_fifo_nobody_writes_to_is_one_line_not_a_hang(tmp_path):
    """Found by the breaker (306): `flinkwire check FIFO` on a named pipe nobody writes to
    blocked in open() until killed, and so did `analyze(FIFO)` in a notebook. Fixed in
    reading/capture.py: the file is opened with O_NONBLOCK, then read as a pipe; a pipe
    that gives no data is refused in one line."""
    fifo = tmp_path / "fifo.pcap"
    os.mkfifo(fifo)
    code = f"import flinkwire\ntry:\n flinkwire.analyze({str(fifo)!r})\n" \
           "except flinkwire.CaptureError as exc:\n print(exc.reason)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 0 and "pipe that gave no data" in run.stdout, run
    code, lines = _report(fifo)
    assert code == 2 and lines == [f"flinkwire: {fifo}: {run.stdout.strip()}"]


@pytest.mark.parametrize("packed", [False, True])
def test_capture_through_a_pipe_is_read(packed):
    """Found by the breaker (306): a valid capture given through a pipe (`<(cat c.pcap)`,
    `<(zcat ...)`) was refused as "cut inside its pcap file header (0 of its 24 bytes)"
    (the size of a pipe is 0), and a .gz one as ": File or stream is not seekable." (no
    file name). Fixed in reading/capture.py: a pipe is copied into the private temporary
    file (inflated on the way when it is gzip) and read from there."""
    raw = pcap_bytes(FRAMES)
    run = subprocess.run([sys.executable, "-m", "flinkwire.faces.cli", "report", "--quiet",
                          "/dev/stdin"], input=gzip.compress(raw) if packed else raw,
                         capture_output=True, cwd=ROOT, timeout=300)
    assert (run.returncode, run.stderr) == (0, b"")
    assert b"plaintext" in run.stdout
