"""Flink config files: 2.x config.yaml (nested and flat), 1.x flink-conf.yaml, port roles."""

import json
from pathlib import Path

import pytest

from flinkwire.errors import ConfigError
from flinkwire.flink.config import load_config, parse_ports


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_nested_and_flat_yaml(tmp_path):
    config = load_config(write(tmp_path, "config.yaml", """
rest:
  port: 8081
  bind-port: 18081
jobmanager.rpc.port: 6123
blob:
  server:
    port: 6124
taskmanager:
  data.port: "50100-50102"
  rpc:
    port: 6122,6132
metrics.internal.query-service.port: 0
metrics:
  reporter:
    prom:
      factory.class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory
      port: 9250
    jmx:
      factory.class: org.apache.flink.metrics.jmx.JMXReporterFactory
      port: 8789
s3.secret-key: fake-secret
security.ssl.internal.enabled: true
security.ssl.internal.keystore-password: fake-pw
"""))
    assert config.get("rest.port") == 8081
    roles = config.port_roles()
    assert roles[8081] == ("rest", "config rest.port=8081")
    assert roles[18081] == ("rest", "config rest.bind-port=18081")
    assert roles[6123][0] == "jobmanager-rpc" and roles[6124][0] == "blob"
    assert [roles[p][0] for p in (50100, 50101, 50102)] == ["data"] * 3
    assert 50103 not in roles
    assert roles[6122][0] == roles[6132][0] == "taskmanager-rpc"
    assert roles[9250] == ("metrics-reporter", "config metrics.reporter.prom.port=9250")
    assert roles[8789][0] == "jmx"
    assert 0 not in roles
    assert config.secrets() == [("s3.secret-key", "fake-secret"),
                                ("security.ssl.internal.keystore-password", "fake-pw")]
    tls = config.tls_settings()
    assert tls["security.ssl.internal.enabled"] is True
    assert tls["security.ssl.internal.keystore-password"] == "******"
    assert tls["internal_enabled"] is True and tls["rest_enabled"] is False


def test_legacy_flink_conf_is_read_like_flink_1x(tmp_path):
    # Not valid YAML (a tab, a colon in a value, a stray "- ") but Flink 1.x reads it fine.
    config = load_config(write(tmp_path, "flink-conf.yaml", (
        "jobmanager.rpc.port: 7123   # our port\n"
        "env.java.opts: -Dx=a: b\n"
        "\tqueryable-state.proxy.ports: 9069-9070\n"
        "- nonsense\n"
        "security.ssl.enabled: true\n"
        "akka.ssl.enabled: false\n")))
    assert config.format == "legacy" and config.major_version == "1"
    assert config.get("env.java.opts") == "-Dx=a: b"
    assert config.port_roles()[7123] == ("jobmanager-rpc", "config jobmanager.rpc.port=7123")
    assert config.port_roles()[9070][0] == "queryable-state"
    # Deprecated names are read as fallbacks, the way Flink does.
    assert config.get("pekko.ssl.enabled") == "false"
    assert config.tls_settings()["internal_enabled"] is True


def test_ha_port_replaces_the_rpc_port(tmp_path):
    config = load_config(write(tmp_path, "config.yaml", (
        "high-availability.type: zookeeper\n"
        "high-availability.zookeeper.quorum: zk1:2181,zk2:2182\n"
        "high-availability.jobmanager.port: 50010-50011\n"
        "jobmanager.rpc.port: 6123\n")))
    roles = config.port_roles()
    assert 6123 not in roles
    assert roles[50010][0] == "jobmanager-rpc"
    assert roles[2181][0] == roles[2182][0] == "zookeeper"


def lab_truths():
    root = Path(__file__).resolve().parents[2] / "captures"
    return [json.loads(p.read_text()) | {"_dir": str(root)}
            for p in sorted(root.glob("*.truth.json"))]


@pytest.mark.parametrize("truth", lab_truths(), ids=lambda t: t["scenario"])
def test_lab_configs_agree_with_the_listening_table(truth):
    config = load_config(f"{truth['_dir']}/{truth['config_file']}")
    roles = config.port_roles()
    for process in truth["processes"]:
        for socket in process["listening"]:
            if socket["port"] in roles:
                assert roles[socket["port"]][0] == socket["role"], (process["name"], socket)
    listening = {s["port"] for p in truth["processes"] for s in p["listening"]}
    assert set(roles) <= listening  # the config names no port nobody listens on
    assert "s3.secret-key" in dict(config.secrets())  # every lab config carries this fake


def test_lab_config_of_the_real_capture():
    path = Path(__file__).resolve().parents[2] / "captures" / "s1-plaintext.config.yaml"
    if not path.exists():
        pytest.skip("lab capture config absent")
    roles = load_config(path).port_roles()
    assert {port: role for port, (role, _) in roles.items()} == {
        6123: "jobmanager-rpc", 6124: "blob", 8081: "rest", 6122: "taskmanager-rpc",
        6121: "data", 6125: "metrics-rpc"}


@pytest.mark.parametrize("value,ports", [
    (8081, [8081]), ("8081", [8081]), ("6123,6124", [6123, 6124]), (" 1-3 , 9", [1, 2, 3, 9]),
    ([6123, "6124"], [6123, 6124]), (0, []), ("0", []), ("abc", []), (True, []),
    (70000, []), (None, [])])
def test_parse_ports(value, ports):
    assert parse_ports(value) == ports


def test_unreadable_files_raise_config_error(tmp_path):
    with pytest.raises(ConfigError) as missing:
        load_config(tmp_path / "nope.yaml")
    assert "not found" in str(missing.value) and missing.value.path.endswith("nope.yaml")
    with pytest.raises(ConfigError):
        load_config(tmp_path)
    binary = tmp_path / "config.yaml"
    binary.write_bytes(b"\x00\x01\x02")
    with pytest.raises(ConfigError, match="binary"):
        load_config(binary)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: \xe9\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(latin)


def test_empty_and_non_mapping_yaml(tmp_path):
    assert load_config(write(tmp_path, "config.yaml", "")).values == {}
    config = load_config(write(tmp_path, "other.yaml", "rest.port: [unclosed\n"))
    assert config.format == "lines" and config.get("rest.port") == "[unclosed"


def test_yaml_alias_bomb_is_refused_in_one_line(tmp_path):
    """Found by the breaker (307): 439 bytes of nested aliases ("billion laughs") under
    jobmanager.rpc.port cost 29 s and 630 MB before the analysis started (parse_ports took
    str() of every aliased list); one level more ended in a MemoryError traceback. Fixed in
    flink/config.py: the loader counts what the aliases expand to, without expanding them,
    and refuses the file past MAX_ALIAS_VALUES; parse_ports skips nested lists."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bomb = write(tmp_path, "config.yaml", "\n".join(lines + ["jobmanager.rpc.port: *a9", ""]))
    with pytest.raises(ConfigError, match="alias") as refused:
        load_config(bomb)
    assert refused.value.path == str(bomb) and "\n" not in str(refused.value)
    looped = write(tmp_path, "loop.yaml", "a: &a [1, *a]\nrest.port: 8081\n")
    with pytest.raises(ConfigError, match="alias"):
        load_config(looped)
    # Aliases as configs use them (a shared block, a list repeated) still load.
    shared = write(tmp_path, "shared.yaml", "base: &b {port: 8081}\nrest: *b\n"
                                            "ports: &p [6124, 6125]\nblob.server.port: *p\n")
    assert load_config(shared).port_roles().keys() == {8081, 6124, 6125}
    assert parse_ports([[6123] * 9] * 9) == []
