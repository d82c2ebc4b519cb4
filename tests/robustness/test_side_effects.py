"""No side effects: no network, the capture untouched, temporary files gone, YAML safe."""

import builtins
import gzip
import hashlib
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

import flinkwire

from flinkwire.errors import CaptureError, ConfigError

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "captures" / "s1-plaintext.pcap"
LAB_CONFIG = ROOT / "captures" / "s1-plaintext.config.yaml"


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    calls = []

    def refuse(name):
        def blocked(*args, **kwargs):
            calls.append(name)
            raise NetworkUsed(f"analysis called socket.{name}{args!r}")
        return blocked

    for name in ("socket", "create_connection", "getaddrinfo", "gethostbyname",
                 "gethostbyaddr", "getnameinfo", "socketpair"):
        monkeypatch.setattr(socket, name, refuse(name))
    return calls


def test_analysis_opens_no_connection(no_network, tmp_path):
    analysis = flinkwire.analyze(LAB, config=LAB_CONFIG)
    assert len(analysis.flows) > 10 and len(analysis.findings) > 0
    analysis.summary()
    analysis.to_json(tmp_path / "out.json")
    assert no_network == []


def test_the_guard_would_notice(no_network):
    with pytest.raises(NetworkUsed):
        socket.create_connection(("127.0.0.1", 9))
    assert no_network == ["create_connection"]


def _fingerprint(path):
    stat = os.stat(path)
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_mtime_ns, stat.st_size


@pytest.mark.parametrize("name", ["s1-plaintext.pcap", "s7-internal-tls13-no-suites.pcap"])
def test_capture_is_not_modified(tmp_path, monkeypatch, name):
    capture = tmp_path / name
    shutil.copyfile(ROOT / "captures" / name, capture)
    os.utime(capture, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before = _fingerprint(capture)

    modes = []
    real_open = builtins.open

    def spying_open(file, mode="r", *args, **kwargs):
        if os.fspath(file) == os.fspath(capture) if isinstance(file, (str, os.PathLike)) \
                else False:
            modes.append(mode)
        return real_open(file, mode, *args, **kwargs)

    real_os_open = os.open
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def spying_os_open(file, flags, *args, **kwargs):
        # The capture is opened with os.open (O_NONBLOCK, so that a FIFO cannot hang it).
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == os.fspath(capture):
            modes.append("rb" if not flags & writing else f"flags {flags:#x}")
        return real_os_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spying_open)
    monkeypatch.setattr(os, "open", spying_os_open)
    flinkwire.analyze(capture)
    assert _fingerprint(capture) == before
    assert modes and set(modes) == {"rb"}


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_gzip_temporary_file_is_removed(tmp_path, private_tmp):
    packed = tmp_path / "s1.pcap.gz"
    packed.write_bytes(gzip.compress(LAB.read_bytes(), compresslevel=1))
    analysis = flinkwire.analyze(packed)
    assert len(analysis.flows) > 10
    assert list(private_tmp.iterdir()) == []


def test_cut_gzip_temporary_file_is_removed(tmp_path, private_tmp):
    packed = gzip.compress(LAB.read_bytes(), compresslevel=1)
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    analysis = flinkwire.analyze(cut)
    assert "truncated-gzip" in set(analysis.anomalies["kind"])
    assert list(private_tmp.iterdir()) == []


def test_gzip_of_no_capture_is_refused_and_removed(tmp_path, private_tmp):
    packed = tmp_path / "notes.gz"
    packed.write_bytes(gzip.compress(b"just some text, not a capture\n"))
    with pytest.raises(CaptureError):
        flinkwire.analyze(packed)
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("payload", [
    "!!python/object/apply:os.system [\"touch {marker}\"]",
    "rest.port: !!python/object/apply:os.system [\"touch {marker}\"]",
    "rest:\n  port: !!python/object/new:os.system [\"touch {marker}\"]",
    "a: !!python/name:os.system\nb: !!python/object/apply:subprocess.call [[touch, {marker}]]",
])
def test_yaml_config_tags_do_not_run(tmp_path, payload):
    marker = tmp_path / "marker"
    config = tmp_path / "config.yaml"
    config.write_text(payload.format(marker=marker) + "\njobmanager.rpc.port: 6123\n")
    try:
        flinkwire.analyze(LAB, config=config)
    except ConfigError:
        pass
    assert not marker.exists()
