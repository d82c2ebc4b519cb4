"""The base-128 varint both Flink's StringValue and protobuf use: low 7 bits first,
the high bit saying more bytes follow."""


def read_varint(buf: bytes, pos: int, end: int, max_bytes: int = 10):
    """(value, next position) of the varint at `pos`, or None when it is cut or longer
    than `max_bytes` (5 for Flink's 32-bit lengths, 10 for protobuf's 64-bit fields)."""
    value = 0
    shift = 0
    for i in range(pos, min(end, pos + max_bytes)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    return None
