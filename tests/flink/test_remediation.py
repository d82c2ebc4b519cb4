"""Remedies name the exact configuration keys (flink-wire-facts.md 3.1)."""

import pytest

from flinkwire.flink.remediation import remedy


@pytest.mark.parametrize("role,switch", [
    ("data", "taskmanager.data.ssl.enabled"), ("blob", "blob.service.ssl.enabled"),
    ("jobmanager-rpc", "pekko.ssl.enabled")])
def test_internal_plaintext(role, switch):
    text = remedy(role, "plaintext-channel", "2.3.0")
    assert text.startswith("security.ssl.internal.enabled: true")
    assert "security.ssl.internal.keystore" in text and "security.ssl.internal.truststore" in text
    assert f"{switch} must stay true" in text


def test_rpc_switch_follows_the_version():
    assert "akka.ssl.enabled must stay true" in remedy("taskmanager-rpc", "plaintext-channel",
                                                       "1.17.2")
    unknown = remedy("taskmanager-rpc", "plaintext-channel")
    assert "pekko.ssl.enabled" in unknown and "akka.ssl.enabled" in unknown


def test_rest_plaintext_and_secrets():
    text = remedy("rest", "plaintext-channel")
    assert "security.ssl.rest.enabled: true" in text
    assert "security.ssl.rest.authentication-enabled: true" in text
    secret = remedy("rest", "password")
    assert "security.ssl.rest.enabled: true" in secret
    assert secret.endswith("rotate the exposed password")


@pytest.mark.parametrize("role", ["queryable-state", "collect-sink", "metrics-reporter"])
def test_unencryptable_roles_get_isolation(role):
    text = remedy(role, "unencryptable-channel")
    assert "network isolation" in text and "security.ssl" not in text
    if role == "queryable-state":
        assert "queryable-state.enable: false" in text


def test_tls_parameter_remedies():
    text = remedy("data", "rsa-key-exchange", "1.20.1")
    assert text.startswith("security.ssl.algorithms: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,")
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in text
    assert remedy("rest", "old-tls-version").startswith("security.ssl.protocol: TLSv1.2")


def test_never_raises_on_odd_input():
    assert remedy(None, None)
    assert remedy("weird-role", "weird-kind", "not-a-version")
