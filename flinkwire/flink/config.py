"""Reading a Flink configuration file and turning it into port roles and TLS settings.

Two formats exist. Flink 1.x reads ``flink-conf.yaml`` with its own line parser: each line is
cut at the first ``#`` and then at the first ``": "``, so the file need not be valid YAML, and
we read it the same way. ``config.yaml`` (1.19+, the only format in 2.x) is real YAML whose keys
may be nested (``rest: {port: 8081}``) or flat (``rest.port: 8081``); we flatten it to dotted
keys. A config.yaml that is not valid YAML falls back to the line parser.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any


from flinkwire.errors import ConfigError
from flinkwire.flink import knowledge

log = logging.getLogger(__name__)

__all__ = ["FlinkConfig", "load_config", "parse_ports", "PORT_KEYS"]

MAX_CONFIG_BYTES = 16 << 20
MAX_PORTS_PER_KEY = 65536
# YAML aliases may repeat a list or mapping anywhere, and nested aliases multiply: a few
# hundred bytes can stand for billions of values ("billion laughs"). A Flink config
# repeats little; past this many values added by aliases, the file is refused.
MAX_ALIAS_VALUES = 100_000
MASK = "******"

# Port-bearing keys, in precedence order (when two keys name the same port, the first wins),
# with the role of the socket they describe. "bind" marks the local socket's port, which is what
# a capture on the host shows; the plain key is the advertised port.
PORT_KEYS: tuple[tuple[str, str], ...] = (
    ("high-availability.jobmanager.port", "jobmanager-rpc"),
    ("jobmanager.rpc.bind-port", "jobmanager-rpc"),
    ("jobmanager.rpc.port", "jobmanager-rpc"),
    ("rest.bind-port", "rest"),
    ("rest.port", "rest"),
    ("blob.server.port", "blob"),
    ("taskmanager.rpc.bind-port", "taskmanager-rpc"),
    ("taskmanager.rpc.port", "taskmanager-rpc"),
    ("taskmanager.data.bind-port", "data"),
    ("taskmanager.data.port", "data"),
    ("metrics.internal.query-service.port", "metrics-rpc"),
    ("queryable-state.proxy.ports", "queryable-state"),
    ("queryable-state.server.ports", "queryable-state"),
    ("query.proxy.ports", "queryable-state"),   # pre-1.x names, still read as fallbacks
    ("query.server.ports", "queryable-state"),
    ("taskmanager.collect-sink.port", "collect-sink"),
    ("historyserver.web.port", "history-server"),
    ("sql-gateway.endpoint.rest.bind-port", "sql-gateway"),
    ("sql-gateway.endpoint.rest.port", "sql-gateway"),
    ("jmx.server.port", "jmx"),
)
_REPORTER_PORT = re.compile(r"metrics\.reporter\.([^.]+)\.port\Z")

# Deprecated names Flink still reads when the new one is unset (new -> old).
FALLBACK_KEYS: dict[str, tuple[str, ...]] = {
    "pekko.ssl.enabled": ("akka.ssl.enabled",),
    "security.ssl.internal.enabled": ("security.ssl.enabled",),
    "security.ssl.rest.enabled": ("security.ssl.enabled",),
    "queryable-state.proxy.ports": ("query.proxy.ports",),
    "queryable-state.server.ports": ("query.server.ports",),
    "high-availability.type": ("high-availability",),
}

# Keys that switch TLS per channel although they do not start with security.ssl.
TLS_SWITCH_KEYS = ("pekko.ssl.enabled", "akka.ssl.enabled", "blob.service.ssl.enabled",
                   "taskmanager.data.ssl.enabled", "historyserver.web.ssl.enabled")


def parse_ports(value: Any) -> list[int]:
    """Return the ports named by a port setting: 6123, "6123", "50100-50200", "6123,6124", lists.

    0 (the "pick a random port" value) and anything unparseable are left out; a range yields at
    most MAX_PORTS_PER_KEY ports.
    """
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value] if 0 < value < 65536 else []
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = str(value).split(",")
    ports: list[int] = []
    for item in items:
        if isinstance(item, (list, tuple, dict)):
            continue  # a port is a number, a range or a list of them, never a nested list
        if isinstance(item, int) and not isinstance(item, bool):
            if 0 < item < 65536:
                ports.append(item)
            continue
        text = str(item).strip()
        match = re.fullmatch(r"(\d{1,5})\s*-\s*(\d{1,5})", text)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            low, high = max(low, 1), min(high, 65535)
            ports.extend(range(low, high + 1)[:MAX_PORTS_PER_KEY])
        elif text.isdigit() and 0 < int(text) < 65536:
            ports.append(int(text))
    return ports


def _flatten(tree: dict, prefix: str = "", out: dict | None = None, depth: int = 0) -> dict:
    out = {} if out is None else out
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth < 32:
            _flatten(value, name + ".", out, depth + 1)
        else:
            out[name] = value
    return out


def _parse_lines(text: str) -> dict[str, str]:
    """Flink 1.x's own reading of flink-conf.yaml: cut at '#', then at the first ': '."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        conf = line.split("#", 1)[0].strip()
        if not conf:
            continue
        key, sep, value = conf.partition(": ")
        if not sep:
            if conf.endswith(":"):
                key, value = conf[:-1], ""
            else:
                log.debug("config line without ': ' ignored: %r", conf[:80])
                continue
        key = key.strip()
        if key:
            values[key] = value.strip()
    return values


class FlinkConfig:
    """A Flink configuration as flat dotted keys, with the views flinkwire needs."""

    def __init__(self, values: dict[str, Any], path: str | None = None,
                 file_format: str = "yaml"):
        self.values = dict(values)
        self.path = path
        self.format = file_format  # "yaml", "legacy" (flink-conf.yaml) or "lines" (bad YAML)
        self.major_version = self._guess_version()

    def __repr__(self) -> str:
        return f"<FlinkConfig {self.path or '(memory)'}: {len(self.values)} keys, {self.format}>"

    def _guess_version(self) -> str | None:
        # Only what the file proves: flink-conf.yaml is 1.x, pekko.* keys mean 1.18 or later.
        if self.format == "legacy":
            return "1"
        return None

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of `key` (or of a deprecated name Flink falls back to), else default."""
        if key in self.values:
            return self.values[key]
        for old in FALLBACK_KEYS.get(key, ()):
            if old in self.values:
                return self.values[old]
        return default

    def get_bool(self, key: str, default: bool | None = None) -> bool | None:
        """Return a boolean setting the way Flink reads it ("true"/"false", any case)."""
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "false"):
            return text == "true"
        return default

    def ha_enabled(self) -> bool:
        mode = str(self.get("high-availability.type", "") or "").strip().lower()
        return mode not in ("", "none", "null")

    def port_roles(self) -> dict[int, tuple[str, str]]:
        """Return {port: (role, evidence)} for every port the configuration names.

        Evidence reads "config rest.port=8081". In HA mode the JobManager RPC port comes from
        high-availability.jobmanager.port and jobmanager.rpc.port is not used, so it is only
        listed when HA is off. Reporter ports map to metrics-reporter (jmx for a JMX reporter);
        ZooKeeper quorum addresses map to zookeeper.
        """
        roles: dict[int, tuple[str, str]] = {}

        def add(port: int, role: str, evidence: str) -> None:
            if port not in roles:
                roles[port] = (role, evidence)

        ha = self.ha_enabled()
        for key, role in PORT_KEYS:
            if key not in self.values:
                continue
            if key == "jobmanager.rpc.port" and ha:
                continue
            if key == "high-availability.jobmanager.port" and not ha:
                continue
            value = self.values[key]
            for port in parse_ports(value):
                add(port, role, f"config {key}={_short(value)}")

        for key in sorted(self.values):
            match = _REPORTER_PORT.match(key)
            if not match:
                continue
            name = match.group(1)
            factory = str(self.values.get(f"metrics.reporter.{name}.factory.class")
                          or self.values.get(f"metrics.reporter.{name}.class") or "")
            role = "jmx" if "jmx" in factory.lower() else "metrics-reporter"
            for port in parse_ports(self.values[key]):
                add(port, role, f"config {key}={_short(self.values[key])}")

        quorum = self.get("high-availability.zookeeper.quorum")
        if quorum:
            for member in str(quorum).split(","):
                port = member.strip().rsplit(":", 1)[-1] if ":" in member else ""
                if port.isdigit() and 0 < int(port) < 65536:
                    add(int(port), "zookeeper",
                        f"config high-availability.zookeeper.quorum={_short(quorum)}")
        return roles

    def tls_settings(self) -> dict[str, Any]:
        """Return the security.ssl.* keys and the per-channel TLS switches that are set.

        Values of sensitive keys (keystore passwords) are masked as "******"; use secrets() for
        them. Also returns the effective "internal_enabled" and "rest_enabled" as Flink would
        compute them (including the 1.x security.ssl.enabled fallback).
        """
        settings: dict[str, Any] = {}
        for key in sorted(self.values):
            if key.startswith("security.ssl.") or key in TLS_SWITCH_KEYS:
                value = self.values[key]
                settings[key] = MASK if knowledge.is_sensitive_key(key) else value
        settings["internal_enabled"] = bool(self.get_bool("security.ssl.internal.enabled",
                                                          False))
        settings["rest_enabled"] = bool(self.get_bool("security.ssl.rest.enabled", False))
        return settings

    def secrets(self, version: str | None = None) -> list[tuple[str, Any]]:
        """Return (key, value) pairs whose key Flink treats as sensitive (newest list if None)."""
        return [(key, value) for key, value in self.values.items()
                if knowledge.is_sensitive_key(key, version) and value not in (None, "")]


def _short(value: Any, limit: int = 40) -> str:
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_config(path) -> FlinkConfig:
    """Read a Flink config file (config.yaml or flink-conf.yaml).

    Returns a FlinkConfig. Raises ConfigError(path, reason) when the file is missing, is not a
    regular file, is larger than 16 MiB, is not text, or its YAML aliases expand it beyond
    MAX_ALIAS_VALUES values more than it spells out.
    """
    name = os.fspath(path)
    try:
        if not os.path.isfile(name):
            raise ConfigError(name, "not found" if not os.path.exists(name)
                              else "not a regular file")
        if os.path.getsize(name) > MAX_CONFIG_BYTES:
            raise ConfigError(name, f"larger than {MAX_CONFIG_BYTES} bytes")
        with open(name, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(name, exc.strerror or str(exc)) from exc
    if b"\x00" in raw:
        raise ConfigError(name, "binary data, not a configuration file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(name, f"not UTF-8 text (byte {exc.start})") from exc
    try:
        return parse_config(text, name)
    except RecursionError:
        raise ConfigError(name, "nested too deeply to be a Flink configuration") from None


def parse_config(text: str, path: str | None = None) -> FlinkConfig:
    """Parse config text; flink-conf.yaml (by name) uses Flink 1.x's line rules, else YAML."""
    legacy = bool(path) and os.path.basename(path) == "flink-conf.yaml"
    if not legacy:
        # Imported here: an analysis without a config file does not load PyYAML (about
        # 20 ms of start-up).
        import yaml

        try:
            tree = yaml.load(text, Loader=_bounded_loader())
        except _AliasBomb as exc:
            raise ConfigError(path, str(exc)) from None
        except yaml.YAMLError as exc:
            log.info("%s is not valid YAML (%s); reading it line by line", path, exc)
        else:
            if tree is None:
                return FlinkConfig({}, path, "yaml")
            if isinstance(tree, dict):
                return FlinkConfig(_flatten({str(k): v for k, v in tree.items()}), path,
                                   "yaml")
        return FlinkConfig(_parse_lines(text), path, "lines")
    return FlinkConfig(_parse_lines(text), path, "legacy")


class _AliasBomb(Exception):
    pass


_LOADER = None


def _bounded_loader():
    """PyYAML's safe loader, refusing a document whose aliases add more than
    MAX_ALIAS_VALUES values (each counted once per place it is repeated) or refer to
    a list or mapping they are part of."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class BoundedLoader(yaml.SafeLoader):
            def compose_document(self):
                node = super().compose_document()
                if node is not None:
                    _check_expansion(node)
                return node

        _LOADER = BoundedLoader
    return _LOADER


def _check_expansion(root) -> None:
    """Count the values of `root` as a reader would see them, every alias expanded, without
    expanding them: the size of each node is computed once, by its identity."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _AliasBomb("an alias refers to a list or mapping it is part of")
        total = 1
        if isinstance(node.value, list):
            open_nodes.add(key)
            for child in node.value:
                if isinstance(child, tuple):  # a mapping's (key, value) pair
                    total += size(child[0]) + size(child[1])
                else:
                    total += size(child)
            open_nodes.discard(key)
        sizes[key] = total
        return total

    expanded = size(root)
    if expanded - len(sizes) > MAX_ALIAS_VALUES:
        raise _AliasBomb(f"its YAML aliases expand it to {expanded:,} values, far more than "
                         f"it spells out ({len(sizes):,}); refused as an alias bomb")

