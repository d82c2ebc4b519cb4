"""Turn one link-layer frame into a TCP or UDP segment, without building objects.

Theory of operation: `Decoder.decode` is called once per packet of the capture,
so it reads headers with precompiled `struct`s straight from the file's block and
returns a plain tuple (`Segment` names its fields). Everything it cannot use
(ARP, ICMP, IP fragments, unknown link types, headers cut by the snap length)
is counted in `Decoder.skipped` by reason instead of raising; counts become
anomaly rows. Supported: Ethernet with any stack of 802.1Q/802.1ad/QinQ tags,
Linux SLL and SLL2, raw IP (101, 12, 14, 228, 229), BSD NULL and LOOP, IPv4
with options, IPv6 with hop-by-hop/routing/destination/AH extension headers,
and the tunnels VXLAN (UDP 4789), GTP-U (UDP 2152), GRE and IP-in-IP, whose inner
packet is decoded in place of the outer one.
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import NamedTuple

LINKTYPE_NAMES = {
    0: "BSD loopback (NULL)",
    1: "Ethernet",
    12: "raw IP",
    14: "raw IP",
    101: "raw IP",
    108: "OpenBSD loopback",
    113: "Linux cooked (SLL)",
    228: "raw IPv4",
    229: "raw IPv6",
    276: "Linux cooked v2 (SLL2)",
}

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TYPES = (0x8100, 0x88A8, 0x9100, 0x9200)
VXLAN_PORT = 4789
GTPU_PORT = 2152
GRE = 47
IPIP = (4, 41)
MAX_TUNNEL_DEPTH = 4
MAX_IPV6_EXTENSIONS = 64  # far more than any real stack sends, still a bound
IPV6_EXTENSIONS = (0, 43, 60, 135, 139, 140)
TCP = 6
UDP = 17


class Segment(NamedTuple):
    """Field order of the tuples `Decoder.decode` returns."""

    proto: int        # 6 TCP, 17 UDP
    src: bytes        # 4 or 16 address bytes
    sport: int
    dst: bytes
    dport: int
    seq: int          # TCP only (0 for UDP)
    ack: int
    flags: int        # TCP flags byte (FIN 1, SYN 2, RST 4, PSH 8, ACK 16)
    start: int        # payload = buf[start:end]
    end: int
    ip_id: int        # IPv4 identification, -1 for IPv6
    checksum: int     # TCP/UDP checksum as written (tells -i any copies apart)
    vlan: tuple       # VLAN ids outermost first, () when untagged


_u16 = struct.Struct("!H").unpack_from
_ipv4 = struct.Struct("!BBHHHBBH4s4s").unpack_from
_ipv6_len_next = struct.Struct("!HB").unpack_from
_tcp = struct.Struct("!HHIIBBHH").unpack_from
_udp = struct.Struct("!HHHH").unpack_from
_null_le = struct.Struct("<I").unpack_from
# Ethernet type + a 20-byte IPv4 header + a TCP header, read at once: the shape of
# nearly every packet in a Flink capture, so it gets a path of its own, here and in
# the packet loop of `tcp.build`. The fields neither path reads (TOS, TTL, IP
# checksum, TCP window) are skipped as pad bytes.
# Fields: ethertype, version+IHL, total length, IP id, fragment, protocol, source,
# destination, source port, destination port, seq, ack, data offset, flags, checksum.
_eth_ipv4_tcp = struct.Struct("!HBxHHHxBxx4s4sHHIIBBxxH").unpack_from
# The same for the packet loop, with the addresses and ports as one 12-byte field, in
# wire order: the flow table finds a segment's flow by these bytes (`tcp.flows.wire_key`)
# with no tuple to build and order (7% fewer instructions in the packet path).
ETH_IPV4_TCP_WIRE = struct.Struct("!HBxHHHxBxx12sIIBBxxH").unpack_from
_null_be = struct.Struct(">I").unpack_from

AF_INET6_VALUES = (10, 24, 28, 30)


class Decoder:
    """Stateless apart from its counters; one per analysis."""

    def __init__(self):
        self.skipped: Counter = Counter()
        self.vxlan = 0
        self.tunnelled = 0
        self._depth = 0

    def decode(self, linktype: int, buf, off: int, caplen: int):
        """A `Segment` tuple for a TCP/UDP frame, else None (reason counted)."""
        end = off + caplen
        if linktype == 1 and caplen >= 54:
            (etype, vihl, total, ip_id, frag, proto, src, dst, sport, dport, seq, ack, doff,
             flags, csum) = _eth_ipv4_tcp(buf, off + 12)
            if etype == ETH_IPV4 and vihl == 0x45 and proto == TCP and not frag & 0x3FFF \
                    and doff >= 0x50:
                ip_end = off + 14 + total if total >= 20 else end
                if ip_end > end:
                    ip_end = end
                start = off + 34 + (doff >> 4) * 4
                if start <= ip_end:
                    return (TCP, src, sport, dst, dport, seq, ack, flags, start, ip_end, ip_id,
                            csum, ())
        vlan = ()
        if linktype == 1:
            if caplen < 14:
                self.skipped["truncated link header"] += 1
                return None
            etype = _u16(buf, off + 12)[0]
            off += 14
            while etype in VLAN_TYPES:
                if off + 4 > end:
                    self.skipped["truncated VLAN tag"] += 1
                    return None
                vlan = vlan + (_u16(buf, off)[0] & 0x0FFF,)
                etype = _u16(buf, off + 2)[0]
                off += 4
        elif linktype == 113:
            if caplen < 16:
                self.skipped["truncated link header"] += 1
                return None
            etype = _u16(buf, off + 14)[0]
            off += 16
        elif linktype == 276:
            if caplen < 20:
                self.skipped["truncated link header"] += 1
                return None
            etype = _u16(buf, off)[0]
            off += 20
        elif linktype in (101, 12, 14, 228, 229):
            if caplen < 1:
                self.skipped["empty frame"] += 1
                return None
            version = buf[off] >> 4
            etype = ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else -1
            if etype == -1:
                self.skipped[f"IP version {version} in raw-IP frame"] += 1
                return None
        elif linktype in (0, 108):
            if caplen < 4:
                self.skipped["truncated link header"] += 1
                return None
            family = (_null_be if linktype == 108 else _null_le)(buf, off)[0]
            if family > 0xFFFF and linktype == 0:
                family = _null_be(buf, off)[0]  # written by a big-endian host
            off += 4
            etype = ETH_IPV4 if family == 2 else ETH_IPV6 if family in AF_INET6_VALUES else -1
            if etype == -1:
                self.skipped[f"loopback family {family}"] += 1
                return None
        else:
            self.skipped[f"link type {linktype} not decoded"] += 1
            return None

        if etype == ETH_IPV4:
            return self._ipv4(buf, off, end, vlan)
        if etype == ETH_IPV6:
            return self._ipv6(buf, off, end, vlan)
        self.skipped["not IP"] += 1
        return None

    def _inner(self, linktype: int, buf, off: int, end: int):
        """Decode a tunnelled packet (bounded depth: tunnels inside tunnels end)."""
        if self._depth >= MAX_TUNNEL_DEPTH or off >= end:
            self.skipped["tunnel too deep or empty"] += 1
            return None
        self._depth += 1
        try:
            self.tunnelled += 1
            return self.decode(linktype, buf, off, end - off)
        finally:
            self._depth -= 1

    def _gre(self, buf, off, end):
        if off + 4 > end:
            self.skipped["truncated GRE header"] += 1
            return None
        flags, proto = struct.unpack_from("!HH", buf, off)
        hlen = 4 + 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
        inner = off + hlen
        if proto == 0x6558:
            return self._inner(1, buf, inner, end)
        if proto in (ETH_IPV4, ETH_IPV6):
            return self._inner(101, buf, inner, end)
        self.skipped[f"GRE protocol {proto:#x}"] += 1
        return None

    def _gtpu(self, buf, off, end):
        # GTPv1-U: 8-byte header, 4 more when E, S or PN is set, then extension headers.
        if off + 8 > end or buf[off] >> 5 != 1 or buf[off + 1] != 0xFF:
            return None
        flags = buf[off]
        pos = off + 8
        if flags & 0x07:
            if pos + 4 > end:
                return None
            next_ext = buf[pos + 3]
            pos += 4
            hops = 0
            while next_ext and pos < end and hops < 8:
                length = buf[pos] * 4
                if not length or pos + length > end:
                    return None
                next_ext = buf[pos + length - 1]
                pos += length
                hops += 1
        if pos < end and buf[pos] >> 4 in (4, 6):
            return self._inner(101, buf, pos, end)
        return None

    def _ipv4(self, buf, off, end, vlan):
        if off + 20 > end:
            self.skipped["truncated IPv4 header"] += 1
            return None
        vihl, _, total, ip_id, frag, _, proto, _, src, dst = _ipv4(buf, off)
        if vihl >> 4 != 4:
            self.skipped["bad IPv4 version"] += 1
            return None
        ihl = (vihl & 0x0F) * 4
        if ihl < 20:
            self.skipped["bad IPv4 header length"] += 1
            return None
        if frag & 0x3FFF:
            self.skipped["IPv4 fragment"] += 1
            return None
        # Trust the IP total length over the frame length (Ethernet padding),
        # unless it is zero (TSO captures) or promises more than was captured.
        ip_end = off + total if total >= ihl else end
        if ip_end > end:
            ip_end = end
        return self._transport(proto, buf, off + ihl, ip_end, src, dst, ip_id, vlan)

    def _ipv6(self, buf, off, end, vlan):
        if off + 40 > end:
            self.skipped["truncated IPv6 header"] += 1
            return None
        if buf[off] >> 4 != 6:
            self.skipped["bad IPv6 version"] += 1
            return None
        plen, proto = _ipv6_len_next(buf, off + 4)
        src = bytes(buf[off + 8:off + 24])
        dst = bytes(buf[off + 24:off + 40])
        ip_end = off + 40 + plen if plen else end
        if ip_end > end:
            ip_end = end
        off += 40
        hops = 0
        while proto in IPV6_EXTENSIONS or proto == 51 or proto == 44:
            if hops >= MAX_IPV6_EXTENSIONS:
                self.skipped["too many IPv6 extension headers"] += 1
                return None
            if off + 8 > ip_end:
                self.skipped["truncated IPv6 extension header"] += 1
                return None
            if proto == 44:
                if _u16(buf, off + 2)[0] & 0xFFF9:
                    self.skipped["IPv6 fragment"] += 1
                    return None
                length = 8
            elif proto == 51:
                length = (buf[off + 1] + 2) * 4
            else:
                length = (buf[off + 1] + 1) * 8
            proto = buf[off]
            off += length
            hops += 1
        return self._transport(proto, buf, off, ip_end, src, dst, -1, vlan)

    def _transport(self, proto, buf, off, end, src, dst, ip_id, vlan):
        if proto == TCP:
            if off + 20 > end:
                self.skipped["truncated TCP header"] += 1
                return None
            sport, dport, seq, ack, doff, flags, _, csum = _tcp(buf, off)
            hlen = (doff >> 4) * 4
            if hlen < 20:
                self.skipped["bad TCP header length"] += 1
                return None
            start = off + hlen
            if start > end:
                self.skipped["truncated TCP options"] += 1
                return None
            return (TCP, src, sport, dst, dport, seq, ack, flags, start, end, ip_id, csum, vlan)
        if proto in IPIP:
            return self._inner(101, buf, off, end)
        if proto == GRE:
            return self._gre(buf, off, end)
        if proto == UDP:
            if off + 8 > end:
                self.skipped["truncated UDP header"] += 1
                return None
            sport, dport, ulen, csum = _udp(buf, off)
            uend = off + ulen if 8 <= ulen and off + ulen <= end else end
            if (dport == VXLAN_PORT or sport == VXLAN_PORT) and uend - off >= 8 + 8 + 14:
                if buf[off + 8] & 0x08:
                    self.vxlan += 1
                    inner = self.decode(1, buf, off + 16, uend - off - 16)
                    if inner is not None:
                        return inner
                    return None
            if dport == GTPU_PORT or sport == GTPU_PORT:
                inner = self._gtpu(buf, off + 8, uend)
                if inner is not None:
                    return inner
            return (UDP, src, sport, dst, dport, 0, 0, 0, off + 8, uend, ip_id, csum, vlan)
        self.skipped[f"IP protocol {proto}"] += 1
        return None
