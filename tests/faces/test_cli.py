"""The CLI's exit status and its output files, whatever the outputs' readers do.

Every capture and config is built here; the CLI runs as its own process, as a CI
step would run it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from builders import conversation, pcap_bytes

ROOT = Path(__file__).resolve().parents[2]
REST_GET = b"GET /jobs/overview HTTP/1.1\r\nHost: 192.0.2.10\r\n\r\n"


def _cli(*args, stdout=subprocess.PIPE):
    return subprocess.run([sys.executable, "-m", "flinkwire.faces.cli", *map(str, args)],
                          stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                          timeout=300)


@pytest.fixture
def plaintext_capture(tmp_path):
    path = tmp_path / "plain.pcap"
    path.write_bytes(pcap_bytes([bytes(p) for p in conversation(c2s=[REST_GET])]))
    return path


def test_check_fail_survives_a_closed_reader(plaintext_capture):
    """Found by the breaker (303): `check` found a plaintext REST flow (FAIL) but exited 0
    when its stdout reader had gone (`check ... | head` under `pipefail`), so a CI gate
    passed on a plaintext cluster. The status is the verdict's, read or not."""
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first line is written
    try:
        proc = subprocess.Popen([sys.executable, "-m", "flinkwire.faces.cli", "check",
                                 "--quiet", str(plaintext_capture)],
                                stdout=writer, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    finally:
        os.close(writer)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "Exception ignored" not in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command, status", [("check", 1), ("report", 2)])
def test_full_stdout_is_named_and_keeps_the_verdict(plaintext_capture, command, status):
    """Found by the breaker (303): `> /dev/full` gave `flinkwire: : No space left on
    device`, naming no file. The line names `<stdout>`; `check` still exits with its
    verdict, `report` with 2."""
    with open("/dev/full", "w") as full:
        run = _cli(command, "--quiet", plaintext_capture, stdout=full)
    assert run.returncode == status, run.stderr
    assert run.stderr.splitlines() == ["flinkwire: <stdout>: No space left on device"]


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_shards_below_one_is_refused_by_the_parser(plaintext_capture, value):
    """Found by the breaker (310), CLI side: `analyze` now refuses shards < 1, so
    `--shards 0` is refused as an argument (one usage line, exit 2), not a traceback."""
    run = _cli("report", "--quiet", "--shards", value, plaintext_capture)
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1].startswith("flinkwire report: error: argument --shards:")
