#!/usr/bin/env python3
"""flinkwire capture lab.

Runs a real Apache Flink cluster (one JobManager, two TaskManagers, each a
separate JVM in its own network namespace) plus a REST client namespace, all
joined by a bridge that lives in a namespace of its own.  tcpdump records the
bridge for the whole life of the cluster.  A small streaming job full of FAKE
sensitive values is submitted over REST, observed, cancelled; then every
process is stopped and the namespaces are removed.

Afterwards the lab writes, beside the capture, the Flink config used and a
ground-truth JSON built from what the lab knows (config, Flink logs, `ss`
inside the namespaces) and from an independent reading of the pcap (its own
tiny pcap/TCP reassembler, cross-checked against tshark).

Usage (root):  python3 captures/lab/lab.py s1 [s2 ...] | all
               python3 captures/lab/lab.py cleanup
Normally called through captures/lab/run.sh.

Only loopback and the lab's own namespaces (192.0.2.0/24, documentation
range) ever see traffic.
"""

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.parse

LAB = os.path.dirname(os.path.abspath(__file__))
# FWLAB_OUT=/some/dir writes the captures/configs/truth files there instead of captures/
CAPTURES = os.environ.get("FWLAB_OUT") or os.path.dirname(LAB)
DL = os.path.join(LAB, ".downloads")
WORKROOT = os.path.join(os.environ["FWLAB_OUT"], "work") if os.environ.get("FWLAB_OUT") \
    else os.path.join(LAB, "work")

BRIDGE_NS = "fwbr"
BRIDGE = "fwbr0"
SUBNET_PREFIX = 24
NODES = [
    # netns, process name, ip, veth name on the bridge side
    ("fwjm", "jobmanager", "192.0.2.10", "vjm"),
    ("fwtm1", "taskmanager-1", "192.0.2.11", "vtm1"),
    ("fwtm2", "taskmanager-2", "192.0.2.12", "vtm2"),
    ("fwclient", "client", "192.0.2.20", "vclient"),
]
JM_IP = "192.0.2.10"
CLIENT_NS = "fwclient"
ALL_NS = [BRIDGE_NS] + [n[0] for n in NODES]
IP_TO_PROC = {n[2]: n[1] for n in NODES}
PROC_TO_NS = {n[1]: n[0] for n in NODES}

# ----------------------------------------------------------------------------
# Fake sensitive values (every one of them invented; see captures/README.md)
# ----------------------------------------------------------------------------
RECORD_VALUES = [
    ("Alice Fakeperson", "name"), ("Bob Examplesson", "name"),
    ("Carol Testington", "name"), ("Dave Placeholder", "name"),
    ("alice.fakeperson@example.com", "email"), ("bob.examplesson@example.org", "email"),
    ("carol.testington@example.net", "email"), ("dave.placeholder@example.com", "email"),
    ("4111111111111111", "card-number"), ("5555555555554444", "card-number"),
    ("378282246310005", "card-number"), ("6011111111111117", "card-number"),
    ("password=hunter2-fake", "password"), ("password=Tr0ub4dor-fake", "password"),
    ("password=correcthorse-fake", "password"), ("password=letmein-fake", "password"),
    ("tok_live_fake_4eC39HqLyjWDarjtT1zdp7dc", "api-token"),
]
JOB_DB_PASSWORD = "s3cr3t-fake-db-pass-7Q2x"
JOB_CONTACT = "oncall-fake@example.net"
JOB_API_KEY = "tok_live_fake_jobparam_9Zy8Xw7V"
PROGRAM_ARGS = [
    "--db.password", JOB_DB_PASSWORD,
    "--db.url", "jdbc:postgresql://db.example.com:5432/shop",
    "--ops.contact", JOB_CONTACT,
    "--payments.api-key", JOB_API_KEY,
    "--records.delay-ms", "100",
    "--checkpoint.interval-ms", "5000",
]
JOB_PARAM_VALUES = [
    (JOB_DB_PASSWORD, "job-parameter-secret"),
    (JOB_CONTACT, "email"),
    (JOB_API_KEY, "job-parameter-secret"),
]
CONFIG_S3_ACCESS = "AKIAFAKEEXAMPLE0LAB01"
CONFIG_S3_SECRET = "fake-s3-secret-key-Qm9vLzEyMw"
KEYSTORE_PASS = "fake-keystore-pass-internal"
REST_KEYSTORE_PASS = "fake-keystore-pass-rest"
CONFIG_VALUES = [
    (CONFIG_S3_ACCESS, "config-secret"),
    (CONFIG_S3_SECRET, "config-secret"),
]
TLS_CONFIG_VALUES = [
    (KEYSTORE_PASS, "config-secret"),
]
REST_TLS_CONFIG_VALUES = [
    (REST_KEYSTORE_PASS, "config-secret"),
]

ENTRY_CLASS = "flinkwire.lab.FakeSecretsJob"
RUN_SECONDS = 25

# ----------------------------------------------------------------------------
# Scenarios
# ----------------------------------------------------------------------------
FIXED_PORTS = {
    "jobmanager.rpc.port": 6123,
    "blob.server.port": 6124,
    "rest.port": 8081,
    "taskmanager.rpc.port": 6122,
    "taskmanager.data.port": 6121,
    "metrics.internal.query-service.port": 6125,
}
RANDOM_PORTS = {
    "jobmanager.rpc.port": 6123,
    "rest.port": 8081,
    # blob.server.port, taskmanager.rpc.port, taskmanager.data.port and
    # metrics.internal.query-service.port left at Flink's default 0 = random
}

SCENARIOS = {
    "s1": dict(name="s1-plaintext", version="2.3.0", ports=FIXED_PORTS,
               internal_tls=False, rest_tls=False, rest_auth=False, tls13=False,
               desc="everything plaintext, fixed ports"),
    "s2": dict(name="s2-internal-tls", version="2.3.0", ports=FIXED_PORTS,
               internal_tls=True, rest_tls=False, rest_auth=False, tls13=False,
               desc="internal TLS (RPC, blob, data), REST plaintext"),
    "s3": dict(name="s3-full-tls-mutual-rest", version="2.3.0", ports=FIXED_PORTS,
               internal_tls=True, rest_tls=True, rest_auth=True, tls13=False,
               desc="internal TLS and REST TLS with REST client authentication"),
    "s4": dict(name="s4-plaintext-random-ports", version="2.3.0", ports=RANDOM_PORTS,
               internal_tls=False, rest_tls=False, rest_auth=False, tls13=False,
               desc="plaintext, Flink's default random ports for TM RPC, data, blob, metrics"),
    "s5": dict(name="s5-internal-tls13", version="2.3.0", ports=FIXED_PORTS,
               internal_tls=True, rest_tls=False, rest_auth=False, tls13=True,
               desc="internal TLS with security.ssl.protocol TLSv1.3 and TLS 1.3 suites"),
    "s6": dict(name="s6-plaintext-flink-1.20", version="1.20.5", ports=FIXED_PORTS,
               internal_tls=False, rest_tls=False, rest_auth=False, tls13=False,
               desc="scenario 1 on Flink 1.20 (flink-conf.yaml)"),
    # extra: the misconfiguration the wire-facts note describes; no job can run
    "s7": dict(name="s7-internal-tls13-no-suites", version="2.3.0", ports=FIXED_PORTS,
               internal_tls=True, rest_tls=False, rest_auth=False, tls13=True, tls13_suites=False,
               expect_no_registration=True,
               desc="internal TLS with security.ssl.protocol TLSv1.3 but the default (TLS 1.2) "
                    "suites: TaskManagers cannot register, no job"),
}

JAVA_OPTS = (
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED "
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED "
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED "
    "--add-opens=java.base/java.lang=ALL-UNNAMED "
    "--add-opens=java.base/java.net=ALL-UNNAMED "
    "--add-opens=java.base/java.io=ALL-UNNAMED "
    "--add-opens=java.base/java.nio=ALL-UNNAMED "
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED "
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED "
    "--add-opens=java.base/java.text=ALL-UNNAMED "
    "--add-opens=java.base/java.time=ALL-UNNAMED "
    "--add-opens=java.base/java.util=ALL-UNNAMED "
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED "
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED "
    "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED"
).split()


def log(*a):
    print("[lab %s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def run(cmd, check=True, capture=False, timeout=120, **kw):
    if capture:
        r = subprocess.run(cmd, check=False, timeout=timeout, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, **kw)
        if check and r.returncode != 0:
            raise RuntimeError("command failed (%d): %s\n%s" % (r.returncode, cmd, r.stderr))
        return r
    r = subprocess.run(cmd, check=False, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("command failed (%d): %s" % (r.returncode, cmd))
    return r


def nsexec(ns, cmd):
    return ["ip", "netns", "exec", ns] + cmd


# ----------------------------------------------------------------------------
# Installation: Flink from PyPI, tcpdump/tshark from apt
# ----------------------------------------------------------------------------
def ensure_tools():
    missing = [t for t in ("tcpdump", "tshark", "curl", "keytool", "javac", "jar", "openssl", "ip", "ss")
               if shutil.which(t) is None]
    apt_pkgs = {"tcpdump": "tcpdump", "tshark": "tshark", "curl": "curl", "openssl": "openssl",
                "ip": "iproute2", "ss": "iproute2", "keytool": "openjdk-17-jdk-headless",
                "javac": "openjdk-17-jdk-headless", "jar": "openjdk-17-jdk-headless"}
    if missing:
        pkgs = sorted({apt_pkgs[t] for t in missing})
        log("installing with apt:", pkgs)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        # wait for the dpkg lock instead of fighting another apt
        run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update"], env=env, timeout=900)
        run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y"] + pkgs, env=env, timeout=1800)


def flink_lib(version):
    """Return the directory holding flink-dist-<version>.jar, downloading the PyPI package if needed."""
    os.makedirs(DL, exist_ok=True)
    dest = os.path.join(DL, "flink-" + version)
    libdir = os.path.join(dest, "lib")
    if os.path.exists(os.path.join(libdir, "flink-dist-%s.jar" % version)):
        return libdir
    pkgs = [f for f in os.listdir(DL) if f.startswith("apache_flink_libraries-%s" % version)
            and (f.endswith(".whl") or f.endswith(".tar.gz"))]
    if not pkgs:
        log("pip download apache-flink-libraries==%s" % version)
        run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", DL,
             "apache-flink-libraries==%s" % version], timeout=1800)
        pkgs = [f for f in os.listdir(DL) if f.startswith("apache_flink_libraries-%s" % version)]
    pkg = os.path.join(DL, sorted(pkgs)[0])
    tmp = dest + ".unpack"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    if pkg.endswith(".whl"):
        import zipfile
        with zipfile.ZipFile(pkg) as z:
            names = [n for n in z.namelist() if n.startswith("pyflink/lib/") and n.endswith(".jar")]
            z.extractall(tmp, names)
        src = os.path.join(tmp, "pyflink", "lib")
    else:
        import tarfile
        with tarfile.open(pkg) as t:
            members = [m for m in t.getmembers() if "/lib/" in m.name and m.name.endswith(".jar")]
            t.extractall(tmp, members)
        cands = [os.path.dirname(os.path.join(r, f)) for r, _, fs in os.walk(tmp) for f in fs
                 if f == "flink-dist-%s.jar" % version]
        src = cands[0]
    os.makedirs(dest, exist_ok=True)
    shutil.rmtree(libdir, ignore_errors=True)
    shutil.move(src, libdir)
    shutil.rmtree(tmp, ignore_errors=True)
    return libdir


def classpath(libdir):
    jars = sorted(os.path.join(libdir, j) for j in os.listdir(libdir)
                  if j.startswith("flink-dist") or j.startswith("log4j"))
    return ":".join(jars)


def build_job(libdir, version, work):
    dist = [os.path.join(libdir, j) for j in os.listdir(libdir) if j.startswith("flink-dist")][0]
    out = os.path.join(work, "jobbuild")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    src = os.path.join(LAB, "job", "src", "flinkwire", "lab", "FakeSecretsJob.java")
    run(["javac", "-nowarn", "--release", "11", "-cp", dist, "-d", out, src], timeout=300)
    jarpath = os.path.join(work, "flinkwire-lab-job.jar")
    run(["jar", "--create", "--file", jarpath, "--main-class", ENTRY_CLASS, "-C", out, "."], timeout=120)
    return jarpath


# ----------------------------------------------------------------------------
# TLS material
# ----------------------------------------------------------------------------
def make_tls(work):
    d = os.path.join(work, "tls")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    kt = ["keytool", "-noprompt"]

    def run(cmd):  # keep keytool/openssl chatter out of the lab output
        return globals()["run"](cmd, capture=True)
    # internal: one key pair, used as keystore and truststore by every process
    run(kt + ["-genkeypair", "-alias", "flink.internal", "-keyalg", "RSA", "-keysize", "2048",
              "-validity", "3650", "-dname", "CN=flink.internal.lab.example",
              "-ext", "SAN=dns:flink.internal.lab.example,ip:192.0.2.10,ip:192.0.2.11,ip:192.0.2.12",
              "-storetype", "PKCS12", "-keystore", os.path.join(d, "internal.keystore.p12"),
              "-storepass", KEYSTORE_PASS, "-keypass", KEYSTORE_PASS])
    # REST server key pair
    run(kt + ["-genkeypair", "-alias", "flink.rest", "-keyalg", "RSA", "-keysize", "2048",
              "-validity", "3650", "-dname", "CN=flink-rest.lab.example",
              "-ext", "SAN=dns:flink-rest.lab.example,ip:192.0.2.10",
              "-storetype", "PKCS12", "-keystore", os.path.join(d, "rest.keystore.p12"),
              "-storepass", REST_KEYSTORE_PASS, "-keypass", REST_KEYSTORE_PASS])
    # REST client (operator) key pair
    run(kt + ["-genkeypair", "-alias", "ops-client", "-keyalg", "RSA", "-keysize", "2048",
              "-validity", "3650", "-dname", "CN=ops-client.lab.example",
              "-storetype", "PKCS12", "-keystore", os.path.join(d, "client.keystore.p12"),
              "-storepass", REST_KEYSTORE_PASS, "-keypass", REST_KEYSTORE_PASS])
    run(kt + ["-exportcert", "-rfc", "-alias", "flink.rest", "-keystore",
              os.path.join(d, "rest.keystore.p12"), "-storepass", REST_KEYSTORE_PASS,
              "-file", os.path.join(d, "rest-server.crt.pem")])
    run(kt + ["-exportcert", "-rfc", "-alias", "ops-client", "-keystore",
              os.path.join(d, "client.keystore.p12"), "-storepass", REST_KEYSTORE_PASS,
              "-file", os.path.join(d, "client.crt.pem")])
    # REST truststore: trusts the server cert (for Flink's own REST client) and the client cert
    for alias, f in (("flink.rest", "rest-server.crt.pem"), ("ops-client", "client.crt.pem")):
        run(kt + ["-importcert", "-alias", alias, "-file", os.path.join(d, f),
                  "-storetype", "PKCS12", "-keystore", os.path.join(d, "rest.truststore.p12"),
                  "-storepass", REST_KEYSTORE_PASS])
    # client private key as PEM for curl
    run(["openssl", "pkcs12", "-in", os.path.join(d, "client.keystore.p12"), "-nocerts", "-nodes",
         "-passin", "pass:" + REST_KEYSTORE_PASS, "-out", os.path.join(d, "client.key.pem")])
    return d


# ----------------------------------------------------------------------------
# Flink config
# ----------------------------------------------------------------------------
def flink_config(sc):
    c = {}
    c["jobmanager.rpc.address"] = JM_IP
    # 1.20's REST jar-run path uploads the job files to the BlobServer at
    # "localhost" (seen: "Could not connect to BlobServer at address
    # localhost/127.0.0.1:6124"), so on 1.x the JobManager binds to all of
    # its namespace's addresses; the JobManager's namespace has only lo and 192.0.2.10.
    c["jobmanager.bind-host"] = JM_IP if sc["version"].startswith("2.") else "0.0.0.0"
    c["rest.address"] = JM_IP
    c["rest.bind-address"] = JM_IP
    for k, v in sc["ports"].items():
        c[k] = v
    c["jobmanager.memory.process.size"] = "1024m"
    # TaskManagerRunner started without Flink's bash scripts needs the resource
    # spec spelled out (the scripts normally pass these as dynamic properties)
    c["taskmanager.cpu.cores"] = 1.0
    c["taskmanager.memory.framework.heap.size"] = "128m"
    c["taskmanager.memory.task.heap.size"] = "256m"
    c["taskmanager.memory.framework.off-heap.size"] = "128m"
    c["taskmanager.memory.task.off-heap.size"] = "0m"
    c["taskmanager.memory.network.min"] = "64m"
    c["taskmanager.memory.network.max"] = "64m"
    c["taskmanager.memory.managed.size"] = "128m"
    c["taskmanager.memory.jvm-metaspace.size"] = "256m"
    c["taskmanager.memory.jvm-overhead.min"] = "192m"
    c["taskmanager.memory.jvm-overhead.max"] = "192m"
    c["taskmanager.numberOfTaskSlots"] = 1
    c["parallelism.default"] = 2
    c["io.tmp.dirs"] = "tmp"
    c["web.tmpdir"] = "tmp/web"
    c["blob.storage.directory"] = "tmp/blob"
    c["heartbeat.interval"] = 10000
    # fake secrets an operator might leave in the cluster config
    c["s3.access-key"] = CONFIG_S3_ACCESS
    c["s3.secret-key"] = CONFIG_S3_SECRET
    if sc["internal_tls"]:
        c["security.ssl.internal.enabled"] = "true"
        c["security.ssl.internal.keystore"] = "tls/internal.keystore.p12"
        c["security.ssl.internal.truststore"] = "tls/internal.keystore.p12"
        c["security.ssl.internal.keystore-password"] = KEYSTORE_PASS
        c["security.ssl.internal.key-password"] = KEYSTORE_PASS
        c["security.ssl.internal.truststore-password"] = KEYSTORE_PASS
        c["security.ssl.internal.keystore-type"] = "PKCS12"
        c["security.ssl.internal.truststore-type"] = "PKCS12"
    if sc["tls13"]:
        c["security.ssl.protocol"] = "TLSv1.3"
        if sc.get("tls13_suites", True):
            c["security.ssl.algorithms"] = "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384"
    if sc["rest_tls"]:
        c["security.ssl.rest.enabled"] = "true"
        c["security.ssl.rest.keystore"] = "tls/rest.keystore.p12"
        c["security.ssl.rest.truststore"] = "tls/rest.truststore.p12"
        c["security.ssl.rest.keystore-password"] = REST_KEYSTORE_PASS
        c["security.ssl.rest.key-password"] = REST_KEYSTORE_PASS
        c["security.ssl.rest.truststore-password"] = REST_KEYSTORE_PASS
        c["security.ssl.rest.keystore-type"] = "PKCS12"
        c["security.ssl.rest.truststore-type"] = "PKCS12"
        if sc["rest_auth"]:
            c["security.ssl.rest.authentication-enabled"] = "true"
    return c


def config_text(sc, conf, tm_dyn):
    v = sc["version"]
    lines = [
        "# flinkwire lab: Flink %s config for scenario %s (%s)." % (v, sc["name"], sc["desc"]),
        "# Used verbatim by the JobManager and both TaskManagers (file name in the lab: %s)."
        % ("config.yaml" if v.startswith("2.") else "flink-conf.yaml"),
        "# Per-TaskManager dynamic properties given on the command line (-D):",
    ]
    for name, dyn in tm_dyn.items():
        lines.append("#   %s: %s" % (name, " ".join("-D %s=%s" % kv for kv in dyn.items())))
    lines.append("# Relative paths are relative to each JVM's own working directory.")
    lines.append("# ALL secrets below (keys, passwords) are FAKE lab values.")
    for k, val in conf.items():
        lines.append("%s: %s" % (k, val))
    return "\n".join(lines) + "\n"


LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
appender.main.name = MainAppender
appender.main.type = File
appender.main.append = true
appender.main.fileName = ${sys:log.file}
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
logger.pekko.name = org.apache.pekko
logger.pekko.level = INFO
logger.netty.name = org.apache.flink.shaded.netty4.io.netty
logger.netty.level = INFO
"""


# ----------------------------------------------------------------------------
# Namespaces
# ----------------------------------------------------------------------------
def cleanup_everything(quiet=True):
    """Idempotent: kill every process inside the lab namespaces, delete them."""
    existing = run(["ip", "netns", "list"], capture=True, check=False).stdout
    for ns in ALL_NS:
        if re.search(r"^%s\b" % re.escape(ns), existing, re.M):
            r = run(["ip", "netns", "pids", ns], capture=True, check=False)
            pids = [int(p) for p in r.stdout.split() if p.strip().isdigit()]
            for p in pids:
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 15
            while pids and time.time() < deadline:
                pids = [p for p in pids if os.path.exists("/proc/%d" % p)]
                time.sleep(0.3)
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            run(["ip", "netns", "del", ns], check=False)
            if not quiet:
                log("removed netns", ns)


def setup_netns():
    cleanup_everything()
    run(["ip", "netns", "add", BRIDGE_NS])
    sysctl_off_v6(BRIDGE_NS)
    run(["ip", "-n", BRIDGE_NS, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0",
         "forward_delay", "0"])
    for ns, _, ip, veth in NODES:
        run(["ip", "netns", "add", ns])
        sysctl_off_v6(ns)
        run(["ip", "-n", BRIDGE_NS, "link", "add", veth, "type", "veth", "peer", "name", "eth0",
             "netns", ns])
        run(["ip", "-n", BRIDGE_NS, "link", "set", veth, "master", BRIDGE])
        run(["ip", "-n", BRIDGE_NS, "link", "set", veth, "up"])
        run(["ip", "-n", ns, "addr", "add", "%s/%d" % (ip, SUBNET_PREFIX), "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    run(["ip", "-n", BRIDGE_NS, "link", "set", BRIDGE, "up"])


def sysctl_off_v6(ns):
    for k in ("net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"):
        run(nsexec(ns, ["sysctl", "-q", "-w", k + "=1"]), check=False)


# ----------------------------------------------------------------------------
# Processes
# ----------------------------------------------------------------------------
class Proc:
    def __init__(self, name, popen, logfile=None):
        self.name, self.p, self.logfile = name, popen, logfile


def start_jvm(sc, name, ns, main, libdir, confdir, work, dyn):
    pdir = os.path.join(work, name)
    os.makedirs(os.path.join(pdir, "tmp", "web"), exist_ok=True)
    os.makedirs(os.path.join(pdir, "tmp", "blob"), exist_ok=True)
    if sc["internal_tls"] or sc["rest_tls"]:
        link = os.path.join(pdir, "tls")
        if not os.path.exists(link):
            os.symlink(os.path.join(work, "tls"), link)
    logfile = os.path.join(work, "logs", name + ".log")
    if main.endswith("TaskManagerRunner"):
        # = framework.heap + task.heap; direct >= framework.off-heap + task.off-heap + network
        cmd = ["java", "-Xms384m", "-Xmx384m", "-XX:MaxDirectMemorySize=256m",
               "-XX:MaxMetaspaceSize=256m"]
    else:
        cmd = ["java", "-Xms512m", "-Xmx512m", "-XX:MaxMetaspaceSize=256m"]
    cmd += JAVA_OPTS + [
        "-Dlog.file=" + logfile,
        "-Dlog4j.configurationFile=file:" + os.path.join(work, "log4j.properties"),
        "-Djava.io.tmpdir=" + os.path.join(pdir, "tmp"),
        "-cp", classpath(libdir), main, "--configDir", confdir,
    ]
    for k, v in dyn.items():
        cmd += ["-D", "%s=%s" % (k, v)]
    out = open(os.path.join(work, "logs", name + ".out"), "ab")
    p = subprocess.Popen(nsexec(ns, cmd), cwd=pdir, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    log("started", name, "pid", p.pid, "in", ns)
    return Proc(name, p, logfile)


def wait_log(proc, pattern, timeout, what):
    deadline = time.time() + timeout
    rx = re.compile(pattern)
    while time.time() < deadline:
        if proc.p.poll() is not None:
            raise RuntimeError("%s exited (rc=%s) while waiting for %s" % (proc.name, proc.p.returncode, what))
        try:
            with open(proc.logfile, errors="replace") as f:
                txt = f.read()
            m = rx.search(txt)
            if m:
                return m
        except FileNotFoundError:
            pass
        time.sleep(0.5)
    raise RuntimeError("timeout (%ss) waiting for %s in %s" % (timeout, what, proc.logfile))


def stop_proc(proc, timeout=30):
    if proc.p.poll() is not None:
        return
    try:
        os.killpg(proc.p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log("SIGKILL", proc.name)
        os.killpg(proc.p.pid, signal.SIGKILL)
        proc.p.wait(timeout=10)
    log("stopped", proc.name, "rc", proc.p.returncode)


# ----------------------------------------------------------------------------
# REST client (curl inside the client netns)
# ----------------------------------------------------------------------------
class Rest:
    def __init__(self, sc, work):
        self.sc, self.work = sc, work
        self.base = "%s://%s:%d" % ("https" if sc["rest_tls"] else "http", JM_IP, sc["ports"]["rest.port"])
        self.transcript = open(os.path.join(work, "rest-transcript.txt"), "a")
        self.count = 0

    def curl(self, method, path, data=None, form=None, timeout=60):
        cmd = ["curl", "-sS", "--max-time", str(timeout), "-X", method, "-H", "Expect:"]
        if self.sc["rest_tls"]:
            tls = os.path.join(self.work, "tls")
            cmd += ["--cacert", os.path.join(tls, "rest-server.crt.pem")]
            if self.sc["rest_auth"]:
                cmd += ["--cert", os.path.join(tls, "client.crt.pem"),
                        "--key", os.path.join(tls, "client.key.pem")]
        if data is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(data)]
        if form is not None:
            cmd += ["-F", form]
        cmd += ["-w", "\n%{http_code}", self.base + path]
        r = run(nsexec(CLIENT_NS, cmd), capture=True, check=False, timeout=timeout + 10)
        self.count += 1
        body, _, code = r.stdout.rpartition("\n")
        self.transcript.write("### %s %s -> %s (curl rc %d)\n%s\n%s\n" % (method, path, code, r.returncode,
                                                                          body[:4000], r.stderr[:1000]))
        self.transcript.flush()
        if r.returncode != 0:
            raise RuntimeError("curl %s %s failed: %s" % (method, path, r.stderr))
        try:
            return int(code), json.loads(body) if body.strip() else None
        except ValueError:
            return int(code), body


# ----------------------------------------------------------------------------
# ss snapshots
# ----------------------------------------------------------------------------
def parse_addr(s):
    s = s.replace("[::ffff:", "").replace("]", "").replace("[", "")
    host, _, port = s.rpartition(":")
    return host, port


def ss_listen(ns):
    r = run(nsexec(ns, ["ss", "-Hltnp"]), capture=True)
    res = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        host, port = parse_addr(parts[3])
        pid = re.search(r"pid=(\d+)", line)
        res.append({"host": host, "port": int(port), "pid": int(pid.group(1)) if pid else None,
                    "raw": line})
    return res


def ss_snapshot(work, label):
    with open(os.path.join(work, "ss-%s.txt" % label), "w") as f:
        for ns in ALL_NS:
            r = run(nsexec(ns, ["ss", "-tanp"]), capture=True, check=False)
            f.write("===== netns %s\n%s\n" % (ns, r.stdout))
    return os.path.join(work, "ss-%s.txt" % label)


def check_distinct_endpoints(work, label):
    """Every established TCP socket inside a node netns must use that node's own address."""
    problems, seen = [], 0
    for ns, name, ip, _ in NODES:
        r = run(nsexec(ns, ["ss", "-Htan", "state", "established"]), capture=True, check=False)
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            lh, _ = parse_addr(parts[2])
            rh, _ = parse_addr(parts[3])
            if lh.startswith("127.") or rh.startswith("127."):
                continue
            seen += 1
            if lh != ip:
                problems.append("%s: local %s is not %s" % (ns, parts[2], ip))
    log("ss check (%s): %d established inter-node sockets, %d problems" % (label, seen, len(problems)))
    return seen, problems


# ----------------------------------------------------------------------------
# Listening-role mapping from config + logs
# ----------------------------------------------------------------------------
def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def roles_from_logs(name, ip, logtxt, outtxt):
    """Return {port: role} as printed in a process's log."""
    txt = logtxt + "\n" + outtxt
    roles = {}
    q = re.escape(ip)
    # actor systems: "Actor system started at pekko[.ssl].tcp://flink@ip:port"
    for m in re.finditer(r"Actor system started at (?:pekko|akka)(?:\.ssl)?\.tcp://(flink(?:-metrics)?)@%s:(\d+)" % q, txt):
        sysname, port = m.group(1), int(m.group(2))
        if sysname == "flink-metrics":
            roles[port] = "metrics-rpc"
        else:
            roles[port] = "jobmanager-rpc" if name == "jobmanager" else "taskmanager-rpc"
    for m in re.finditer(r"Started BLOB server at [^:\s]*:(\d+)", txt):
        roles[int(m.group(1))] = "blob"
    for m in re.finditer(r"Rest endpoint listening at [^:\s]+:(\d+)", txt):
        roles[int(m.group(1))] = "rest"
    for m in re.finditer(r"Successful initialization \(took \d+ ms\)\. Listening on SocketAddress /?[0-9.]*:(\d+)", txt):
        roles[int(m.group(1))] = "data"
    return roles


def build_listening(sc, work, listen_snap, pid_of):
    conf_ports = sc["ports"]
    out = []
    problems = []
    for ns, name, ip, _ in NODES:
        if name == "client":
            continue
        logtxt = read(os.path.join(work, "logs", name + ".log"))
        outtxt = read(os.path.join(work, "logs", name + ".out"))
        logroles = roles_from_logs(name, ip, logtxt, outtxt)
        # what the config says
        cfg = {}
        if name == "jobmanager":
            for k, role in (("jobmanager.rpc.port", "jobmanager-rpc"), ("blob.server.port", "blob"),
                            ("rest.port", "rest"), ("metrics.internal.query-service.port", "metrics-rpc")):
                if k in conf_ports:
                    cfg[conf_ports[k]] = role
        else:
            for k, role in (("taskmanager.rpc.port", "taskmanager-rpc"), ("taskmanager.data.port", "data"),
                            ("metrics.internal.query-service.port", "metrics-rpc")):
                if k in conf_ports:
                    cfg[conf_ports[k]] = role
        for port, role in cfg.items():
            if logroles.get(port) not in (None, role):
                problems.append("%s: config says %d=%s, log says %s" % (name, port, role, logroles[port]))
        entries = []
        for s in listen_snap[ns]:
            if s["host"].startswith("127."):
                continue
            port = s["port"]
            role = logroles.get(port) or cfg.get(port) or "unknown"
            if role == "unknown":
                problems.append("%s: listening port %d has no known role (%s)" % (name, port, s["raw"]))
            if s["pid"] is not None and pid_of.get(name) and s["pid"] != pid_of[name]:
                problems.append("%s: port %d owned by pid %s, expected %s" % (name, port, s["pid"], pid_of[name]))
            entries.append({"port": port, "role": role})
        for port, role in logroles.items():
            if port not in [e["port"] for e in entries]:
                problems.append("%s: log says %s on %d but ss did not show it listening" % (name, role, port))
        entries.sort(key=lambda e: e["port"])
        out.append({"name": name, "ip": ip, "listening": entries})
    out.append({"name": "client", "ip": [n[2] for n in NODES if n[1] == "client"][0], "listening": []})
    return out, problems


# ----------------------------------------------------------------------------
# Independent pcap reader + TCP reassembly (no flinkwire, no scapy/dpkt)
# ----------------------------------------------------------------------------
def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise RuntimeError("not a classic pcap: %r" % magic)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise RuntimeError("expected Ethernet link type, got %d" % linktype)
    off = 24
    n = 0
    while off + 16 <= len(data):
        ts_s, ts_u, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + incl]
        off += incl
        n += 1
        if incl != orig:
            raise RuntimeError("truncated packet %d (snaplen too small)" % n)
        eth_type = struct.unpack(">H", frame[12:14])[0]
        p = 14
        while eth_type == 0x8100:
            eth_type = struct.unpack(">H", frame[p + 2:p + 4])[0]
            p += 4
        if eth_type != 0x0800:
            continue
        ip = frame[p:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6:
            continue
        src = ".".join(str(b) for b in ip[12:16])
        dst = ".".join(str(b) for b in ip[16:20])
        tcp = ip[ihl:total]
        sport, dport, seq, ack = struct.unpack(">HHII", tcp[:12])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        payload = tcp[doff:]
        yield (ts_s + ts_u / 1e6, src, sport, dst, dport, seq, flags, payload)


class Stream:
    def __init__(self, idx, client, server, syn_seen):
        self.idx, self.client, self.server = idx, client, server
        self.syn_seen = syn_seen
        self.isn = {}
        self.buf = {"c2s": bytearray(), "s2c": bytearray()}
        self.payload_bytes = {"c2s": 0, "s2c": 0}
        self.fin = False
        self.rst = False


def reassemble(path):
    streams = []
    live = {}
    for ts, src, sport, dst, dport, seq, flags, payload in read_pcap(path):
        a, b = (src, sport), (dst, dport)
        key = frozenset((a, b))
        syn = flags & 0x02
        ackf = flags & 0x10
        st = live.get(key)
        if syn and not ackf:
            if st is None or st.fin or st.rst or (st.isn.get("c2s") is not None and st.isn["c2s"] != seq):
                st = Stream(len(streams), a, b, True)
                streams.append(st)
                live[key] = st
            st.isn["c2s"] = seq
            continue
        if st is None:
            # no SYN seen: treat the sender of the first packet as client (should not happen)
            st = Stream(len(streams), a, b, False)
            streams.append(st)
            live[key] = st
        d = "c2s" if a == st.client else "s2c"
        if syn and ackf:
            st.isn["s2c"] = seq
            continue
        if flags & 0x04:
            st.rst = True
        if flags & 0x01:
            st.fin = True
        if payload:
            if d not in st.isn:
                st.isn[d] = (seq - 1) & 0xFFFFFFFF
            rel = (seq - st.isn[d] - 1) & 0xFFFFFFFF
            buf = st.buf[d]
            end = rel + len(payload)
            if end > len(buf):
                buf.extend(b"\0" * (end - len(buf)))
            buf[rel:end] = payload
            st.payload_bytes[d] += len(payload)
    return streams


def tshark_check(path):
    """Independent numbers from tshark: SYN count and per-stream payload totals."""
    r = run(["tshark", "-r", path, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields",
             "-e", "tcp.stream"], capture=True, timeout=300)
    syn_streams = sorted({int(x) for x in r.stdout.split()})
    r = run(["tshark", "-r", path, "-Y", "tcp", "-T", "fields", "-e", "tcp.stream", "-e", "tcp.len"],
            capture=True, timeout=300)
    pay = {}
    for line in r.stdout.splitlines():
        s, _, l = line.partition("\t")
        if s:
            pay[int(s)] = pay.get(int(s), 0) + int(l or 0)
    return syn_streams, pay


# ----------------------------------------------------------------------------
# Truth
# ----------------------------------------------------------------------------
INTERNAL_ROLES = {"jobmanager-rpc", "taskmanager-rpc", "metrics-rpc", "blob", "data"}


def build_truth(sc, work, pcap_name, cfg_name, processes, extra_problems):
    pcap = os.path.join(CAPTURES, pcap_name)
    streams = reassemble(pcap)
    syn_streams, tpay = tshark_check(pcap)
    problems = list(extra_problems)
    if len(syn_streams) != len(streams) or not all(s.syn_seen for s in streams):
        problems.append("stream count mismatch: tshark SYN streams %d, lab reader %d"
                        % (len(syn_streams), len(streams)))
    for s in streams:
        tot = s.payload_bytes["c2s"] + s.payload_bytes["s2c"]
        if tpay.get(s.idx) is not None and tpay[s.idx] != tot:
            problems.append("payload mismatch stream %d: tshark %d, lab %d" % (s.idx, tpay[s.idx], tot))
    listen = {}
    for p in processes:
        for e in p["listening"]:
            listen[(p["ip"], e["port"])] = e["role"]
    conns = []
    details = []
    role_of_stream = {}
    for s in streams:
        sip, sport = s.server
        role = listen.get((sip, sport), "unknown")
        tot = s.payload_bytes["c2s"] + s.payload_bytes["s2c"]
        if tot == 0:
            verdict = "no-payload"
        elif role in INTERNAL_ROLES:
            verdict = "tls" if sc["internal_tls"] else "plaintext"
        elif role == "rest":
            verdict = "tls" if sc["rest_tls"] else "plaintext"
        else:
            first = bytes(s.buf["c2s"][:1] or s.buf["s2c"][:1])
            verdict = "tls" if first == b"\x16" else "plaintext"
        # sanity: the bytes must agree with the verdict
        first = bytes(s.buf["c2s"][:3] or s.buf["s2c"][:3])
        looks_tls = len(first) >= 2 and first[0] == 0x16 and first[1] == 0x03
        if verdict == "tls" and not looks_tls:
            problems.append("stream %d (%s) expected tls but starts %r" % (s.idx, role, first))
        if verdict == "plaintext" and looks_tls:
            problems.append("stream %d (%s) expected plaintext but starts like TLS" % (s.idx, role))
        role_of_stream[s.idx] = role
        conns.append({
            "client": "%s:%d" % s.client, "server": "%s:%d" % s.server,
            "client_process": IP_TO_PROC.get(s.client[0], "unknown"),
            "server_process": IP_TO_PROC.get(sip, "unknown"),
            "server_role": role, "expected_verdict": verdict,
        })
        details.append({"stream": s.idx, "client": "%s:%d" % s.client, "server": "%s:%d" % s.server,
                         "role": role, "payload_c2s": s.payload_bytes["c2s"],
                         "payload_s2c": s.payload_bytes["s2c"],
                         "first_bytes_c2s": bytes(s.buf["c2s"][:16]).hex(),
                         "first_bytes_s2c": bytes(s.buf["s2c"][:16]).hex()})
    values = RECORD_VALUES + JOB_PARAM_VALUES + CONFIG_VALUES
    if sc["internal_tls"]:
        values = values + TLS_CONFIG_VALUES
    if sc["rest_tls"]:
        values = values + REST_TLS_CONFIG_VALUES
    injected = []
    for val, kind in values:
        needle = val.encode()
        roles = set()
        n_conn = 0
        for s in streams:
            if needle in s.buf["c2s"] or needle in s.buf["s2c"]:
                roles.add(role_of_stream[s.idx])
                n_conn += 1
        injected.append({"value": val, "kind": kind, "readable_on_roles": sorted(roles)})
        details.append({"value": val, "connections_where_readable": n_conn})
    if sc["internal_tls"]:
        for inj in injected:
            bad = set(inj["readable_on_roles"]) & INTERNAL_ROLES
            if bad:
                problems.append("%r readable on internal roles %s despite internal TLS" % (inj["value"], bad))
    truth = {
        "scenario": sc["name"], "flink_version": sc["version"], "capture": pcap_name,
        "config_file": cfg_name,
        "processes": processes,
        "connections": conns,
        "injected": injected,
    }
    with open(os.path.join(work, "truth-details.json"), "w") as f:
        json.dump(details, f, indent=1)
    return truth, problems


# ----------------------------------------------------------------------------
# One scenario
# ----------------------------------------------------------------------------
def observe_broken_cluster(sc, work, rest, problems):
    """TaskManagers cannot talk to the JobManager: watch their retries, ask REST, no job."""
    time.sleep(RUN_SECONDS / 2)
    ss_snapshot(work, "running")
    check_distinct_endpoints(work, "running")
    for path in ("/overview", "/taskmanagers", "/jobmanager/config"):
        code, body = rest.curl("GET", path)
        with open(os.path.join(work, "rest-%s.json" % path.strip("/").replace("/", "_")), "w") as f:
            json.dump(body, f, indent=1)
        if path == "/overview" and isinstance(body, dict):
            log("overview: taskmanagers =", body.get("taskmanagers"))
            if body.get("taskmanagers") not in (0, None):
                problems.append("expected no registered TaskManager, overview says %s" % body.get("taskmanagers"))
    time.sleep(RUN_SECONDS / 2)


def probe_rest_without_client_cert(sc, work):
    """REST client auth on: a curl without a client certificate must be refused."""
    tls = os.path.join(work, "tls")
    cmd = ["curl", "-sS", "--max-time", "20", "--cacert", os.path.join(tls, "rest-server.crt.pem"),
           "https://%s:%d/overview" % (JM_IP, sc["ports"]["rest.port"])]
    r = run(nsexec(CLIENT_NS, cmd), capture=True, check=False, timeout=40)
    with open(os.path.join(work, "rest-transcript.txt"), "a") as f:
        f.write("### GET /overview WITHOUT client certificate -> curl rc %d\n%s\n%s\n"
                % (r.returncode, r.stdout[:2000], r.stderr[:1000]))
    log("REST without client cert: curl rc", r.returncode, r.stderr.strip()[:120])
    return r.returncode


def run_scenario(key):
    sc = SCENARIOS[key]
    name = sc["name"]
    v = sc["version"]
    log("=== scenario", name, "Flink", v)
    work = os.path.join(WORKROOT, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "logs"))
    os.makedirs(os.path.join(work, "conf"))
    libdir = flink_lib(v)
    jar = build_job(libdir, v, work)
    if sc["internal_tls"] or sc["rest_tls"]:
        make_tls(work)
    conf = flink_config(sc)
    tm_dyn = {}
    for ns, pname, ip, _ in NODES:
        if pname.startswith("taskmanager"):
            tm_dyn[pname] = {"taskmanager.host": ip, "taskmanager.bind-host": ip,
                             "taskmanager.resource-id": pname}
    text = config_text(sc, conf, tm_dyn)
    conf_file = "config.yaml" if v.startswith("2.") else "flink-conf.yaml"
    with open(os.path.join(work, "conf", conf_file), "w") as f:
        f.write(text)
    with open(os.path.join(work, "log4j.properties"), "w") as f:
        f.write(LOG4J)
    pcap_tmp = os.path.join(work, name + ".pcap")
    procs = []
    tcpdump = None
    problems = []
    problems_expected = []
    try:
        setup_netns()
        tcpdump = subprocess.Popen(
            nsexec(BRIDGE_NS, ["tcpdump", "-i", BRIDGE, "-s", "0", "-U", "-n", "-Z", "root",
                               "-w", pcap_tmp]),
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "logs", "tcpdump.err"), "w"),
            start_new_session=True)
        t0 = time.time()
        while "listening on" not in read(os.path.join(work, "logs", "tcpdump.err")):
            if tcpdump.poll() is not None or time.time() - t0 > 20:
                raise RuntimeError("tcpdump did not start: " + read(os.path.join(work, "logs", "tcpdump.err")))
            time.sleep(0.2)
        time.sleep(1)
        confdir = os.path.join(work, "conf")
        jm = start_jvm(sc, "jobmanager", "fwjm",
                       "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
                       libdir, confdir, work, {})
        procs.append(jm)
        wait_log(jm, r"Rest endpoint listening at", 120, "REST endpoint")
        wait_log(jm, r"Starting the resource manager|Starting RPC endpoint for .*ResourceManager", 120,
                 "resource manager")
        tms = []
        for ns, pname, ip, _ in NODES:
            if pname.startswith("taskmanager"):
                tm = start_jvm(sc, pname, ns, "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
                               libdir, confdir, work, tm_dyn[pname])
                procs.append(tm)
                tms.append(tm)
        if sc.get("expect_no_registration"):
            # the TaskManagers are expected NOT to register: wait for the failure in their logs
            for tm in tms:
                m = wait_log(tm, r"SSLHandshakeException[^\n]*|No appropriate protocol[^\n]*", 120,
                             "%s TLS failure" % tm.name)
                log(tm.name, "failed as expected:", m.group(0)[:160])
                problems_expected.append("%s: %s" % (tm.name, m.group(0)[:300]))
            time.sleep(3)
        else:
            for tm in tms:
                wait_log(tm, r"Successful registration at resource manager", 120,
                         "%s registration" % tm.name)
            time.sleep(2)
        listen_snap = {ns: ss_listen(ns) for ns, _, _, _ in NODES}
        with open(os.path.join(work, "ss-listen.txt"), "w") as f:
            for ns in listen_snap:
                f.write("===== netns %s\n" % ns)
                for s in listen_snap[ns]:
                    f.write(s["raw"] + "\n")
        pid_of = {}
        for pr in procs:
            # the JVM is the child of `ip netns exec` (which execs, so same pid)
            pid_of[pr.name] = pr.p.pid

        rest = Rest(sc, work)
        if sc.get("expect_no_registration"):
            observe_broken_cluster(sc, work, rest, problems)
        else:
            code, up = rest.curl("POST", "/jars/upload", form="jarfile=@%s;type=application/x-java-archive" % jar)
            if code != 200 or not isinstance(up, dict) or up.get("status") != "success":
                raise RuntimeError("jar upload failed: %s %s" % (code, up))
            jar_id = os.path.basename(up["filename"])
            log("uploaded jar", jar_id)
            code, started = rest.curl("POST", "/jars/%s/run" % urllib.parse.quote(jar_id),
                                      data={"entryClass": ENTRY_CLASS, "programArgsList": PROGRAM_ARGS,
                                            "parallelism": 2}, timeout=120)
            if code != 200 or not isinstance(started, dict) or "jobid" not in started:
                raise RuntimeError("job run failed: %s %s" % (code, started))
            job = started["jobid"]
            log("job", job)
            deadline = time.time() + 90
            while True:
                code, info = rest.curl("GET", "/jobs/%s" % job)
                verts = info.get("vertices", []) if isinstance(info, dict) else []
                if verts and all(vx.get("status") == "RUNNING" for vx in verts):
                    break
                if isinstance(info, dict) and info.get("state") in ("FAILED", "CANCELED", "FINISHED"):
                    raise RuntimeError("job ended early: %s" % info.get("state"))
                if time.time() > deadline:
                    raise RuntimeError("job did not reach RUNNING: %s" % str(info)[:500])
                time.sleep(2)
            log("job running; letting it run %ds" % RUN_SECONDS)
            time.sleep(RUN_SECONDS / 2)
            ss_snapshot(work, "running")
            seen, p = check_distinct_endpoints(work, "running")
            problems += p
            if seen < 4:
                problems.append("only %d established inter-node sockets seen" % seen)
            time.sleep(RUN_SECONDS / 2)
            for path in ("/overview", "/jobs", "/jobmanager/config", "/taskmanagers",
                         "/jobs/%s/config" % job, "/jobs/%s/checkpoints" % job):
                code, body = rest.curl("GET", path)
                if code != 200:
                    problems.append("GET %s returned %s" % (path, code))
                with open(os.path.join(work, "rest-%s.json" % path.strip("/").replace("/", "_")), "w") as f:
                    json.dump(body, f, indent=1)
            if sc["rest_auth"]:
                if probe_rest_without_client_cert(sc, work) == 0:
                    problems.append("REST answered a client without certificate")
                else:
                    problems_expected.append("REST refused a TLS client without certificate")
            code, _ = rest.curl("PATCH", "/jobs/%s?mode=cancel" % job)
            log("cancel ->", code)
            deadline = time.time() + 60
            while time.time() < deadline:
                time.sleep(2)
                code, info = rest.curl("GET", "/jobs/%s" % job)
                if isinstance(info, dict) and info.get("state") == "CANCELED":
                    break
            else:
                problems.append("job did not reach CANCELED")
        log("job canceled; stopping cluster")
        for tm in reversed(tms):
            stop_proc(tm)
        time.sleep(3)
        stop_proc(jm)
        time.sleep(3)
    finally:
        for pr in reversed(procs):
            try:
                stop_proc(pr)
            except Exception as e:  # noqa
                log("stop failed", pr.name, e)
        if tcpdump is not None and tcpdump.poll() is None:
            os.killpg(tcpdump.pid, signal.SIGINT)
            try:
                tcpdump.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(tcpdump.pid, signal.SIGKILL)
                tcpdump.wait(timeout=10)
        cleanup_everything()

    shutil.copy(pcap_tmp, os.path.join(CAPTURES, name + ".pcap"))
    shutil.copy(os.path.join(work, "conf", conf_file), os.path.join(CAPTURES, name + ".config.yaml"))
    with open(os.path.join(work, "run-state.json"), "w") as f:
        json.dump({"listen_snap": listen_snap, "pid_of": pid_of, "problems": problems,
                   "observations": problems_expected, "rest_requests": rest.count}, f, indent=1)
    return write_truth(key)


def write_truth(key):
    """(Re)build the truth file of a finished run from its work directory and capture."""
    sc = SCENARIOS[key]
    name = sc["name"]
    work = os.path.join(WORKROOT, name)
    with open(os.path.join(work, "run-state.json")) as f:
        state = json.load(f)
    listen_snap, pid_of, problems = state["listen_snap"], state["pid_of"], list(state["problems"])
    pcap_name = name + ".pcap"
    with open(os.path.join(work, pcap_name), "rb") as a, open(os.path.join(CAPTURES, pcap_name), "rb") as b:
        if a.read() != b.read():
            raise RuntimeError("%s is not the capture of the run in %s: refusing to mix them"
                               % (os.path.join(CAPTURES, pcap_name), work))
    cfg_name = name + ".config.yaml"
    processes, p = build_listening(sc, work, listen_snap, pid_of)
    problems += p
    truth, problems = build_truth(sc, work, pcap_name, cfg_name, processes, problems)
    with open(os.path.join(CAPTURES, name + ".truth.json"), "w") as f:
        json.dump(truth, f, indent=2)
        f.write("\n")
    size = os.path.getsize(os.path.join(CAPTURES, pcap_name))
    summary = {"scenario": name, "pcap_bytes": size, "connections": len(truth["connections"]),
               "rest_requests": state["rest_requests"], "problems": problems,
               "observations": state.get("observations", [])}
    with open(os.path.join(work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    log("wrote %s (%d bytes), %d connections" % (pcap_name, size, len(truth["connections"])))
    for pr in problems:
        log("PROBLEM:", pr)
    return summary


def main(argv):
    if os.geteuid() != 0:
        sys.exit("run as root (network namespaces, tcpdump)")
    if not argv:
        sys.exit(__doc__)
    if argv[0] == "cleanup":
        cleanup_everything(quiet=False)
        return 0
    if argv[0] == "truth":
        for k in argv[1:]:
            write_truth(k)
        return 0
    keys = list(SCENARIOS) if argv == ["all"] else argv
    for k in keys:
        if k not in SCENARIOS:
            sys.exit("unknown scenario %s (choose from %s or all)" % (k, ", ".join(SCENARIOS)))
    ensure_tools()

    def on_signal(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    results = []
    rc = 0
    os.makedirs(CAPTURES, exist_ok=True)
    try:
        for k in keys:
            try:
                results.append(run_scenario(k))
            except Exception as e:
                log("scenario %s FAILED: %s" % (k, e))
                rc = 1
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        rc = 130
    finally:
        cleanup_everything()
    for r in results:
        log("%s: %d bytes, %d connections, %d problems" % (r["scenario"], r["pcap_bytes"],
                                                            r["connections"], len(r["problems"])))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
