"""What flinkwire knows about Flink, as data.

Every table here comes from docs/flink-wire-facts.md (which names the jar or file each fact was
read from). A new Flink version should be an edit to these tables, not to the parsers or the
role logic. Roles are the channel names used throughout flinkwire:

    jobmanager-rpc, taskmanager-rpc, metrics-rpc, blob, data, rest, history-server,
    sql-gateway, queryable-state, collect-sink, metrics-reporter, zookeeper, kubernetes-api
"""

from __future__ import annotations

# Every role flinkwire can assign, with a short description for reports.
ROLES: dict[str, str] = {
    "jobmanager-rpc": "JobManager RPC (Akka/Pekko classic remoting)",
    "taskmanager-rpc": "TaskManager RPC (Akka/Pekko classic remoting)",
    "rpc": "Akka/Pekko RPC, JobManager or TaskManager side not yet known",
    "metrics-rpc": "metric query service (actor system flink-metrics)",
    "blob": "blob server (job jars, offloaded job/task information, TM logs)",
    "data": "data plane (Netty shuffle between TaskManagers: the records themselves)",
    "rest": "REST API and web UI",
    "history-server": "history server web UI/REST",
    "sql-gateway": "SQL Gateway REST endpoint",
    "queryable-state": "queryable-state proxy/server",
    "collect-sink": "collect-sink result socket (SQL client SELECT results)",
    "metrics-reporter": "Prometheus metrics reporter (pull)",
    "zookeeper": "ZooKeeper (high availability)",
    "kubernetes-api": "Kubernetes API server (HA / native Kubernetes)",
    "jmx": "JMX/RMI server of the JMX reporter",
    "http": "HTTP without a Flink-specific route",
    "unknown": "no signature, port not configured",
}

# Default listening ports. "where" says under which deployment the default applies: most
# internal ports are random (0) in the code, so a port here is a hint, never proof.
DEFAULT_PORTS: dict[int, tuple[str, str]] = {
    6123: ("jobmanager-rpc", "Flink default jobmanager.rpc.port=6123"),
    6122: ("taskmanager-rpc", "native Kubernetes fixed taskmanager.rpc.port=6122"),
    6124: ("blob", "blob.server.port=6124 in the official Docker image / native Kubernetes"),
    8081: ("rest", "Flink default rest.port=8081"),
    8082: ("history-server", "Flink default historyserver.web.port=8082"),
    8083: ("sql-gateway", "Flink default sql-gateway.endpoint.rest.port=8083"),
    9067: ("queryable-state", "Flink default queryable-state.server.ports=9067"),
    9069: ("queryable-state", "Flink default queryable-state.proxy.ports=9069"),
    9249: ("metrics-reporter", "Prometheus reporter default port 9249"),
    2181: ("zookeeper", "ZooKeeper client port 2181"),
    6443: ("kubernetes-api", "Kubernetes API server port 6443"),
}

# The reverse view: role -> its default port(s), for remediation text and role refinement.
DEFAULT_PORT_OF_ROLE: dict[str, tuple[int, ...]] = {}
for _port, (_role, _why) in DEFAULT_PORTS.items():
    DEFAULT_PORT_OF_ROLE.setdefault(_role, ())
    DEFAULT_PORT_OF_ROLE[_role] += (_port,)
del _port, _role, _why

JOBMANAGER_RPC_DEFAULT_PORT = 6123

# Channel groups: which TLS switch covers a role.
INTERNAL_ROLES = frozenset(
    {"jobmanager-rpc", "taskmanager-rpc", "rpc", "metrics-rpc", "blob", "data"}
)
REST_ROLES = frozenset({"rest", "history-server", "sql-gateway"})
# No TLS code path exists in Flink for these: only network isolation protects them.
UNENCRYPTABLE_ROLES = frozenset({"queryable-state", "collect-sink", "metrics-reporter"})
# Services Flink connects out to; their TLS is configured on the service, not in Flink.
EXTERNAL_SERVICE_ROLES = frozenset({"zookeeper", "kubernetes-api"})


def channel_group(role: str) -> str:
    """Return "internal", "rest", "unencryptable", "external-service" or "unknown"."""
    if role in INTERNAL_ROLES:
        return "internal"
    if role in REST_ROLES:
        return "rest"
    if role in UNENCRYPTABLE_ROLES:
        return "unencryptable"
    if role in EXTERNAL_SERVICE_ROLES:
        return "external-service"
    return "unknown"


# Which component listens on a role's port (used to map server hosts to components).
LISTENER_COMPONENT: dict[str, str] = {
    "jobmanager-rpc": "jobmanager",
    "taskmanager-rpc": "taskmanager",
    "blob": "jobmanager",
    "data": "taskmanager",
    "rest": "jobmanager",
    "queryable-state": "taskmanager",
    "collect-sink": "taskmanager",
    "history-server": "history-server",
    "sql-gateway": "sql-gateway",
    "zookeeper": "external",
    "kubernetes-api": "external",
}

# The Flink versions the tables below know about, oldest first.
KNOWN_VERSIONS: tuple[str, ...] = (
    "1.15", "1.16", "1.17", "1.18", "1.19", "1.20", "2.0", "2.1", "2.2", "2.3",
)

# Substrings of a lower-cased key that make Flink mask the value in REST output
# (GlobalConfiguration.SENSITIVE_KEYS). Cumulative: a version has its row and every earlier one.
_SENSITIVE_ADDED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("1.15", ("password", "secret", "fs.azure.account.key", "apikey")),
    ("1.17", ("auth-params", "service-key", "token", "basic-auth", "jaas.config")),
    ("1.19", ("http-headers",)),
    ("2.1", ("api-key",)),
)

# Akka/Pekko per Flink version (flink-rpc-akka.jar version.conf).
RPC_LIBRARY: dict[str, tuple[str, str]] = {
    "1.15": ("akka", "2.6.15"),
    "1.16": ("akka", "2.6.15"),
    "1.17": ("akka", "2.6.20"),
    "1.18": ("pekko", "1.0.1"),
    "1.19": ("pekko", "1.1.2"),
    "1.20": ("pekko", "1.1.2"),
    "2.0": ("pekko", "1.1.2"),
    "2.1": ("pekko", "1.1.2"),
    "2.2": ("pekko", "1.1.2"),
    "2.3": ("pekko", "1.4.0"),
}

# Default security.ssl.algorithms per version. The 1.x default has RSA key exchange: no
# forward secrecy, so a leaked internal keystore decrypts old captures.
DEFAULT_SSL_ALGORITHMS: dict[str, str] = {
    **{v: "TLS_RSA_WITH_AES_128_CBC_SHA" for v in KNOWN_VERSIONS if v.startswith("1.")},
    **{
        v: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        for v in KNOWN_VERSIONS
        if v.startswith("2.")
    },
}

# Data-plane PartitionRequest frame length -> version range (section 2a).
PARTITION_REQUEST_LENGTH_HINT: dict[int, str] = {0x45: "1.15", 0x5D: "1.16-1.18", 0x61: "1.19+"}


def _version_key(version: str) -> tuple[int, int]:
    parts = version.strip().split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (99, 0)


def normalize_version(version: str | None) -> str | None:
    """Return "major.minor" for a version string such as "1.17.2", or None if unparseable."""
    if not version:
        return None
    major, minor = _version_key(version)
    if major == 99:
        return None
    return f"{major}.{minor}"


def sensitive_substrings(version: str | None = None) -> tuple[str, ...]:
    """Return the key substrings Flink masks in `version` (the newest list when None)."""
    wanted = _version_key(version) if normalize_version(version) else (99, 0)
    found: list[str] = []
    for since, substrings in _SENSITIVE_ADDED:
        if _version_key(since) <= wanted:
            found.extend(substrings)
    return tuple(found)


def is_sensitive_key(key: str, version: str | None = None) -> bool:
    """True when Flink (of `version`, newest when None) would mask the value of `key`."""
    lowered = key.lower()
    return any(s in lowered for s in sensitive_substrings(version))


def rpc_library(version: str | None) -> str | None:
    """Return "akka" or "pekko" for a Flink version, None when unknown."""
    entry = RPC_LIBRARY.get(normalize_version(version) or "")
    if entry:
        return entry[0]
    key = _version_key(version) if normalize_version(version) else None
    if key is None:
        return None
    return "akka" if key < (1, 18) else "pekko"


def default_ssl_algorithms(version: str | None) -> str | None:
    """Return the default security.ssl.algorithms of a version, None when unknown."""
    norm = normalize_version(version)
    if norm is None:
        return None
    if norm in DEFAULT_SSL_ALGORITHMS:
        return DEFAULT_SSL_ALGORITHMS[norm]
    return DEFAULT_SSL_ALGORITHMS["2.3" if _version_key(norm) >= (2, 0) else "1.15"]
