"""The Flink knowledge tables (flink-wire-facts.md 1.1, 1.3, 2e, 3.1)."""

import pytest

from flinkwire.flink import knowledge


@pytest.mark.parametrize("port,role", [
    (6123, "jobmanager-rpc"), (8081, "rest"), (8082, "history-server"), (8083, "sql-gateway"),
    (9067, "queryable-state"), (9069, "queryable-state"), (9249, "metrics-reporter"),
    (2181, "zookeeper"), (6443, "kubernetes-api"), (6124, "blob"), (6122, "taskmanager-rpc")])
def test_default_ports(port, role):
    assert knowledge.DEFAULT_PORTS[port][0] == role


def test_channel_groups():
    assert {r for r in knowledge.ROLES if knowledge.channel_group(r) == "internal"} == {
        "jobmanager-rpc", "taskmanager-rpc", "rpc", "metrics-rpc", "blob", "data"}
    assert {r for r in knowledge.ROLES if knowledge.channel_group(r) == "rest"} == {
        "rest", "history-server", "sql-gateway"}
    assert knowledge.UNENCRYPTABLE_ROLES == {"queryable-state", "collect-sink",
                                             "metrics-reporter"}
    assert knowledge.channel_group("unknown") == "unknown"
    assert knowledge.channel_group("zookeeper") == "external-service"


@pytest.mark.parametrize("version,key,masked", [
    ("1.15.4", "s3.secret-key", True), ("1.16", "fs.azure.account.key.x", True),
    ("1.16", "kafka.token", False), ("1.17.2", "kafka.token", True),
    ("1.18", "sasl.jaas.config", True), ("1.18", "http-headers", False),
    ("1.19", "reporter.http-headers", True), ("2.0", "datadog.api-key", False),
    ("2.1", "datadog.api-key", True), ("2.3.0", "DB.PASSWORD", True), (None, "api-key", True),
    ("2.3", "rest.port", False)])
def test_sensitive_keys_per_version(version, key, masked):
    assert knowledge.is_sensitive_key(key, version) is masked


def test_rpc_library_and_default_ciphers():
    assert [knowledge.rpc_library(v) for v in ("1.15", "1.17.2", "1.18.1", "2.3.0")] == [
        "akka", "akka", "pekko", "pekko"]
    assert knowledge.rpc_library("nonsense") is None
    assert knowledge.default_ssl_algorithms("1.20.1") == "TLS_RSA_WITH_AES_128_CBC_SHA"
    assert knowledge.default_ssl_algorithms("2.0.2").startswith("TLS_ECDHE_RSA_WITH_AES_128_GCM")
    assert knowledge.default_ssl_algorithms(None) is None
