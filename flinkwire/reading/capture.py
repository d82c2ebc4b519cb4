"""Open a capture file and walk its packet records.

Theory of operation: the file is read in blocks of BLOCK_BYTES with `os.pread` (a
gzip file is first inflated into a private temporary file, removed on close), so
resident memory is a block or one record, not the file size. It is not
memory-mapped: a mapped file that another process cuts shorter (a tcpdump ring
buffer reusing its oldest file, a copy over it) kills the reader with SIGBUS at
the first page past the new end, which Python cannot catch; a read only returns
fewer bytes. The pcap walk and the pcapng walk are each one loop with
precompiled structs over the current block, reading the next one at the first
record the block does not hold whole; they stop at the first record whose header
or body the file cannot hold, and report that as an anomaly with its file
offset. They never seek backwards and never read past the size the file had
when it was opened.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CaptureError

log = logging.getLogger(__name__)

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", "us"),
    b"\xa1\xb2\xc3\xd4": (">", "us"),
    b"\x4d\x3c\xb2\xa1": ("<", "ns"),
    b"\xa1\xb2\x3c\x4d": (">", "ns"),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
SHB_BYTE_ORDERS = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
GZIP_MAGIC = b"\x1f\x8b"

# A record longer than this is a damaged length field, not a frame: the
# largest link-layer frames in practice (TSO, loopback) stay well below it.
MAX_RECORD_BYTES = 16 * 1024 * 1024
MAX_ANOMALIES_PER_KIND = 16
# Records are walked a block at a time: large enough that the read per block is a
# small part of the walk, small enough to stay in the processor's caches.
BLOCK_BYTES = 1 << 20

BLOCK_SHB = 0x0A0D0D0A
BLOCK_IDB = 1
BLOCK_OPB = 2
BLOCK_SPB = 3
BLOCK_EPB = 6


@dataclass
class CaptureInfo:
    """What the container says about itself, and what was wrong with it."""

    path: str
    format: str = ""
    byte_order: str = ""
    timestamp_resolution: str = ""
    snaplen: int = 0
    linktypes: list[int] = field(default_factory=list)
    compressed: bool = False
    file_size: int = 0
    records_total: int = 0
    records_complete: int = 0
    partial_records: int = 0
    sections: int = 0
    interfaces: int = 0
    anomalies: list[dict] = field(default_factory=list)
    # kind -> [rows not listed, file offset of the first]; see `anomaly`.
    unlisted: dict = field(default_factory=dict, repr=False)

    def anomaly(self, kind: str, file_offset: int, detail: str, **extra) -> None:
        """Record damage. Damage that repeats per block (every packet naming an
        interface whose description was destroyed) is listed MAX_ANOMALIES_PER_KIND
        times, then counted, so a damaged gigabyte costs rows, not memory."""
        if sum(1 for row in self.anomalies if row["kind"] == kind) >= MAX_ANOMALIES_PER_KIND:
            counted = self.unlisted.setdefault(kind, [0, file_offset])
            counted[0] += 1
            return
        row = {"kind": kind, "file_offset": file_offset, "detail": detail}
        row.update(extra)
        self.anomalies.append(row)
        log.warning("%s: %s at file offset %d: %s", self.path, kind, file_offset, detail)

    def list_unlisted(self) -> None:
        """One closing row per kind whose later anomalies were only counted."""
        for kind, (count, first) in sorted(self.unlisted.items()):
            self.anomalies.append({
                "kind": kind, "file_offset": first, "unlisted": count,
                "detail": f"{count} more {kind} anomalies from file offset {first} on "
                          "(not listed one by one)"})
            log.warning("%s: %d more %s anomalies from file offset %d on", self.path, count,
                        kind, first)
        self.unlisted = {}


class Capture:
    """An open capture: iterate it for records; close it (or use `with`)."""

    # Set before __init__ can fail, so that close() (from __del__) finds them.
    _file = None
    _tmp = None

    def __init__(self, path: str | os.PathLike):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"a capture is named by a path (str or os.PathLike), not "
                            f"{type(path).__name__}")
        self.path = Path(path)
        self.info = CaptureInfo(path=str(self.path))
        self._file = None
        self._tmp = None
        self._end = 0
        self.block_offset = 0  # file offset of the block `read_block` returned last
        self._open()

    def _open(self) -> None:
        try:
            # O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, for ever
            # when there is none. Reads block again once the file is known (below).
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise CaptureError(self.path, "no such file") from None
        except IsADirectoryError:
            raise CaptureError(self.path, "is a directory, not a capture file") from None
        except OSError as exc:
            raise CaptureError(self.path, f"cannot be opened ({exc.strerror})") from None
        mode = os.fstat(fd).st_mode
        refusal = None
        if stat.S_ISDIR(mode):
            refusal = "is a directory, not a capture file"
        elif not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            refusal = "is not a regular file or a pipe (a device or a socket)"
        if refusal is not None:
            os.close(fd)
            raise CaptureError(self.path, refusal)
        os.set_blocking(fd, True)
        self._file = os.fdopen(fd, "rb")
        piped = stat.S_ISFIFO(mode)

        head = self._file.read(4)
        if piped:
            if not head:
                self.close()
                # A pipe is read once: analysed with other captures or in shards, it is
                # opened again (after a check that took its bytes) and found drained.
                raise CaptureError(self.path, "is a pipe that gave no data (nothing writes to "
                                              "it, or it was read already: several captures "
                                              "or --shards need files)")
            refusal = self._copy_stream(head)
            head = self._file.read(4)
        elif head[:2] == GZIP_MAGIC:
            self._file.seek(0)
            refusal = self._inflate(self._file)
            head = self._file.read(4)
        self.info.file_size = self._end = os.fstat(self._file.fileno()).st_size
        if refusal is None:
            refusal = self._not_a_capture(head)
        if refusal is not None:
            self.close()
            raise CaptureError(self.path, refusal)

    def _copy_stream(self, head: bytes) -> str | None:
        """Read a pipe into the temporary file (inflating it if it is gzip) and read that
        instead, as `_inflate` does; returns why it is refused, else None. A stream that
        does not start like a capture or a gzip file is refused after its first bytes."""
        if head[:2] == GZIP_MAGIC:
            return self._inflate(_Prefixed(head, self._file))
        if head not in PCAP_MAGICS and head != PCAPNG_SHB:
            return self._not_a_capture(head)
        tmp = tempfile.NamedTemporaryFile(prefix="flinkwire-", suffix=".pcap", delete=False)
        self._tmp = tmp.name
        try:
            tmp.write(head)
            while chunk := self._file.read(1 << 20):
                tmp.write(chunk)
        finally:
            tmp.close()
        self._file.close()
        self._file = open(self._tmp, "rb")
        return None

    def _not_a_capture(self, head: bytes) -> str | None:
        """Why the file cannot be read as a capture at all, or None (format set).

        A file cut inside its pcap file header or its first pcapng section header
        holds no packet and says nothing about its link type: it is refused like a
        text file, in one line, not walked into an anomaly."""
        size = self.info.file_size
        if not head:
            return "is empty once inflated" if self.info.compressed else "is empty"
        if head in PCAP_MAGICS:
            self.info.format = "pcap"
            if size < 24:
                return f"is cut inside its pcap file header ({size} of its 24 bytes)"
            return None
        if head != PCAPNG_SHB:
            return f"is not a pcap or pcapng capture (starts with bytes {head.hex(' ')})"
        self.info.format = "pcapng"
        if size < 28:
            return f"is cut inside its pcapng section header ({size} of at least 28 bytes)"
        self._file.seek(4)
        raw = self._file.read(8)
        magic = raw[4:]
        if magic not in SHB_BYTE_ORDERS:
            return ("is not a pcapng capture (its section header has byte-order magic "
                    f"{magic.hex(' ')})")
        length = struct.unpack(SHB_BYTE_ORDERS[magic] + "I", raw[:4])[0]
        if length > size:
            return (f"is cut inside its pcapng section header ({size} of its {length} "
                    "bytes)")
        return None

    def _inflate(self, source) -> str | None:
        """Inflate `source` into the temporary file and read that instead; returns why
        the file is refused when the gzip stream gave not one byte, else None."""
        self.info.compressed = True
        tmp = tempfile.NamedTemporaryFile(prefix="flinkwire-", suffix=".pcap", delete=False)
        self._tmp = tmp.name
        try:
            damage = _gunzip(source, tmp)
            inflated = tmp.tell()
        finally:
            tmp.close()
        self._file.close()
        self._file = open(self._tmp, "rb")
        for offset, kind, reason in damage:
            if isinstance(reason, zlib.error):
                reason = _zlib_reason(reason)
            if not inflated and kind == "corrupt":
                return f"is not a valid gzip file ({reason})"
            if not inflated and kind == "cut":
                return f"is a gzip file cut short before any of its content ({reason})"
            if kind == "checksum":
                self.info.anomaly("gzip-checksum", offset, reason)
            elif kind == "limit":
                self.info.anomaly("limit", offset, f"gzip stream {reason}")
            else:
                # A cut or corrupt gzip stream still gives what was inflated before it.
                self.info.anomaly("truncated-gzip", offset, f"gzip stream ends early ({reason})")
        return None

    def read_block(self, offset: int, wanted: int) -> bytes:
        """The file's bytes from `offset` on: at least `wanted` of them (BLOCK_BYTES where
        the file holds that many), fewer only where the file ends. It ends at its size
        when opened (what is appended later is not read), or earlier where it was cut
        while being read: that is a `truncated_while_read` anomaly, and the walk stops
        there like at any cut record."""
        self.block_offset = offset
        size = min(max(wanted, BLOCK_BYTES), self._end - offset)
        if size <= 0 or self._file is None:
            return b""
        block = os.pread(self._file.fileno(), size, offset)
        while len(block) < size:
            more = os.pread(self._file.fileno(), size - len(block), offset + len(block))
            if not more:
                # The file may end before `offset` itself: that is where it was cut.
                self._cut(min(offset + len(block), os.fstat(self._file.fileno()).st_size))
                break
            block += more
        return block

    def _cut(self, now: int) -> None:
        self.info.anomaly("truncated_while_read", now,
                          f"the file was cut while being read: it now ends at byte {now}, "
                          f"it had {self.info.file_size} bytes when opened; the rest is "
                          "not read", bytes_present=now, bytes_when_opened=self.info.file_size)
        self._end = now

    def __iter__(self):
        if self._file is None:
            return iter(())
        if self.info.format == "pcap":
            return _walk_pcap(self, self.info)
        return _walk_pcapng(self, self.info)

    def pcap_records(self):
        """The `pcap_layout` of a classic pcap, for a caller that walks its records
        itself through `read_block` (they start at file offset 24); None for any other
        capture, which is read by iterating it."""
        if self._file is None or self.info.format != "pcap":
            return None
        return pcap_layout(self.read_block(0, 24), self.info)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


class _Prefixed:
    """A stream's first bytes, already read, put back in front of the rest of it."""

    def __init__(self, head: bytes, rest):
        self.head = head
        self.rest = rest

    def read(self, size: int) -> bytes:
        if self.head:
            part, self.head = self.head[:size], self.head[size:]
            return part
        return self.rest.read(size)


# Packet captures deflate by 2-20x; far beyond that the file is built to fill the
# disk, so inflation stops there (the part inflated is still analysed).
MAX_GZIP_RATIO = 200
MIN_GZIP_ALLOWANCE = 256 * 1024 * 1024
# A member's optional name and comment end at a zero byte; one that runs on for
# longer than this is not a gzip header but damage.
MAX_GZIP_HEADER = 64 * 1024

GZIP_FHCRC, GZIP_FEXTRA, GZIP_FNAME, GZIP_FCOMMENT = 0x02, 0x04, 0x08, 0x10
GZIP_RESERVED = 0xE0


class _Compressed:
    """The bytes of `source`, read a chunk at a time, and the file offset of the
    first byte not yet taken (`offset`), so that damage is reported where it is."""

    def __init__(self, source, chunk: int):
        self.source = source
        self.chunk = chunk
        self.data = b""
        self.offset = 0
        self.read_total = 0

    def fill(self, wanted: int) -> bool:
        """At least `wanted` bytes in `data`; False where the file ends before."""
        while len(self.data) < wanted:
            more = self.source.read(self.chunk)
            if not more:
                return False
            self.read_total += len(more)
            self.data += more
        return True

    def take(self, count: int) -> bytes:
        part, self.data = self.data[:count], self.data[count:]
        self.offset += len(part)
        return part

    def keep(self, rest: bytes) -> None:
        """What the inflater left of `data`: the bytes before it were consumed."""
        self.offset += len(self.data) - len(rest)
        self.data = rest

    def skip_zeros(self) -> bool:
        """Past any zero padding; False where the file ends first."""
        while True:
            if not self.data and not self.fill(1):
                return False
            rest = self.data.lstrip(b"\x00")
            self.keep(rest)
            if rest:
                return True


def _gunzip(source, sink, chunk: int = 1 << 20) -> list[tuple[int, str, object]]:
    """Inflate every gzip member of `source` into `sink`.

    Returns the damage met, in file order, as (compressed offset, kind, reason):
    kind "checksum" where a member's CRC-32 or length does not match what it
    inflated to (inflation goes on: the bytes are read as they are), and last,
    where inflation stopped early, "corrupt" (the reason is the `zlib.error`, or
    a sentence about the header), "cut" or "limit".

    Members are inflated as raw deflate behind a header parsed here, and their
    trailers are checked here, because zlib's own gzip mode raises at a bad
    trailer and drops the output of the call that met it: a file whose only
    damage was its checksum came out empty. Unlike `GzipFile.read`, everything
    inflated before a cut or corrupt block is written.
    """
    reader = _Compressed(source, chunk)
    damage: list[tuple[int, str, object]] = []
    written = 0
    while reader.skip_zeros():
        start = reader.offset
        problem = _gzip_header(reader)
        if problem is not None:
            damage.append((start, *problem))
            return damage
        inflater = zlib.decompressobj(wbits=-15)
        crc = 0
        size = 0
        while not inflater.eof:
            if not reader.data and not reader.fill(1):
                piece = inflater.flush()
                sink.write(piece)
                damage.append((reader.offset, "cut",
                               "compressed file ended before the end-of-stream marker"))
                return damage
            at = reader.offset
            try:
                piece = inflater.decompress(reader.data, chunk)
            except zlib.error as exc:
                damage.append((at, "corrupt", exc))
                return damage
            reader.keep(inflater.unused_data if inflater.eof else inflater.unconsumed_tail)
            written += len(piece)
            if written > max(MAX_GZIP_RATIO * max(reader.read_total, 1), MIN_GZIP_ALLOWANCE):
                damage.append((reader.read_total, "limit",
                               f"inflates beyond {MAX_GZIP_RATIO} times its compressed size "
                               "(a gzip bomb?); the rest is not inflated"))
                return damage
            sink.write(piece)
            crc = zlib.crc32(piece, crc)
            size += len(piece)
        at = reader.offset
        if not reader.fill(8):
            damage.append((at, "cut", "compressed file ended inside a member's trailer"))
            return damage
        want_crc, want_size = struct.unpack("<II", reader.take(8))
        if want_crc != crc or want_size != size & 0xFFFFFFFF:
            damage.append((at, "checksum",
                           f"a member's trailer says CRC-32 {want_crc:08x} and {want_size} "
                           f"bytes, its data inflated to CRC-32 {crc:08x} and "
                           f"{size & 0xFFFFFFFF} bytes; read as inflated"))
    return damage


def _gzip_header(reader: _Compressed) -> tuple[str, str] | None:
    """Take one member header (RFC 1952, section 2.3) off `reader`; returns
    (kind, reason) where it is not one, else None."""
    if not reader.fill(10):
        return "cut", "compressed file ended inside a member's header"
    fixed = reader.data[:10]
    if fixed[:2] != GZIP_MAGIC:
        return "corrupt", f"bytes {fixed[:2].hex(' ')} where a gzip member should start"
    if fixed[2] != 8:
        return "corrupt", f"unknown compression method {fixed[2]}"
    flags = fixed[3]
    if flags & GZIP_RESERVED:
        return "corrupt", f"reserved header flags set ({flags:#04x})"
    end = 10
    if flags & GZIP_FEXTRA:
        if not reader.fill(end + 2):
            return "cut", "compressed file ended inside a member's header"
        end += 2 + int.from_bytes(reader.data[end:end + 2], "little")
    for flag in (GZIP_FNAME, GZIP_FCOMMENT):
        if flags & flag:
            while (zero := reader.data.find(b"\x00", end)) < 0:
                if len(reader.data) > MAX_GZIP_HEADER:
                    return "corrupt", f"a member's name or comment runs past {MAX_GZIP_HEADER} bytes"
                if not reader.fill(len(reader.data) + 1):
                    return "cut", "compressed file ended inside a member's header"
            end = zero + 1
    if flags & GZIP_FHCRC:
        end += 2
    if not reader.fill(end):
        return "cut", "compressed file ended inside a member's header"
    # A header CRC (FHCRC), where present, guards only the fields just skipped.
    reader.take(end)
    return None


def _zlib_reason(exc: zlib.error) -> str:
    # "Error -3 while decompressing data: invalid block type" -> "invalid block type"
    return str(exc).rpartition(": ")[2]


def open_capture(path: str | os.PathLike) -> Capture:
    """Open `path` as a capture; raises `CaptureError` if it is not one."""
    return Capture(path)


def _walk_pcap(capture: Capture, info: CaptureInfo):
    linktype, header, scale, frac_limit, limit = pcap_layout(capture.read_block(0, 24), info)
    base, buf, pos, end = 24, b"", 0, 0  # buf holds the file from offset base; pos in buf
    bad_frac = 0
    while True:
        if pos + 16 > end:
            base += pos
            buf = pcap_block(capture, base, limit, bad_frac=bad_frac)
            if buf is None:
                return
            pos, end = 0, len(buf)
        sec, frac, incl, orig = header(buf, pos)
        body = pos + 16
        if incl > limit:
            pcap_stop(info, base + pos, base + end, limit, incl)
            return
        if body + incl > end:
            base += pos
            buf = pcap_block(capture, base, limit, incl)
            if buf is None:
                return
            pos, end, body = 0, len(buf), 16
        if frac >= frac_limit:
            bad_frac += 1
        info.records_total += 1
        info.records_complete += 1
        yield sec * 1_000_000_000 + frac * scale, linktype, buf, body, incl, orig
        pos = body + incl


def pcap_layout(buf, info: CaptureInfo):
    """Read a classic pcap file header into `info`.

    Returns (linktype, record header unpacker, timestamp scale to ns, sub-second
    limit, longest record accepted). `buf` holds the whole 24-byte file
    header (`open_capture` refuses a file cut inside it); records follow it.
    `_walk_pcap` and the packet loop of `tcp.build` (which walks records itself)
    share it and `pcap_stop`.
    """
    order, resolution = PCAP_MAGICS[bytes(buf[:4])]
    info.byte_order = "little" if order == "<" else "big"
    info.timestamp_resolution = resolution
    _, _, _, _, snaplen, network = struct.unpack_from(order + "HHiIII", buf, 4)
    linktype = network & 0x0FFFFFFF
    info.snaplen = snaplen
    info.linktypes = [linktype]
    info.sections = 1
    info.interfaces = 1
    scale = 1000 if resolution == "us" else 1
    frac_limit = 1_000_000 if resolution == "us" else 1_000_000_000
    header = struct.Struct(order + "IIII").unpack_from
    limit = max(snaplen, 262144, MAX_RECORD_BYTES) if snaplen else MAX_RECORD_BYTES
    return linktype, header, scale, frac_limit, limit


def pcap_block(capture: Capture, base: int, limit: int, incl: int | None = None,
               bad_frac: int = 0) -> bytes | None:
    """The next block of a classic pcap, from the record at file offset `base`: one that
    holds its header (`incl` None) or, once its header was read, the whole record. None
    where the file ends first, with the reason recorded (`pcap_stop`, or at the very end
    `pcap_bad_timestamps`)."""
    wanted = 16 if incl is None else 16 + incl
    buf = capture.read_block(base, wanted)
    if len(buf) >= wanted:
        return buf
    if buf or incl is not None:
        pcap_stop(capture.info, base, base + len(buf), limit, incl)
    else:
        pcap_bad_timestamps(capture.info, bad_frac)
    return None


def pcap_stop(info: CaptureInfo, off: int, end: int, limit: int, incl: int | None = None):
    """Record why the pcap walk ends at the record at `off` (its header or body cut,
    or a length past `limit`); `incl` is None when the header itself is cut."""
    if incl is None:
        info.partial_records += 1
        info.anomaly("truncated_record_header", off,
                     f"record header needs 16 bytes, {end - off} present",
                     bytes_present=end - off, bytes_needed=16)
    elif incl > limit:
        info.anomaly("bad_record_length", off,
                     f"record claims {incl} captured bytes (limit {limit}); "
                     "the rest of the file is not read", incl_len=incl)
    else:
        # A file cut while it was read may now end before this record's data, or its header.
        present = max(end - off - 16, 0)
        info.partial_records += 1
        info.anomaly("truncated_record_data", off, f"record claims {incl} bytes, {present} present",
                     incl_len=incl, bytes_present=present)


def pcap_bad_timestamps(info: CaptureInfo, bad_frac: int) -> None:
    """The anomaly for a pcap walked to its end with `bad_frac` impossible sub-seconds."""
    if bad_frac:
        info.anomaly("invalid_timestamp", 24,
                     f"{bad_frac} records have a sub-second field of one second or more",
                     records=bad_frac)


def _resolution_factor(tsresol: int) -> tuple[int, int]:
    """(multiply, divide) turning interface time units into nanoseconds."""
    if tsresol & 0x80:
        return 1_000_000_000, 1 << (tsresol & 0x7F)
    exp = tsresol & 0x7F
    if exp <= 9:
        return 10 ** (9 - exp), 1
    return 1, 10 ** (exp - 9)


def _walk_pcapng(capture: Capture, info: CaptureInfo):
    buf, base = b"", 0  # buf holds the file from offset base; off is a block's file offset
    off = 0
    order = "<"
    u32 = struct.Struct("<I").unpack_from
    epb = struct.Struct("<IIIII").unpack_from
    interfaces: list[tuple[int, int, int, int]] = []  # linktype, mul, div, offset_ns
    resolutions: set[str] = set()
    while True:
        at = off - base
        if at + 12 > len(buf):
            buf, base, at = capture.read_block(off, 12), off, 0
            if len(buf) < 12:
                if buf:
                    info.partial_records += 1
                    info.anomaly("truncated_block_header", off,
                                 f"block header needs 12 bytes, {len(buf)} present",
                                 bytes_present=len(buf), bytes_needed=12)
                break
        raw_type = buf[at:at + 4]
        if raw_type == PCAPNG_SHB:
            order = SHB_BYTE_ORDERS.get(buf[at + 8:at + 12])
            if order is None:
                info.anomaly("bad_section_header", off, "byte-order magic not recognised")
                break
            u32 = struct.Struct(order + "I").unpack_from
            epb = struct.Struct(order + "IIIII").unpack_from
            info.sections += 1
            if not info.byte_order:
                info.byte_order = "little" if order == "<" else "big"
            interfaces = []
        btype = u32(buf, at)[0]
        blen = u32(buf, at + 4)[0]
        if blen < 12 or blen % 4 or blen > MAX_RECORD_BYTES + 64:
            info.anomaly("bad_block_length", off,
                         f"block type {btype:#x} claims length {blen}; the rest is not read",
                         block_length=blen)
            break
        if at + blen > len(buf):
            buf, base, at = capture.read_block(off, blen), off, 0
        if blen > len(buf):
            is_packet = btype in (BLOCK_EPB, BLOCK_SPB, BLOCK_OPB)
            if is_packet:
                info.partial_records += 1
            info.anomaly("truncated_record_data" if is_packet else "truncated_block", off,
                         f"block type {btype:#x} claims {blen} bytes, {len(buf)} present",
                         block_length=blen, bytes_present=len(buf))
            break
        body = at + 8
        body_end = at + blen - 4
        if btype == BLOCK_EPB:
            info.records_total += 1
            if body + 20 > body_end:
                info.anomaly("bad_record_length", off, "enhanced packet block too short")
            else:
                ifid, ts_hi, ts_lo, caplen, origlen = epb(buf, body)
                data = body + 20
                if ifid >= len(interfaces):
                    _unknown_interface(info, off, ifid)
                elif data + caplen > body_end:
                    info.anomaly("bad_record_length", off,
                                 "captured length runs past its block", incl_len=caplen)
                else:
                    linktype, mul, div, ts_off = interfaces[ifid]
                    ts = ((ts_hi << 32) | ts_lo) * mul // div + ts_off
                    info.records_complete += 1
                    yield ts, linktype, buf, data, caplen, origlen
        elif btype == BLOCK_SPB:
            info.records_total += 1
            if interfaces and body + 4 <= body_end:
                origlen = u32(buf, body)[0]
                linktype, _, _, _ = interfaces[0]
                caplen = min(origlen, body_end - body - 4)
                info.records_complete += 1
                yield 0, linktype, buf, body + 4, caplen, origlen
            elif not interfaces:
                _unknown_interface(info, off, 0)
            else:
                info.anomaly("bad_record_length", off, "simple packet block too short")
        elif btype == BLOCK_OPB:
            info.records_total += 1
            if body + 20 > body_end:
                info.anomaly("bad_record_length", off, "packet block does not fit")
            else:
                head = struct.unpack_from(order + "HHIIII", buf, body)
                ifid, _, ts_hi, ts_lo, caplen, origlen = head
                data = body + 20
                if ifid >= len(interfaces):
                    _unknown_interface(info, off, ifid)
                elif data + caplen > body_end:
                    info.anomaly("bad_record_length", off, "packet block does not fit")
                else:
                    linktype, mul, div, ts_off = interfaces[ifid]
                    ts = ((ts_hi << 32) | ts_lo) * mul // div + ts_off
                    info.records_complete += 1
                    yield ts, linktype, buf, data, caplen, origlen
        elif btype == BLOCK_IDB:
            if body + 8 > body_end:
                info.anomaly("bad_block_length", off, "interface block too short")
            else:
                linktype, _, snaplen = struct.unpack_from(order + "HHI", buf, body)
                tsresol, tsoffset = _idb_options(buf, body + 8, body_end, order)
                mul, div = _resolution_factor(tsresol)
                resolutions.add({6: "us", 9: "ns", 3: "ms"}.get(tsresol, f"resol {tsresol:#x}"))
                interfaces.append((linktype, mul, div, tsoffset * 1_000_000_000))
                info.interfaces += 1
                if linktype not in info.linktypes:
                    info.linktypes.append(linktype)
                info.snaplen = max(info.snaplen, snaplen)
        # Any other block (name resolution, statistics, custom, decryption
        # secrets, ...) carries no packet and is skipped by its length.
        off += blen
    info.timestamp_resolution = ",".join(sorted(resolutions)) if resolutions else ""
    info.list_unlisted()


def _unknown_interface(info: CaptureInfo, off: int, ifid: int) -> None:
    # Without its interface block a packet has no link type, so it cannot be decoded;
    # tshark stops the whole file there, this walk skips the packet and goes on.
    info.anomaly("unknown_interface", off,
                 f"packet names interface {ifid}, which no interface block of its section "
                 "describes", interface=ifid)


def _idb_options(buf, off: int, end: int, order: str) -> tuple[int, int]:
    """if_tsresol and if_tsoffset of an interface block (defaults: µs, 0)."""
    tsresol, tsoffset = 6, 0
    opt = struct.Struct(order + "HH").unpack_from
    while off + 4 <= end:
        code, length = opt(buf, off)
        if code == 0:
            break
        value = off + 4
        if value + length > end:
            break
        if code == 9 and length >= 1:
            tsresol = buf[value]
        elif code == 14 and length >= 8:
            tsoffset = struct.unpack_from(order + "q", buf, value)[0]
        off = value + ((length + 3) & ~3)
    return tsresol, tsoffset
