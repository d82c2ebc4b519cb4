"""Ctrl-C and SIGTERM end a run with worker processes at once: one line, exit 130,
no traceback from any worker, no process left behind."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory):
    pytest.importorskip("cryptography")
    spec = importlib.util.spec_from_file_location("bench_generate",
                                                  ROOT / "benchmarks" / "generate.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    path = tmp_path_factory.mktemp("big") / "big.pcap"
    # About 4 s of analysis per file here: long enough to be cut short.
    generator.generate(path, 24_000_000, "pcap", seed=3)
    copy = path.with_name("big-2.pcap")
    copy.symlink_to(path)
    return path, copy


def _interrupted(argv, how):
    run = subprocess.Popen([sys.executable, "-m", "flinkwire.faces.cli", "report", "--quiet",
                            *map(str, argv)], cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(1.5)
    sent = time.monotonic()
    if how == "ctrl-c":  # a terminal sends SIGINT to the whole process group
        os.killpg(run.pid, signal.SIGINT)
    else:
        run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    took = time.monotonic() - sent
    time.sleep(0.5)
    try:
        os.killpg(run.pid, 0)
        left = True
    except ProcessLookupError:
        left = False
    return run.returncode, took, err.decode(errors="replace"), left


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
@pytest.mark.parametrize("mode", ["two files", "two shards"])
def test_interrupt_ends_workers_at_once(big_capture, mode, how):
    path, copy = big_capture
    argv = [path, copy] if mode == "two files" else ["--shards", "2", path]
    code, took, err, left = _interrupted(argv, how)
    assert code == 130, err
    assert took < 5
    assert "Traceback" not in err
    assert err.strip() == "flinkwire: interrupted"
    assert not left
