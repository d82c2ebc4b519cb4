"""Other engines that build flinkwire's tables from a capture (`analyze(..., engine=)`).

`tshark`: the `flows` table from Wireshark's dissectors, for link types and
encapsulations flinkwire's own reader does not know, and as a cross-check of
its verdicts.
"""

from ..errors import FlinkwireError


class EngineError(FlinkwireError):
    """An engine's external tool is missing or failed on a file it should read."""


__all__ = ["EngineError"]
