"""Reading: capture files in, packet records out.

A record is the tuple ``(ts_ns, linktype, buf, offset, caplen, origlen)``: the
frame's bytes are ``buf[offset:offset + caplen]``. Records point into the block
of the file read last instead of copying each frame, because this is the one
loop that touches every byte of a gigabyte capture.

`open_capture` recognises the container by its magic, never by the file name:
classic pcap (both byte orders, µs and ns), pcapng (any number of sections and
interfaces) and either of them gzip-compressed. Damage inside a readable file
(a cut record, an impossible length) ends the walk at that point and is kept in
`CaptureInfo.anomalies`; only a file that is not a capture at all raises
`CaptureError`.
"""

from .capture import Capture, CaptureInfo, open_capture

__all__ = ["Capture", "CaptureInfo", "open_capture"]
