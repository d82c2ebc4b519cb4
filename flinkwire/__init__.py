"""flinkwire: what an eavesdropper learns from an Apache Flink cluster, read from a capture.

    >>> import flinkwire
    >>> a = flinkwire.analyze("captures/s1-plaintext.pcap")
    >>> a.flows, a.channels, a.findings, a.snippets, a.anomalies

The top-level names load on first use, so `import flinkwire.reading` alone
does not pay for pandas.
"""

from .errors import CaptureError, ConfigError, FlinkwireError

__all__ = ["Analysis", "CaptureError", "ConfigError", "FlinkwireError", "Limits", "analyze",
           "analyze_iter", "default_capture"]
__version__ = "0.1.0"

_LAZY = {
    "Analysis": ("flinkwire.tables.analysis", "Analysis"),
    "analyze": ("flinkwire.tables.analysis", "analyze"),
    "analyze_iter": ("flinkwire.tables.progressive", "analyze_iter"),
    "default_capture": ("flinkwire.tables.analysis", "default_capture"),
    "Limits": ("flinkwire.tcp.flows", "Limits"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'flinkwire' has no attribute {name!r}")
