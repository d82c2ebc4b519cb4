"""Shared machinery of the fuzz targets: budget, seeds, mutations, watchdog, counters.

Every target is a hypothesis test whose body is wrapped by `target(name)`: the
wrapper counts the inputs tried, keeps the slowest one's time, and arms a
watchdog (like libFuzzer's -timeout) so that a hang fails as `Hang` with the
input hypothesis then minimises, instead of stalling the run. The budget comes
from FLINKWIRE_FUZZ_EXAMPLES (200 per target by default, derandomized so CI is
deterministic; `make fuzz` sets 20000 and draws random inputs). FLINKWIRE_FUZZ_STATS
names where the counters go (see `write_stats`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import struct
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from functools import wraps
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CAPTURES = ROOT / "captures"
SHARED = ROOT.parent / "shared" / "corpus"
REGRESSIONS = Path(__file__).resolve().parent / "data"

EXAMPLES = int(os.environ.get("FLINKWIRE_FUZZ_EXAMPLES", "200"))
LONG_RUN = EXAMPLES > 1000
# Seconds one input may take before it counts as a hang; generous, since the
# slowest honest inputs (a 1 MB capture through the whole pipeline) take ~2 s.
HANG_SECONDS = float(os.environ.get("FLINKWIRE_FUZZ_TIMEOUT", "30"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not LONG_RUN,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
    print_blob=True,
)


def budget(fraction: float) -> settings:
    """The fuzz settings with a share of the budget, for the heavy whole-pipeline targets."""
    return settings(FUZZ, max_examples=max(10, int(EXAMPLES * fraction)))


# -- counters and watchdog -------------------------------------------------------

TRIED: dict[str, int] = defaultdict(int)
SLOWEST: dict[str, float] = defaultdict(float)
SECONDS: dict[str, float] = defaultdict(float)


class Hang(Exception):
    """One input ran longer than FLINKWIRE_FUZZ_TIMEOUT seconds."""


@contextmanager
def watchdog(seconds: float = HANG_SECONDS):
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def fire(signum, frame):
        raise Hang(f"input took more than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


STATS_PATH = os.environ.get("FLINKWIRE_FUZZ_STATS")
_flushed = [time.monotonic()]


def target(name: str):
    """Decorate a hypothesis test body: count it under `name`, guard it with the watchdog."""
    def wrap(fn):
        @wraps(fn)
        def run(*args, **kwargs):
            TRIED[name] += 1
            began = time.perf_counter()
            try:
                with watchdog():
                    return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - began
                SECONDS[name] += spent
                SLOWEST[name] = max(SLOWEST[name], spent)
                if STATS_PATH and time.monotonic() - _flushed[0] > 20:
                    write_stats(STATS_PATH)
        return run
    return wrap


def write_stats(path: str) -> None:
    """This process's counters, to `path`.<pid>.json (rewritten whole, so a run that is
    stopped by a time box loses at most the last few seconds); `summarise` adds them up."""
    _flushed[0] = time.monotonic()
    rows = {name: {"inputs": TRIED[name], "seconds": round(SECONDS[name], 2),
                   "slowest": round(SLOWEST[name], 3)} for name in TRIED}
    out = Path(f"{path}.{os.getpid()}.json")
    out.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")


def summarise(path: str) -> dict:
    """Per target: inputs, seconds and slowest input over every process of a run."""
    total: dict = {}
    for part in sorted(Path(path).parent.glob(Path(path).name + ".*.json")):
        for name, row in json.loads(part.read_text()).items():
            into = total.setdefault(name, {"inputs": 0, "seconds": 0.0, "slowest": 0.0})
            into["inputs"] += row["inputs"]
            into["seconds"] = round(into["seconds"] + row["seconds"], 2)
            into["slowest"] = max(into["slowest"], row["slowest"])
    return total


# -- output bounds ---------------------------------------------------------------

def output_size(obj, _seen=None) -> int:
    """Characters/bytes/items held by a parser's result (dicts, lists, dataclasses)."""
    if _seen is None:
        _seen = set()
    if isinstance(obj, (str, bytes, bytearray, memoryview)):
        return len(obj)
    if obj is None or isinstance(obj, (bool, int, float)):
        return 1
    if id(obj) in _seen:
        return 0
    _seen.add(id(obj))
    if hasattr(obj, "__dataclass_fields__"):
        obj = vars(obj)
    total = 1
    if isinstance(obj, dict):
        for key, value in obj.items():
            total += output_size(key, _seen) + output_size(value, _seen)
        extra = getattr(obj, "anomalies", None)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for item in obj:
            total += output_size(item, _seen)
        extra = getattr(obj, "anomalies", None)
    else:
        return len(repr(obj))
    if extra is not None:
        total += output_size(extra, _seen)
    return total


def assert_bounded(result, input_size: int, factor: int = 8, slack: int = 64 * 1024) -> None:
    """A parser's result stays within a small multiple of its input, plus fixed slack."""
    size = output_size(result)
    assert size <= factor * input_size + slack, (
        f"output of {size} units from {input_size} input bytes")


# -- seeds -----------------------------------------------------------------------

def read_seeds(paths, limit: int = 1 << 20) -> list[bytes]:
    out = []
    for path in paths:
        try:
            data = Path(path).read_bytes()[:limit]
        except OSError:
            continue
        if data:
            out.append(data)
    return out


def capture_files(small_only: int = 64 * 1024) -> list[Path]:
    """Capture seeds: the repo's cases, the shared corpora if present, small lab captures."""
    paths = sorted((DATA / "cases").glob("*.pcap"))
    if SHARED.is_dir():
        paths += sorted((SHARED / "cases").glob("*.pcap"))
        paths += sorted(p for p in (SHARED / "peers" / "captures").glob("*")
                        if p.stat().st_size <= small_only)
    paths += sorted(p for p in CAPTURES.glob("*.pcap") if p.stat().st_size <= small_only)
    return paths


_STREAMS: dict[str, list[tuple[bytes, bytes]]] = {}
HEAD = 32 * 1024      # bytes of each direction kept as a seed
PER_CAPTURE = 5       # flows of one kind taken from each lab capture


def lab_streams(kind: str) -> list[tuple[bytes, bytes]]:
    """(c2s, s2c) heads of lab-capture flows whose content detector says `kind`.

    `kind` is "tls" or a detector name (pekko, netty, blob, http, ...); the flows
    of the seven lab captures are read once per session, a few flows of each kind
    from each, cut to 32 KB heads.
    """
    if not _STREAMS:
        _load_lab_streams()
    return _STREAMS.get(kind, [])


def _load_lab_streams() -> None:
    from flinkwire.protocols import blob, flinkbin, http, netty, pekko, tls, zookeeper
    from flinkwire.tcp.build import build_flows

    detectors = (("netty", netty.detect), ("pekko", pekko.detect), ("blob", blob.detect),
                 ("flinkbin", flinkbin.detect), ("zookeeper", zookeeper.detect),
                 ("http", http.detect))

    def keep(flow):
        side = flow.client if flow.client is not None else 0
        c2s = flow.halves[side].head()[:HEAD]
        s2c = flow.halves[1 - side].head()[:HEAD]
        if not (c2s or s2c):
            return
        pair = (c2s, s2c)
        bucket = None
        if tls.tls_start(c2s) is not None:
            bucket = "tls"
        else:
            for name, detect in detectors:
                try:
                    if detect(c2s, s2c):
                        bucket = name
                        break
                except Exception:
                    continue
        for name in (bucket, "any"):
            if name is None:
                continue
            group = _STREAMS.setdefault(name, [])
            if taken[name] < PER_CAPTURE and pair not in group:
                group.append(pair)
                taken[name] += 1

    for path in sorted(CAPTURES.glob("*.pcap")):
        taken = defaultdict(int)
        build_flows([str(path)], keep)


def stream_files(pattern: str) -> list[bytes]:
    return read_seeds(sorted((DATA / "tls").glob(pattern)) + sorted(
        (DATA / "leakage").glob(pattern)))


# -- mutations -------------------------------------------------------------------

INTERESTING_32 = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4000, 0x7FFF, 0x8000, 0xFFFF,
                  0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)


@st.composite
def mutated(draw, seeds, max_mutations: int = 8, max_insert: int = 64):
    """One of `seeds` with a few byte-level mutations applied (AFL-style)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, max_mutations))):
        op = draw(st.integers(0, 9))
        size = len(data)
        if op == 0 and size:                      # flip one bit
            i = draw(st.integers(0, size - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == 1 and size:                    # set one byte
            data[draw(st.integers(0, size - 1))] = draw(st.integers(0, 255))
        elif op == 2 and size:                    # truncate
            del data[draw(st.integers(0, size - 1)):]
        elif op == 3:                             # insert random bytes
            i = draw(st.integers(0, size))
            data[i:i] = draw(st.binary(min_size=1, max_size=max_insert))
        elif op == 4 and size > 1:                # delete a range
            i = draw(st.integers(0, size - 1))
            del data[i:i + draw(st.integers(1, 64))]
        elif op in (5, 6) and size >= 4:          # overwrite a length field
            i = draw(st.integers(0, size - 4))
            value = draw(st.sampled_from(INTERESTING_32) | st.integers(0, 0xFFFFFFFF))
            width = draw(st.sampled_from((1, 2, 4)))
            order = draw(st.sampled_from("<>"))
            fmt = order + {1: "B", 2: "H", 4: "I"}[width]
            struct.pack_into(fmt, data, i, value & ((1 << (8 * width)) - 1))
        elif op == 7 and size > 8:                # duplicate a block in place (splice)
            i = draw(st.integers(0, size - 2))
            j = draw(st.integers(i + 1, min(size, i + 4096)))
            k = draw(st.integers(0, size))
            data[k:k] = data[i:j]
        elif op == 8 and size > 8:                # splice in a slice of another seed
            other = draw(st.sampled_from(seeds))
            if other:
                i = draw(st.integers(0, len(other) - 1))
                piece = other[i:i + draw(st.integers(1, 4096))]
                k = draw(st.integers(0, size))
                data[k:k] = piece
        elif op == 9 and size:                    # repeat a short run many times
            i = draw(st.integers(0, size - 1))
            piece = bytes(data[i:i + draw(st.integers(1, 16))])
            data[i:i] = piece * draw(st.integers(2, 512))
    return bytes(data)


def mutated_or_random(seeds, **kw):
    """Mostly mutated seeds, sometimes bytes from nowhere."""
    return st.one_of(mutated(seeds, **kw), st.binary(max_size=2048))


# -- bugs the product swallows ------------------------------------------------------

class _Swallowed(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        if record.exc_info:
            self.records.append(record)


@contextmanager
def no_swallowed_errors():
    """Fail when a product `except Exception: log.exception(...)` hid a parser bug.

    Those guards keep one bad flow from ending an analysis, which is right for
    users, but to the fuzzer a swallowed exception is the crash it is looking for.
    """
    handler = _Swallowed()
    logger = logging.getLogger("flinkwire")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    if handler.records:
        record = handler.records[0]
        exc = record.exc_info[1]
        raise AssertionError(f"swallowed {type(exc).__name__}: {record.getMessage()}") from exc
