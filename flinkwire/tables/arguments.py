"""The arguments of `analyze` and `analyze_iter`, refused up front when they are wrong.

A notebook user passes what a widget, an environment variable or a papermill
parameter gave them. Without these checks `reveal="False"` (a non-empty string)
revealed every secret, `b"cap.pcap"` was read as a list of numbers and `shards="2"`
failed deep inside with Python's own words. Each refusal names the argument.
"""

from __future__ import annotations

import numbers
import os

from ..tcp.flows import Limits


def _kind(value) -> str:
    return type(value).__name__


def check_arguments(path_or_paths, config, reveal, min_snippet, limits, shards=1):
    """`path_or_paths` as a path or a list of paths (a generator is read once, here);
    TypeError or ValueError, naming the argument, for anything `analyze` cannot take
    as meant."""
    # Redaction fails closed: only the bool True reveals, and anything but a bool is
    # refused rather than guessed ("False", "0" and "no" are all true as strings).
    if not isinstance(reveal, bool):
        raise TypeError(f"reveal must be True or False, not {reveal!r} ({_kind(reveal)})")

    if hasattr(path_or_paths, "read"):
        raise TypeError("path_or_paths must be the path of a capture (str or os.PathLike), "
                        f"not an open file ({_kind(path_or_paths)}); pass its name")
    if isinstance(path_or_paths, (bytes, bytearray)):
        raise TypeError("path_or_paths must be a str or os.PathLike path, or a list of them, "
                        f"not {_kind(path_or_paths)} (decode it with os.fsdecode)")
    if not isinstance(path_or_paths, (str, os.PathLike)):
        try:
            paths = list(path_or_paths)
        except TypeError:
            raise TypeError("path_or_paths must be a str or os.PathLike path, or a list of "
                            f"them, not {_kind(path_or_paths)}") from None
        if not paths:
            raise ValueError("path_or_paths is empty: name at least one capture")
        for path in paths:
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError("path_or_paths must hold str or os.PathLike paths, not "
                                f"{path!r:.60} ({_kind(path)})")
        path_or_paths = paths

    if config is not None and not isinstance(config, (str, os.PathLike)):
        raise TypeError("config must be the path of a Flink config file (config.yaml or "
                        f"flink-conf.yaml), not {_kind(config)}")
    if limits is not None and not isinstance(limits, Limits):
        raise TypeError(f"limits must be a flinkwire.Limits, not {_kind(limits)}")
    for name, value in (("min_snippet", min_snippet), ("shards", shards)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, not {value!r:.60} ({_kind(value)})")
    if shards < 1:
        raise ValueError(f"shards must be 1 or more, not {shards}")
    return path_or_paths
