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


CLIENT_HELLO = (bytes.fromhex("160301002f0100002b0303") + bytes(32)
                + b"\x00\x00\x02\x00\x2f\x01\x00")
SERVER_HELLO = bytes.fromhex("160303002a020000260303") + bytes(32) + b"\x00\x00\x2f\x00"


@pytest.mark.parametrize("closed", [(1,), (1, 2)])
@pytest.mark.parametrize("command, capture, status", [
    ("check", "tls", 0), ("check", "plain", 1), ("check", "missing", 2),
    ("report", "plain", 0), ("report", "missing", 2)])
def test_closed_stdout_keeps_the_commands_status(tmp_path, plaintext_capture, closed,
                                                 command, capture, status):
    """Found by the breaker (405): with fd 1 closed (`>&-`), Python's sys.stdout is None
    and every command died in a traceback at `sys.stdout.flush()`, exit 1: an all-TLS
    capture failed `check`, a missing file gave 1, not 2. The status is the command's,
    with stderr closed too."""
    paths = {"plain": plaintext_capture, "missing": tmp_path / "missing.pcap",
             "tls": tmp_path / "tls.pcap"}
    paths["tls"].write_bytes(pcap_bytes([bytes(p) for p in conversation(
        c2s=[CLIENT_HELLO], s2c=[SERVER_HELLO])]))

    def close():
        for fd in closed:
            os.close(fd)

    run = subprocess.run([sys.executable, "-m", "flinkwire.faces.cli", command, "--quiet",
                          str(paths[capture])], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=300,
                         preexec_fn=close)
    assert run.returncode == status, run.stderr
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr
    if capture == "missing" and 2 not in closed:
        assert len(run.stderr.splitlines()) == 1 and "missing.pcap" in run.stderr


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_shards_below_one_is_refused_by_the_parser(plaintext_capture, value):
    """Found by the breaker (310), CLI side: `analyze` now refuses shards < 1, so
    `--shards 0` is refused as an argument (one usage line, exit 2), not a traceback."""
    run = _cli("report", "--quiet", "--shards", value, plaintext_capture)
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1].startswith("flinkwire report: error: argument --shards:")


def _refused(*args):
    run = _cli("report", "--quiet", *args)
    assert run.returncode == 2 and run.stdout == "", run.stdout  # refused before the analysis
    assert len(run.stderr.splitlines()) == 1, run.stderr
    return run.stderr.strip()


def test_outputs_never_overwrite_the_config_or_a_capture(plaintext_capture, tmp_path):
    """Found by the breaker (311): `--json config.yaml` replaced the cluster's config
    (given as --config) with the JSON report, silently, exit 0."""
    config = tmp_path / "config.yaml"
    config.write_text("rest.port: 8081\njobmanager.rpc.port: 6123\n")
    for option in ("--json", "--html"):
        line = _refused(plaintext_capture, "--config", config, option, config)
        assert line == (f"flinkwire: {option} {config}: is the --config file; "
                        "refusing to overwrite it")
        line = _refused(plaintext_capture, option, plaintext_capture)
        assert line.endswith("is one of the captures; refusing to overwrite it")
    assert config.read_text() == "rest.port: 8081\njobmanager.rpc.port: 6123\n"


def test_unwritable_output_targets_are_refused_before_the_analysis(plaintext_capture,
                                                                   tmp_path):
    """Found by the breaker (311): `--csv afile`, an existing regular file, failed only
    after the whole analysis and summary (`File exists`); `--json x --html x` let the
    later output silently replace the first."""
    afile = tmp_path / "afile"
    afile.write_text("keep")
    for option in ("--csv", "--parquet"):
        assert _refused(plaintext_capture, option, afile) == \
            f"flinkwire: {option} {afile}: exists and is not a directory"
    out = tmp_path / "out"
    assert _refused(plaintext_capture, "--json", out, "--html", out) == \
        f"flinkwire: --html {out}: is also the --json output"
    assert _refused(plaintext_capture, "--json", out, "--csv", out) == \
        f"flinkwire: --csv {out}: is also the --json output"
    assert afile.read_text() == "keep" and not out.exists()

    tables = tmp_path / "tables"
    run = _cli("report", "--quiet", plaintext_capture, "--csv", tables, "--parquet", tables)
    assert run.returncode == 0, run.stderr
    assert (tables / "flows.csv").exists() and (tables / "flows.parquet").exists()
