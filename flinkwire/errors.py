"""Exceptions flinkwire raises to its callers.

Malformed traffic is never an exception: it becomes a row of `anomalies`.
These types are for what stops an analysis before it starts.
"""


class FlinkwireError(Exception):
    """Base of every error flinkwire raises on purpose."""


class CaptureError(FlinkwireError):
    """The file cannot be read as a capture at all (missing, empty, not pcap/pcapng).

    `path` names the file and `reason` says what is wrong, in one line.
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Pickled by path and reason, so it crosses from a worker process intact.
        return type(self), (self.path, self.reason)


class ConfigError(FlinkwireError):
    """A Flink configuration file given by the user cannot be read."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason)


class WorkerError(FlinkwireError):
    """A worker process of a parallel analysis ended without returning its part."""
