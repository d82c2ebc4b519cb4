"""Which Flink channel a flow is, and which host runs which component.

Theory of operation. A flow's role is decided from the strongest evidence available, in this
order: a content signature (only readable on plaintext flows), a port the user's Flink config
names, a Flink default port, and otherwise "unknown". Every piece of evidence is a short text
that starts with where it came from ("content:", "config:", "default port:", "cross-flow:"), so
a report can show why and a later step can tell strong from weak.

Some roles need more than one flow. An Akka/Pekko handshake says "Flink RPC" but not whether the
listening side is a JobManager or a TaskManager; the actor paths addressed, the gateway methods
called and the JobManager RPC port settle that. A TLS flow on a random port has no signature,
but if the same server ip:port was seen in plaintext with a role, it is the same socket.
`refine_roles` applies those rules over all flows; where nothing settles a question the flow
keeps the weaker role ("rpc", "unknown") and says so, rather than presenting a guess as fact.
"""

from __future__ import annotations

import ipaddress
import logging

from flinkwire.flink import knowledge

log = logging.getLogger(__name__)

__all__ = ["decide_role", "refine_roles", "hosts_from", "evidence_strength"]

NO_EVIDENCE = "no signature, port not configured"
RPC_ROLES = ("rpc", "jobmanager-rpc", "taskmanager-rpc")
# Actor endpoints and gateways that live on a JobManager / on a TaskManager.
JM_ENDPOINTS = frozenset({"dispatcher", "resourcemanager", "jobmanager"})
TM_ENDPOINTS = frozenset({"taskmanager"})
JM_GATEWAYS = ("ResourceManagerGateway.", "JobMasterGateway.", "DispatcherGateway.",
               "RestfulGateway.", "JobMasterOperatorEventGateway.",
               "CheckpointCoordinatorGateway.", "KvStateLocationOracle.",
               "BlocklistListener.")
TM_GATEWAYS = ("TaskExecutorGateway.", "TaskExecutorOperatorEventGateway.",
               "TaskExecutorThreadInfoGateway.")
STRENGTH = {"content": 3, "cross-flow": 3, "config": 2, "default port": 1}


def evidence_strength(evidence) -> int:
    """Return 3 for content/cross-flow evidence, 2 for config, 1 for a default port, 0 else."""
    first = evidence if isinstance(evidence, str) else (evidence[0] if evidence else "")
    return STRENGTH.get(first.split(":", 1)[0].strip(), 0)


def _jobmanager_rpc_ports(port_roles: dict) -> set[int]:
    configured = {p for p, (role, _) in port_roles.items() if role == "jobmanager-rpc"}
    return configured or {knowledge.JOBMANAGER_RPC_DEFAULT_PORT}


def _rpc_side(content: dict) -> tuple[str | None, str | None]:
    """From one flow's pekko detect result: is the server a JobManager or TaskManager?"""
    c2s_endpoints = set(content.get("c2s_endpoints") or ())
    c2s_methods = content.get("c2s_methods") or ()
    s2c_methods = content.get("s2c_methods") or ()
    if c2s_endpoints & JM_ENDPOINTS:
        kind = sorted(c2s_endpoints & JM_ENDPOINTS)[0]
        return "jobmanager-rpc", f"client addresses the server's {kind} actor"
    if c2s_endpoints & TM_ENDPOINTS:
        return "taskmanager-rpc", "client addresses the server's taskmanager actor"
    for method in c2s_methods:
        if method.startswith(JM_GATEWAYS):
            return "jobmanager-rpc", f"client calls {method} on the server"
        if method.startswith(TM_GATEWAYS):
            return "taskmanager-rpc", f"client calls {method} on the server"
    for method in s2c_methods:
        # Calls travelling back over the association run on the client's side.
        if method.startswith(TM_GATEWAYS):
            return "jobmanager-rpc", f"server calls {method} on a TaskManager client"
        if method.startswith("ResourceManagerGateway."):
            return "taskmanager-rpc", f"server calls {method} on a JobManager client"
    return None, None


def decide_role(server_port: int, content: dict | None, is_tls: bool,
                port_roles: dict) -> tuple[str, list[str]]:
    """Return (role, evidence) for one flow.

    Precedence: content signature (plaintext only) > user config port > Flink default port >
    "unknown". Content "rpc" becomes jobmanager-rpc or taskmanager-rpc when the flow itself
    shows which (actor paths, gateway methods, the JobManager RPC port); otherwise it stays
    "rpc" for refine_roles. Generic HTTP ("http") takes its Flink role from the port.
    """
    evidence: list[str] = []
    port_roles = port_roles or {}
    configured = port_roles.get(server_port)
    default = knowledge.DEFAULT_PORTS.get(server_port)

    if content and not is_tls and content.get("role"):
        role = content["role"]
        evidence.append(f"content: {content.get('evidence') or role}")
        if role == "rpc":
            side, why = _rpc_side(content)
            if side:
                evidence.append(f"content: {why}")
                return side, evidence
            if server_port in _jobmanager_rpc_ports(port_roles):
                source = "config" if configured else "default port"
                evidence.append(f"{source}: server port {server_port} is the JobManager "
                                "RPC port")
                return "jobmanager-rpc", evidence
            if configured and configured[0] == "taskmanager-rpc":
                evidence.append(f"config: {configured[1]}")
                return "taskmanager-rpc", evidence
            return "rpc", evidence
        if role == "http":
            port_role = (configured or default or (None, None))
            if port_role[0] in knowledge.REST_ROLES or port_role[0] == "metrics-reporter":
                source = "config" if configured else "default port"
                evidence.append(f"{source}: {port_role[1]}")
                return port_role[0], evidence
            return "http", evidence
        if configured and configured[0] != role:
            evidence.append(f"config: {configured[1]} names {configured[0]}, content wins")
        return role, evidence

    if configured:
        evidence.append(f"config: {configured[1]}")
        if is_tls:
            evidence.append("TLS: content not readable")
        return configured[0], evidence
    if default:
        evidence.append(f"default port: {default[1]}")
        if is_tls:
            evidence.append("TLS: content not readable")
        return default[0], evidence
    if content and is_tls:
        evidence.append("content seen before TLS started: " + str(content.get("evidence")))
    evidence.append(("TLS, " if is_tls else "") + NO_EVIDENCE)
    return "unknown", evidence


def _evidence_list(evidence) -> list[str]:
    if not evidence:
        return []
    if isinstance(evidence, str):
        return [part for part in evidence.split("; ") if part]
    return list(evidence)


def _host(text) -> str | None:
    try:
        return str(ipaddress.ip_address(str(text)))
    except ValueError:
        return None


def _host_memo():
    """`_host`, remembering its answer for each text for one pass over the flows: the
    advertised addresses repeat on every RPC flow, and ipaddress parses them in Python
    (1,499 calls, 4 ms of refine_roles and hosts_from's 15 on the 100 MB capture)."""
    answers: dict[str, str | None] = {}

    def host(text) -> str | None:
        if type(text) is not str:  # 1, 1.0 and True are one key but three texts
            return _host(text)
        answer = answers.get(text, answers)
        if answer is answers:
            answer = answers[text] = _host(text)
        return answer
    return host


def refine_roles(flows: list[dict], in_place: bool = False) -> list[dict]:
    """Settle roles that need several flows; return updated copies in the same order
    (with `in_place`, the given dicts themselves, updated: a caller that made them for
    this call saves a copy per flow).

    Rules, each recorded as "cross-flow: ..." evidence:
    1. RPC (role "rpc"/...-rpc): a server endpoint is a JobManager when any flow to it shows
       JobManager actors or gateways, or when a TaskManager registers there
       (ResourceManagerGateway.registerTaskExecutor); endpoints advertised by clients that
       register as TaskManagers are TaskManagers. A "rpc" flow whose endpoint is neither stays
       "rpc", unless a JobManager endpoint is known and this one differs from it (Flink runs
       RPC servers only on JobManagers and TaskManagers), which makes it taskmanager-rpc.
    2. A flow whose role is weaker than that of another flow to the same server ip:port (a TLS
       flow on a random port, a default-port guess) takes that role.
    Flows still without evidence keep "unknown" with "no signature, port not configured".
    """
    out = []
    for flow in flows:
        copy = flow if in_place else dict(flow)
        copy["evidence"] = _evidence_list(flow.get("evidence"))
        out.append(copy)

    # -- 1. RPC: which endpoints are JobManagers, which TaskManagers --------------------
    host_of = _host_memo()
    jm_endpoints: dict[tuple, str] = {}
    tm_endpoints: dict[tuple, str] = {}
    for flow in out:
        content = flow.get("pekko") or None
        endpoint = (flow.get("server_ip"), flow.get("server_port"))
        if flow.get("role") == "jobmanager-rpc" and evidence_strength(flow["evidence"]) >= 2:
            jm_endpoints.setdefault(endpoint, f"flow {flow.get('flow_id')} is jobmanager-rpc")
        if flow.get("role") == "taskmanager-rpc" and evidence_strength(flow["evidence"]) >= 2:
            tm_endpoints.setdefault(endpoint, f"flow {flow.get('flow_id')} is taskmanager-rpc")
        if not content or content.get("role") == "metrics-rpc":
            continue
        side, why = _rpc_side(content)
        if side == "jobmanager-rpc":
            jm_endpoints.setdefault(endpoint, f"flow {flow.get('flow_id')}: {why}")
        elif side == "taskmanager-rpc":
            tm_endpoints.setdefault(endpoint, f"flow {flow.get('flow_id')}: {why}")
        registers = any(m == "ResourceManagerGateway.registerTaskExecutor"
                        for m in content.get("c2s_methods") or ())
        client = content.get("client_origin") or {}
        if registers and client.get("port"):
            host = host_of(client.get("host")) or client.get("host")
            tm_endpoints.setdefault((host, client.get("port")),
                                    f"flow {flow.get('flow_id')}: its client registers as a "
                                    "TaskExecutor and advertises this RPC address")
        server = content.get("server_origin") or {}
        if side and server.get("port"):
            advertised = (host_of(server.get("host")) or server.get("host"), server.get("port"))
            target = jm_endpoints if side == "jobmanager-rpc" else tm_endpoints
            target.setdefault(advertised, f"flow {flow.get('flow_id')}: advertised address of "
                                          f"a {side.split('-')[0]}")

    for flow in out:
        if flow.get("role") not in RPC_ROLES:
            continue
        endpoint = (flow.get("server_ip"), flow.get("server_port"))
        content = flow.get("pekko") or {}
        server = content.get("server_origin") or {}
        advertised = (host_of(server.get("host")) or server.get("host"), server.get("port"))
        for key in (endpoint, advertised):
            if flow["role"] != "jobmanager-rpc" and key in jm_endpoints and \
                    key not in tm_endpoints:
                flow["role"] = "jobmanager-rpc"
                flow["evidence"].append(f"cross-flow: {jm_endpoints[key]}")
                break
            if flow["role"] != "taskmanager-rpc" and key in tm_endpoints and \
                    key not in jm_endpoints:
                flow["role"] = "taskmanager-rpc"
                flow["evidence"].append(f"cross-flow: {tm_endpoints[key]}")
                break
        if flow["role"] == "rpc" and jm_endpoints and endpoint not in jm_endpoints:
            known = ", ".join(f"{ip}:{port}" for ip, port in list(jm_endpoints)[:3])
            flow["role"] = "taskmanager-rpc"
            flow["evidence"].append(f"cross-flow: not the JobManager RPC endpoint ({known}); "
                                    "only TaskManagers run other RPC servers")
        elif flow["role"] == "rpc":
            flow["evidence"].append("JobManager or TaskManager: not determinable from this "
                                    "capture")

    # -- 2. the same server socket seen with a stronger role -------------------------------
    best: dict[tuple, tuple[int, str, str]] = {}
    for flow in out:
        role = flow.get("role")
        if not role or role == "unknown":
            continue
        strength = evidence_strength(flow["evidence"])
        if flow.get("verdict") == "tls" and strength < 3:
            continue  # a TLS flow's own port guess does not teach other flows anything
        endpoint = (flow.get("server_ip"), flow.get("server_port"))
        if endpoint not in best or strength > best[endpoint][0]:
            best[endpoint] = (strength, role, str(flow.get("flow_id")))
    for flow in out:
        endpoint = (flow.get("server_ip"), flow.get("server_port"))
        if endpoint not in best:
            if flow.get("role") in (None, "", "unknown") and not flow["evidence"]:
                flow["role"] = "unknown"
                flow["evidence"].append(NO_EVIDENCE)
            continue
        strength, role, source = best[endpoint]
        if source == str(flow.get("flow_id")) or role == flow.get("role"):
            continue
        mine = evidence_strength(flow["evidence"]) if flow.get("role") != "unknown" else 0
        if strength > mine:
            flow["role"] = role
            flow["evidence"].insert(0, f"cross-flow: same server endpoint {endpoint[0]}:"
                                       f"{endpoint[1]} as flow {source} ({role})")

    # -- 3. TLS flows without a role, placed by who talks to whom ---------------------------
    jm_ips, tm_ips = _component_ips(out)
    for flow in out:
        if flow.get("role") != "unknown" or flow.get("verdict") != "tls":
            continue
        client, server = flow.get("client_ip"), flow.get("server_ip")
        if client in tm_ips and server in tm_ips and not {client, server} & jm_ips:
            # Queryable state can also run TM to TM, but it has no TLS: a TLS flow between two
            # TaskManagers can only be the data plane.
            flow["role"] = "data"
            flow["evidence"] = [f"cross-flow: TLS between TaskManagers {client} and {server}; "
                                "the data plane is Flink's only TLS-capable "
                                "TaskManager-to-TaskManager channel"]
        elif client in jm_ips and server in tm_ips and server not in jm_ips:
            flow["evidence"].append(f"JobManager {client} to TaskManager {server}: metric "
                                    "query service or TaskManager RPC, not told apart under "
                                    "TLS (most likely the metric query service: JobManager "
                                    "RPC calls normally reuse the TaskManager's own "
                                    "connection)")
    return out


def _component_ips(flows: list[dict]) -> tuple[set, set]:
    """IPs that run a JobManager / a TaskManager, judged from flows with a role."""
    jm_ips: set = set()
    tm_ips: set = set()
    for flow in flows:
        role = flow.get("role")
        if evidence_strength(flow.get("evidence") or []) < 1:
            continue
        if role in ("jobmanager-rpc", "blob"):
            jm_ips.add(flow.get("server_ip"))
        if role == "jobmanager-rpc":
            tm_ips.add(flow.get("client_ip"))  # only TaskManagers connect to JobManager RPC
        elif role in ("taskmanager-rpc", "queryable-state", "collect-sink"):
            tm_ips.add(flow.get("server_ip"))
        elif role == "data":
            tm_ips.update((flow.get("server_ip"), flow.get("client_ip")))
    tm_ips.discard(None)
    jm_ips.discard(None)
    return jm_ips, tm_ips


# Which component the server / the client of a role's flow is.
_SERVER_COMPONENT = dict(knowledge.LISTENER_COMPONENT)
_CLIENT_COMPONENT = {
    "data": "taskmanager",            # the consuming TaskManager
    "rest": "client",
    "sql-gateway": "client",
    "history-server": "client",
    "metrics-reporter": "external",   # a Prometheus scraper
    "zookeeper": None,                # JobManager or TaskManager: not knowable from the flow
}


def hosts_from(flows: list[dict]) -> list[dict]:
    """Map IP addresses to Flink components from the flows' roles.

    Returns rows {ip, component, evidence} with component one of jobmanager, taskmanager,
    history-server, sql-gateway, client (talks to REST only) or external (ZooKeeper,
    Kubernetes API, metrics scrapers). An ip may have several components (a JobManager and
    a TaskManager on one host); "client" and "external" are only given to an ip that has no
    Flink component.
    """
    found: dict[tuple[str, str], list[str]] = {}
    host_of = _host_memo()

    def note(ip, component, why):
        if not ip or not component:
            return
        reasons = found.setdefault((str(ip), component), [])
        if why not in reasons and len(reasons) < 5:
            reasons.append(why)

    for flow in flows:
        role = flow.get("role") or "unknown"
        fid = flow.get("flow_id")
        port = flow.get("server_port")
        note(flow.get("server_ip"), _SERVER_COMPONENT.get(role),
             f"serves {role} on port {port} (flow {fid})")
        note(flow.get("client_ip"), _CLIENT_COMPONENT.get(role),
             f"client of {role} (flow {fid})")
        content = flow.get("pekko") or {}
        client = content.get("client_origin") or {}
        if any(m == "ResourceManagerGateway.registerTaskExecutor"
               for m in content.get("c2s_methods") or ()):
            note(flow.get("client_ip"), "taskmanager",
                 f"registers as a TaskExecutor (flow {fid})")
            if host_of(client.get("host")):
                note(host_of(client.get("host")), "taskmanager",
                     f"advertised by a registering TaskExecutor (flow {fid})")
        if role in ("jobmanager-rpc", "taskmanager-rpc"):
            server = content.get("server_origin") or {}
            if host_of(server.get("host")):
                note(host_of(server.get("host")), role.split("-")[0],
                     f"advertised in the {role} handshake (flow {fid})")

    flink_ips = {ip for ip, component in found
                 if component in ("jobmanager", "taskmanager", "history-server",
                                  "sql-gateway")}
    rows = []
    for (ip, component), reasons in sorted(found.items()):
        if component in ("client", "external") and ip in flink_ips:
            continue
        rows.append({"ip": ip, "component": component, "evidence": "; ".join(reasons)})
    return rows
