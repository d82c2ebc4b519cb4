"""Packets: link layers, VLAN tags, tunnels and IP headers down to TCP/UDP segments."""

from .decode import LINKTYPE_NAMES, Decoder, Segment

__all__ = ["LINKTYPE_NAMES", "Decoder", "Segment"]
