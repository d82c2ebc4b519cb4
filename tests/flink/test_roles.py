"""Role decisions: content > config port > default port > unknown, and cross-flow rules."""

from flinkwire.flink.roles import decide_role, evidence_strength, hosts_from, refine_roles

CONFIG = {8081: ("rest", "config rest.port=8081"), 7000: ("blob", "config blob.server.port=7000"),
          6123: ("jobmanager-rpc", "config jobmanager.rpc.port=6123")}


def pekko_result(c2s_endpoints=(), c2s_methods=(), s2c_methods=(), client=("192.0.2.11", 33221),
                 server=("192.0.2.10", 6123)):
    return {"role": "rpc", "evidence": "Akka/Pekko classic remoting", "system": "flink",
            "client_origin": {"host": client[0], "port": client[1]},
            "server_origin": {"host": server[0], "port": server[1]},
            "c2s_endpoints": list(c2s_endpoints), "c2s_methods": list(c2s_methods),
            "s2c_endpoints": [], "s2c_methods": list(s2c_methods)}


def test_content_beats_config_and_default():
    role, evidence = decide_role(8081, {"role": "blob", "evidence": "blob PUT"}, False, CONFIG)
    assert role == "blob"
    assert evidence[0] == "content: blob PUT" and "content wins" in evidence[1]
    assert evidence_strength(evidence) == 3


def test_config_beats_default_and_tls_uses_ports_only():
    assert decide_role(7000, None, True, CONFIG) == (
        "blob", ["config: config blob.server.port=7000", "TLS: content not readable"])
    role, evidence = decide_role(8082, {"role": "blob", "evidence": "x"}, True, {})
    assert role == "history-server" and evidence[0].startswith("default port:")
    assert decide_role(40000, None, True, {}) == ("unknown",
                                                 ["TLS, no signature, port not configured"])
    assert decide_role(40000, None, False, {}) == ("unknown", ["no signature, port not configured"])


def test_rpc_side_from_the_flow_itself():
    role, evidence = decide_role(6123, pekko_result(), False, {})
    assert role == "jobmanager-rpc" and evidence[-1].startswith("default port:")
    role, _ = decide_role(41000, pekko_result(c2s_endpoints=["taskmanager"]), False, {})
    assert role == "taskmanager-rpc"
    role, evidence = decide_role(41000, pekko_result(
        c2s_methods=["ResourceManagerGateway.registerTaskExecutor"]), False, {})
    assert role == "jobmanager-rpc" and "registerTaskExecutor" in evidence[-1]
    assert decide_role(41000, pekko_result(), False, {})[0] == "rpc"


def test_generic_http_takes_the_port_role():
    assert decide_role(8081, {"role": "http", "evidence": "GET /"}, False, {})[0] == "rest"
    assert decide_role(80, {"role": "http", "evidence": "GET /"}, False, {})[0] == "http"


def flow(fid, server, port, client, role, evidence, verdict="plaintext", pekko=None):
    return {"flow_id": fid, "server_ip": server, "server_port": port, "client_ip": client,
            "role": role, "evidence": evidence, "verdict": verdict, "pekko": pekko}


def test_refine_tls_flow_from_plaintext_flow_on_same_endpoint():
    flows = [flow("A", "192.0.2.10", 41234, "192.0.2.11", "blob", "content: blob GET"),
             flow("B", "192.0.2.10", 41234, "192.0.2.12", "unknown",
                  "TLS, no signature, port not configured", verdict="tls"),
             flow("C", "192.0.2.10", 45555, "192.0.2.12", "unknown",
                  "TLS, no signature, port not configured", verdict="tls")]
    a, b, c = refine_roles(flows)
    assert a["role"] == "blob" and b["role"] == "blob"
    assert b["evidence"][0] == "cross-flow: same server endpoint 192.0.2.10:41234 as flow A (blob)"
    assert c["role"] == "unknown" and c["evidence"] == ["TLS, no signature, port not configured"]
    assert flows[1]["role"] == "unknown"  # the input is not modified


def test_refine_rpc_jobmanager_and_taskmanager():
    registering = pekko_result(c2s_methods=["ResourceManagerGateway.registerTaskExecutor"],
                               client=("192.0.2.11", 33221), server=("192.0.2.10", 50001))
    flows = [
        flow("R", "192.0.2.10", 50001, "192.0.2.11", "rpc", "content: pekko", pekko=registering),
        # The JobManager connecting back to the TaskManager's advertised RPC address.
        flow("T", "192.0.2.11", 33221, "192.0.2.10", "rpc", "content: pekko",
             pekko=pekko_result(client=("192.0.2.10", 50001), server=("192.0.2.11", 33221))),
        flow("U", "192.0.2.12", 39999, "192.0.2.10", "rpc", "content: pekko",
             pekko=pekko_result(client=("192.0.2.10", 50001), server=("192.0.2.12", 39999))),
    ]
    r, t, u = refine_roles(flows)
    assert r["role"] == "jobmanager-rpc"
    assert t["role"] == "taskmanager-rpc" and "registers as a TaskExecutor" in t["evidence"][-1]
    assert u["role"] == "taskmanager-rpc" and "not the JobManager RPC endpoint" in u["evidence"][-1]


def test_refine_keeps_rpc_when_nothing_decides():
    (only,) = refine_roles([flow("X", "10.0.0.1", 40000, "10.0.0.2", "rpc", ["content: pekko"],
                                 pekko=pekko_result())])
    assert only["role"] == "rpc" and "not determinable" in only["evidence"][-1]


def test_refine_tls_between_taskmanagers_is_data():
    flows = [flow("J1", "192.0.2.10", 6123, "192.0.2.11", "jobmanager-rpc",
                  "default port: 6123", verdict="tls"),
             flow("J2", "192.0.2.10", 6123, "192.0.2.12", "jobmanager-rpc",
                  "default port: 6123", verdict="tls"),
             flow("D", "192.0.2.11", 6121, "192.0.2.12", "unknown",
                  "TLS, no signature, port not configured", verdict="tls"),
             flow("M", "192.0.2.11", 6125, "192.0.2.10", "unknown",
                  "TLS, no signature, port not configured", verdict="tls")]
    _, _, data, metrics = refine_roles(flows)
    assert data["role"] == "data"
    assert "TaskManagers 192.0.2.12 and 192.0.2.11" in data["evidence"][0]
    assert metrics["role"] == "unknown" and "metric query service" in metrics["evidence"][-1]


def test_hosts_from_roles():
    registering = pekko_result(c2s_methods=["ResourceManagerGateway.registerTaskExecutor"])
    rows = hosts_from([
        flow("R", "192.0.2.10", 6123, "192.0.2.11", "jobmanager-rpc", "", pekko=registering),
        flow("D", "192.0.2.12", 6121, "192.0.2.11", "data", ""),
        flow("H", "192.0.2.10", 8081, "192.0.2.20", "rest", ""),
        flow("Z", "192.0.2.30", 2181, "192.0.2.10", "zookeeper", ""),
    ])
    components = {(r["ip"], r["component"]) for r in rows}
    assert components == {("192.0.2.10", "jobmanager"), ("192.0.2.11", "taskmanager"),
                          ("192.0.2.12", "taskmanager"), ("192.0.2.20", "client"),
                          ("192.0.2.30", "external")}
    jm = next(r for r in rows if r["component"] == "jobmanager")
    assert "serves jobmanager-rpc on port 6123 (flow R)" in jm["evidence"]


def test_host_memo_answers_what_host_answers():
    from flinkwire.flink import roles

    host = roles._host_memo()
    texts = ["10.0.0.1", "10.0.0.1", "::1", "0:0::1", "jm.local", "", None, 1, 1.0, True,
             167772161, "167772161", "10.0.0.1 ", ["10.0.0.1"]]
    for text in texts + texts[::-1]:
        assert host(text) == roles._host(text)
