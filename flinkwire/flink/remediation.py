"""The configuration that closes each gap flinkwire reports, as a table.

`remedy(role, kind, flink_version)` looks the gap up by (role, kind), then (channel group,
kind), then the role or group with any kind, then the kind alone; the text is filled in with
version-specific key names (``pekko.ssl.enabled`` from 1.18, ``akka.ssl.enabled`` before) and
the default cipher list of that version. Key names and defaults come from
docs/flink-wire-facts.md section 3.
"""

from __future__ import annotations

from flinkwire.flink import knowledge

__all__ = ["remedy", "REMEDIES"]

_INTERNAL_TLS = (
    "security.ssl.internal.enabled: true, with security.ssl.internal.keystore, "
    "security.ssl.internal.keystore-password, security.ssl.internal.key-password, "
    "security.ssl.internal.truststore and security.ssl.internal.truststore-password "
    "(one shared internal certificate; internal TLS is always mutual); "
    "optionally pin it with security.ssl.internal.cert.fingerprint"
)
_REST_TLS = (
    "security.ssl.rest.enabled: true with security.ssl.rest.keystore, "
    "security.ssl.rest.keystore-password, security.ssl.rest.key-password, and "
    "security.ssl.rest.authentication-enabled: true (client certificates: REST has no other "
    "authentication) with security.ssl.rest.truststore / security.ssl.rest.truststore-password"
)
_ISOLATE = ("network isolation: Flink has no TLS for this channel, so only a firewall, "
            "network policy or private network between the hosts protects it")

# (role or group or "*", kind or "*") -> text; {rpc_switch}, {algorithms} are filled per version.
REMEDIES: dict[tuple[str, str], str] = {
    ("internal", "plaintext-channel"):
        _INTERNAL_TLS + "; {switch} must stay true (it is by default)",
    ("rest", "plaintext-channel"): _REST_TLS,
    ("history-server", "plaintext-channel"):
        "historyserver.web.ssl.enabled: true plus the REST settings " + _REST_TLS,
    ("sql-gateway", "plaintext-channel"):
        "put the SQL Gateway behind an authenticating TLS proxy, or set " + _REST_TLS
        + " (the gateway's own TLS behaviour is unverified)",
    ("queryable-state", "*"):
        "queryable-state.enable: false (the default) unless it is needed; otherwise "
        + _ISOLATE + " (queryable-state.proxy.ports / queryable-state.server.ports)",
    ("collect-sink", "*"):
        _ISOLATE + "; pin the socket with taskmanager.collect-sink.port (1.19+) so a firewall "
        "rule can allow only the JobManager to reach it",
    ("metrics-reporter", "*"):
        _ISOLATE + " (the Prometheus reporter has only a port option); restrict "
        "metrics.reporter.<name>.port to the scraper, or scrape through a TLS sidecar",
    ("zookeeper", "*"):
        "enable TLS on ZooKeeper itself (secureClientPort) and on the client through the "
        "ZooKeeper client's own JVM system properties (Flink has no option of its own; "
        "unverified detail), plus high-availability.zookeeper.client.acl: creator with SASL",
    ("kubernetes-api", "*"): "use the API server's HTTPS endpoint (the fabric8 default)",
    ("jmx", "*"):
        "enable JMX TLS and authentication through the JVM's com.sun.management.jmxremote.* "
        "properties, or do not set jmx.server.port",
    ("*", "rsa-key-exchange"):
        "security.ssl.algorithms: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,"
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (the default {algorithms_default} has no "
        "forward secrecy: a leaked keystore decrypts recorded traffic)",
    ("*", "weak-cipher"):
        "security.ssl.algorithms: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,"
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ("*", "old-tls-version"): "security.ssl.protocol: TLSv1.2 (one value, not a list)",
    ("rest", "no-client-auth"):
        "security.ssl.rest.authentication-enabled: true with security.ssl.rest.truststore "
        "(without it any client may use the REST API); note that the REST server applies "
        "security.ssl.protocol and security.ssl.algorithms only when this is on",
    ("rest", "tls-redirect"):
        "nothing to fix on the server (REST TLS is on); make clients use https://",
    ("internal", "tls-disabled-channel"):
        "{switch}, blob.service.ssl.enabled and taskmanager.data.ssl.enabled: true so every "
        "internal channel uses " + _INTERNAL_TLS,
    ("*", "expired-certificate"):
        "renew the certificate in the keystore the channel uses (security.ssl.internal.keystore "
        "or security.ssl.rest.keystore) and restart the processes that load it",
    ("*", "not-yet-valid-certificate"):
        "check the hosts' clocks and the certificate's validity start; reissue it if wrong",
    ("internal", "self-signed-certificate"):
        "acceptable for Flink's one shared internal certificate if it is unique to this "
        "cluster; pin it with security.ssl.internal.cert.fingerprint (its SHA-1) so no other "
        "certificate is trusted",
    ("*", "self-signed-certificate"):
        "serve a certificate from a CA the clients trust in security.ssl.rest.keystore, or pin "
        "it on the clients with security.ssl.rest.cert.fingerprint",
    ("*", "weak-key"):
        "regenerate the key pair with at least RSA 2048 (3072 preferred) or EC P-256 "
        "(keytool -genkeypair -keyalg RSA -keysize 3072) and replace the keystore",
    ("*", "tls-handshake-failed"):
        "make security.ssl.protocol and security.ssl.algorithms agree on every process: "
        "security.ssl.protocol: TLSv1.3 also needs TLS 1.3 suites (TLS_AES_128_GCM_SHA256, "
        "TLS_AES_256_GCM_SHA384) in security.ssl.algorithms, and every process needs the same "
        "truststore",
    ("unknown", "plaintext-channel"):
        "identify the service (pass --config with the cluster's config file); if it is a "
        "Flink internal port: " + _INTERNAL_TLS,
}

_KNOWN_KINDS = frozenset(kind for _, kind in REMEDIES) - {"*"}

# Per-role switch that must stay on for internal TLS to cover that channel.
_SWITCH_OF_ROLE = {
    "data": "taskmanager.data.ssl.enabled",
    "blob": "blob.service.ssl.enabled",
}

# Aliases of finding kinds produced elsewhere.
_KIND_ALIASES = {
    "unencryptable-channel": "plaintext-channel",
    "tls-version": "old-tls-version",
    "old-tls": "old-tls-version",
    "no-forward-secrecy": "rsa-key-exchange",
    "rsa-kx": "rsa-key-exchange",
}


def _rpc_switch(flink_version: str | None) -> str:
    library = knowledge.rpc_library(flink_version) if flink_version else None
    if knowledge.normalize_version(flink_version) in (None, "1.0") or library is None:
        return "pekko.ssl.enabled (1.18+; akka.ssl.enabled before)"
    return f"{library}.ssl.enabled"


def remedy(role: str, kind: str, flink_version: str | None = None) -> str:
    """Return the configuration that closes a gap of `kind` on a flow of `role`.

    `kind` is a finding kind: "plaintext-channel", "unencryptable-channel", "rsa-key-exchange",
    "old-tls-version", "no-client-auth", or a secret kind such as "password" (a secret read
    off the wire is fixed by encrypting the channel it crossed). Never raises; an unknown
    combination gets the channel's plaintext remedy or a generic sentence.
    """
    role = role or "unknown"
    kind = _KIND_ALIASES.get(kind, kind or "plaintext-channel")
    group = knowledge.channel_group(role)
    # Any other kind is a secret read off the wire: encrypt the channel it travelled on.
    secret = kind not in _KNOWN_KINDS
    wanted = "plaintext-channel" if secret else kind
    text = None
    for key in ((role, wanted), (group, wanted), (role, "*"), (group, "*"), ("*", wanted)):
        if key in REMEDIES:
            text = REMEDIES[key]
            break
    if text is None:
        text = ("encrypt or isolate the channel this was seen on, and rotate the exposed "
                "value")
    if role in _SWITCH_OF_ROLE:
        switch = _SWITCH_OF_ROLE[role]
    else:
        switch = _rpc_switch(flink_version)
    algorithms = knowledge.default_ssl_algorithms(flink_version) or \
        "TLS_RSA_WITH_AES_128_CBC_SHA (1.15-1.20)"
    text = text.replace("{switch}", switch).replace("{algorithms_default}", algorithms)
    if secret:
        text += f"; rotate the exposed {kind}"
    return text
