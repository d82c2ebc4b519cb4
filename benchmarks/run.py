"""Speed and memory of flinkwire next to the tools an analyst would otherwise use.

What it measures: on one generated capture (benchmarks/generate.py; 100 MB, about 200,000
packets and 2,000 flows, half TLS, by default), the whole-process wall time and the peak
anonymous memory of

- flinkwire's full analysis (`flinkwire.analyze(path)`: reassembly, TLS handshakes, roles,
  snippets, findings),
- scapy `PcapReader`, dpkt, `tshark -T fields` piped into pandas, pyshark and nfstream,
  each doing its closest equivalent (benchmarks/competitors.py: flows by 5-tuple, a TLS flag
  from the first payload, a DataFrame),
- a plain read of the file, the floor.

How: every contestant is a separate process (`python benchmarks/competitors.py TOOL FILE`),
started from here, timed from fork to exit, N times (rounds interleave the tools, the order
rotating, page cache warm), and the median is reported. While it runs, a sampler sums
`Pss_Anon` from /proc/PID/smaps_rollup over the process and its children every 20 ms: the
anonymous (heap) memory, shared pages split between the processes that share them, and no
file pages, so an mmapped capture does not count. pyshark (a few hundred packets/s) runs on
the first `--pyshark-packets` packets of the same file only; its rate is extrapolated to the
whole file, and the table says so. The memory check runs flinkwire on a 1 GB capture of the
same kind (ten times the flows, the same number open at once) and compares its peak with
the 100 MB one. Results: a Markdown table printed and written to benchmarks/results.md.

    python benchmarks/run.py                       # 100 MB, 3 runs, then the 1 GB memory check
    python benchmarks/run.py --size 10M --runs 1 --no-memory-check   # a quick look
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import generate  # noqa: E402  (the sibling script)

COMPETITORS = HERE / "competitors.py"
RESULTS = HERE / "results.md"
SAMPLE_SECONDS = 0.02
# Every contestant runs as an installed package would, from compiled bytecode: an
# environment that forbids writing .pyc files (PYTHONDONTWRITEBYTECODE) would make
# flinkwire alone compile its ~80 modules from source in every timed run (~50 ms).
CHILD_ENV = {key: value for key, value in os.environ.items()
             if key != "PYTHONDONTWRITEBYTECODE"}

JOBS = {
    "flinkwire": "full analysis: reassembly, TLS handshakes, roles, snippets, findings",
    "flinkwire-2p": "the same, in two processes (`shards=2`)",
    "nfstream": "flows to pandas (C engine, nDPI verdict as the TLS flag)",
    "dpkt": "flows by 5-tuple, first-payload TLS check, DataFrame",
    "tshark": "`tshark -T fields` piped into pandas, same grouping and check",
    "scapy": "`PcapReader`, same grouping and check",
    "pyshark": "same grouping and check, on a slice, extrapolated",
    "pyloop": "same grouping and check, one pure-Python loop over the mmapped file",
    "read": "read the file in 1 MiB blocks (the floor)",
}
DEFAULT_TOOLS = ["flinkwire", "flinkwire-2p", "nfstream", "dpkt", "tshark", "scapy", "pyshark",
                 "pyloop", "read"]
# The memory check runs these on the large capture, each against its own 100 MB figure.
MEMORY_TOOLS = ("flinkwire", "flinkwire-2p")


def pss_anon_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss_Anon:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def children_of(process: psutil.Process) -> list[int]:
    try:
        return [child.pid for child in process.children(recursive=True)]
    except psutil.Error:
        return []


def measure(argv: list[str], timeout: float) -> dict:
    """Run one process; its wall time, peak anonymous memory (tree), exit code and output."""
    peak = 0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=ROOT, env=CHILD_ENV)
    done = threading.Event()

    def sample():
        # Listing children scans all of /proc, so it is refreshed every 10th sample only.
        nonlocal peak
        handle = psutil.Process(process.pid)
        children: list[int] = []
        samples = 0
        while not done.is_set():
            if samples % 10 == 0:
                children = children_of(handle)
            samples += 1
            total = pss_anon_kib(process.pid) + sum(pss_anon_kib(pid) for pid in children)
            peak = max(peak, total)
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        stderr += f"\ntimed out after {timeout} s"
    except BaseException:
        process.kill()       # interrupted (Ctrl-C, SIGTERM): leave no contestant running
        process.wait()
        raise
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    done.set()
    sampler.join()

    answer = {}
    lines = stdout.strip().splitlines()
    if process.returncode == 0 and lines:
        try:
            answer = json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    return {"wall": wall, "cpu": cpu, "peak_kib": peak, "rc": process.returncode, "answer": answer,
            "stderr": stderr[-2000:]}


def slice_capture(path: Path, packets: int) -> Path:
    """The first `packets` packets of a pcap or pcapng file, written beside it."""
    target = path.with_name(f"{path.stem}.first{packets}{path.suffix}")
    if target.exists():
        return target
    with open(path, "rb") as source, open(target, "wb") as out:
        head = source.read(8)
        if path.suffix == ".pcap":
            out.write(head + source.read(16))
            for _ in range(packets):
                record = source.read(16)
                if len(record) < 16:
                    break
                caplen = struct.unpack("<I", record[8:12])[0]
                out.write(record + source.read(caplen))
        else:
            source.seek(0)
            written = 0
            while written < packets:
                block_head = source.read(8)
                if len(block_head) < 8:
                    break
                kind, length = struct.unpack("<II", block_head)
                out.write(block_head + source.read(length - 8))
                written += kind == 6
    return target


def tool_argv(tool: str, path: Path) -> list[str]:
    return [sys.executable, str(COMPETITORS), tool, str(path)]


def snapshot(revision: str) -> tuple[Path, str]:
    """flinkwire/ as committed at `revision`, exported under benchmarks/data/ (others may be
    editing the working tree while a long benchmark runs)."""
    commit = subprocess.run(["git", "rev-parse", "--short", revision], capture_output=True,
                            text=True, cwd=ROOT, check=True).stdout.strip()
    target = generate.DATA_DIR / f"flinkwire-{commit}"
    if not (target / "flinkwire" / "__init__.py").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "flinkwire"], capture_output=True,
                                 cwd=ROOT, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target, commit


def warm(path: Path):
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


def versions(pinned: str | None) -> dict:
    found = {"python": platform.python_version()}
    for module in ("flinkwire", "scapy", "dpkt", "nfstream", "pyshark", "pandas"):
        try:
            from importlib.metadata import version

            found[module] = version(module)
        except Exception:  # noqa: BLE001  (a missing tool is reported as such)
            found[module] = "not installed"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "flinkwire"], capture_output=True,
                           text=True, cwd=ROOT).stdout.strip()
    if pinned:
        found["flinkwire"] = f"commit {pinned}"
    else:
        found["flinkwire"] = f"working tree at {head or '?'}" + (
            " with uncommitted changes in flinkwire/" if dirty else "")
    tshark = shutil.which("tshark")
    if tshark:
        first = subprocess.run([tshark, "--version"], capture_output=True, text=True).stdout
        match = re.search(r"\d+\.\d+\.\d+", first)
        found["tshark"] = match.group(0) if match else "unknown"
    return found


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, Linux {platform.release()}"


def summarise(tool: str, runs: list[dict], file_bytes: int, file_packets: int,
              slice_packets: int | None) -> dict:
    ok = [run for run in runs if run["rc"] == 0]
    row = {"tool": tool, "runs": len(ok), "failed": len(runs) - len(ok)}
    if not ok:
        row["error"] = runs[-1]["stderr"].strip().splitlines()[-1:] if runs else ["not run"]
        return row
    wall = statistics.median(run["wall"] for run in ok)
    cpu = statistics.median(run["cpu"] for run in ok)
    row["peak_mib"] = statistics.median(run["peak_kib"] for run in ok) / 1024
    row["answer"] = ok[-1]["answer"]
    if slice_packets:
        rate = slice_packets / wall
        row.update(measured_wall=wall, wall=file_packets / rate,
                   cpu=cpu * file_packets / slice_packets, extrapolated=True)
    else:
        row.update(wall=wall, cpu=cpu, extrapolated=False)
    row["pps"] = file_packets / row["wall"]
    row["mbps"] = file_bytes / row["wall"] / 1e6
    return row


def fmt_rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def table(rows: list[dict], manifest: dict, runs: int) -> list[str]:
    reference = next((row for row in rows if row["tool"] == "flinkwire" and "wall" in row), None)
    lines = ["| tool | job | wall s (median) | CPU s | packets/s | MB/s | peak anon MiB | "
             "flows | TLS flows | time / flinkwire's |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        job = JOBS.get(row["tool"], "")
        if "wall" not in row:
            lines.append(f"| {row['tool']} | {job} | failed: {' '.join(row['error'])[:80]} "
                         f"| | | | | | | |")
            continue
        wall, cpu = f"{row['wall']:.2f}", f"{row['cpu']:.2f}"
        if row["extrapolated"]:
            wall, cpu = f"~{row['wall']:.0f} (extrapolated)", f"~{row['cpu']:.0f}"
        answer = row.get("answer", {})
        ratio = ""
        if reference and row is not reference:
            value = row["wall"] / reference["wall"]
            ratio = f"{value:.0f}x" if value >= 10 else f"{value:.2g}x"
        peak = f"{row['peak_mib']:.0f}" + (" (slice)" if row["extrapolated"] else "")
        flows = answer.get("flows", "")
        tls = answer.get("tls_flows", "")
        if row["extrapolated"]:
            flows, tls = f"{flows} (slice)", f"{tls} (slice)"
        lines.append(f"| {row['tool']} | {job} | {wall} | {cpu} | {fmt_rate(row['pps'])} | "
                     f"{row['mbps']:.1f} | {peak} | {flows} | {tls} | {ratio} |")
    lines.append(f"| *truth* | generator manifest | | | | | | {manifest['flows']} | "
                 f"{manifest['tls_flows']} | |")
    return lines


def _verdicts_of(row) -> str:
    found = row.get("answer", {}).get("verdicts", {})
    return ", ".join(f"{name} {count}" for name, count in found.items())


def run_tools(path: Path, manifest: dict, tools: list[str], runs: int, pyshark_packets: int,
              timeout: float) -> list[dict]:
    slice_path = slice_capture(path, pyshark_packets) if "pyshark" in tools else None
    results: dict[str, list[dict]] = {tool: [] for tool in tools}
    warm(path)
    for round_index in range(runs):
        order = tools[round_index % len(tools):] + tools[:round_index % len(tools)]
        for tool in order:
            target = slice_path if tool == "pyshark" else path
            run = measure(tool_argv(tool, target), timeout)
            results[tool].append(run)
            status = "ok" if run["rc"] == 0 else f"exit {run['rc']}"
            print(f"  round {round_index + 1}/{runs} {tool:10s} {run['wall']:8.2f} s "
                  f"(CPU {run['cpu']:7.2f} s) "
                  f"{run['peak_kib'] / 1024:8.0f} MiB  {status} {run['answer']}", flush=True)
            if run["rc"] != 0:
                print("    " + run["stderr"].strip().replace("\n", "\n    ")[-800:], flush=True)
    return [summarise(tool, results[tool], manifest["bytes"], manifest["packets"],
                      pyshark_packets if tool == "pyshark" else None) for tool in tools]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="100M", help="capture size for the comparison")
    parser.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="runs per tool (median)")
    parser.add_argument("--tools", default=",".join(DEFAULT_TOOLS),
                        help=f"comma list from {','.join(DEFAULT_TOOLS)}")
    parser.add_argument("--pyshark-packets", type=int, default=2000)
    parser.add_argument("--memory-size", default="1G", help="large capture of the memory check")
    parser.add_argument("--memory-runs", type=int, default=1)
    parser.add_argument("--no-memory-check", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per process")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--flinkwire-commit", metavar="REV",
                        help="time flinkwire as committed at REV, not the working tree")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tools = [tool.strip() for tool in args.tools.split(",") if tool.strip()]
    unknown = [tool for tool in tools if tool not in JOBS]
    if unknown:
        parser.error(f"unknown tools: {', '.join(unknown)}")
    command = " ".join(["python benchmarks/run.py"] + list(argv if argv is not None
                                                           else sys.argv[1:]))
    pinned = None
    if args.flinkwire_commit:
        source, pinned = snapshot(args.flinkwire_commit)
        CHILD_ENV["FLINKWIRE_SRC"] = str(source)
        print(f"flinkwire: commit {pinned}, exported to {source.relative_to(ROOT)}", flush=True)

    source_root = Path(CHILD_ENV.get("FLINKWIRE_SRC") or ROOT)
    compileall.compile_dir(str(source_root / "flinkwire"), quiet=1)

    size = generate.parse_size(args.size)
    print(f"capture: {args.size} {args.format} seed {args.seed}", flush=True)
    path, manifest = generate.ensure(size, args.format, args.seed)
    print(f"  {path.relative_to(ROOT)}: {manifest['bytes']:,} bytes, {manifest['packets']:,} "
          f"packets, {manifest['flows']:,} flows ({manifest['tls_flows']:,} TLS)", flush=True)

    load_before = os.getloadavg()[0]
    rows = run_tools(path, manifest, tools, args.runs, args.pyshark_packets, args.timeout)
    load_after = os.getloadavg()[0]
    reference = next((row for row in rows if row["tool"] == "flinkwire" and "wall" in row), None)
    lines = [f"# Benchmark results", "",
             f"Generated {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} by `{command}`.",
             f"Machine: {machine()}; 1-minute load average {load_before:.1f} before, "
             f"{load_after:.1f} after (other work on the machine slows wall time; CPU time, "
             f"user + system of the process tree, is steadier).",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in versions(pinned).items()) + ".",
             "",
             f"Capture: `{path.name}` ({manifest['bytes'] / 1e6:.0f} MB, "
             f"{manifest['packets']:,} packets, {manifest['flows']:,} flows, "
             f"{manifest['tls_flows']:,} TLS; sha256 `{manifest['sha256'][:16]}`...). "
             f"Whole-process wall time, median of {args.runs} runs; peak anonymous memory "
             f"(Pss_Anon summed over the process tree)."
             + (f" pyshark ran on the first {args.pyshark_packets} packets and its time is "
                f"extrapolated to the whole file." if "pyshark" in tools else ""),
             ""]
    lines += table(rows, manifest, args.runs)

    verdicts = []
    by_tool = {row["tool"]: row for row in rows if "wall" in row}
    for mode in (t for t in MEMORY_TOOLS if t in by_tool):
        ours = by_tool[mode]
        for tool, target in (("nfstream", 2.0), ("scapy", 50.0)):
            if tool in by_tool:
                ratio = by_tool[tool]["wall"] / ours["wall"]
                cpu_ratio = by_tool[tool]["cpu"] / ours["cpu"]
                verdict = "met" if ratio >= target else "MISSED"
                verdicts.append(f"- {tool} time / {mode} time = {ratio:.2g} in wall time "
                                f"({cpu_ratio:.2g} in CPU time); target >= {target:g}: "
                                f"{verdict}")
    # The same ratios for the pure-Python floor: a loop that only groups packets and keeps
    # no payload. Where it misses a target, no Python tool that reads every packet meets it.
    if "pyloop" in by_tool:
        floor = by_tool["pyloop"]
        for tool, target in (("nfstream", 2.0), ("scapy", 50.0)):
            if tool in by_tool:
                ratio = by_tool[tool]["wall"] / floor["wall"]
                cpu_ratio = by_tool[tool]["cpu"] / floor["cpu"]
                verdicts.append(f"- floor: {tool} time / pyloop time = {ratio:.2g} in wall "
                                f"time ({cpu_ratio:.2g} in CPU time); the target for flinkwire is >= {target:g}, which this "
                                f"loop {'meets' if ratio >= target else 'misses'} doing a "
                                f"fraction of the work")

    if not args.no_memory_check and reference:
        big = generate.parse_size(args.memory_size)
        print(f"memory check: {args.memory_size} {args.format}", flush=True)
        big_path, big_manifest = generate.ensure(big, args.format, args.seed)
        print(f"  {big_path.relative_to(ROOT)}: {big_manifest['bytes']:,} bytes, "
              f"{big_manifest['packets']:,} packets, {big_manifest['flows']:,} flows", flush=True)
        warm(big_path)
        lines += ["", f"## Memory: {args.memory_size} vs {args.size}", "",
                  "| tool | capture | packets | flows | TLS flows (truth) | flinkwire verdicts | "
                  "wall s | packets/s | peak anon MiB |",
                  "|---|---|---:|---:|---:|---|---:|---:|---:|"]
        small_rows = {row["tool"]: row for row in rows if "wall" in row}
        for tool in (t for t in MEMORY_TOOLS if t in small_rows):
            small = small_rows[tool]
            big_runs = []
            for index in range(args.memory_runs):
                run = measure(tool_argv(tool, big_path), args.timeout)
                big_runs.append(run)
                print(f"  run {index + 1}/{args.memory_runs} {tool} {run['wall']:8.2f} s "
                      f"{run['peak_kib'] / 1024:8.0f} MiB  exit {run['rc']} {run['answer']}",
                      flush=True)
            big_row = summarise(tool, big_runs, big_manifest["bytes"], big_manifest["packets"],
                                None)
            if "wall" not in big_row:
                lines.append(f"{tool} failed on {big_path.name}: {' '.join(big_row['error'])}")
                continue
            for row, name, facts in ((small, path.name, manifest),
                                     (big_row, big_path.name, big_manifest)):
                lines.append(f"| {tool} | {name} | {facts['packets']:,} | {facts['flows']:,} | "
                             f"{facts['tls_flows']:,} | {_verdicts_of(row)} | "
                             f"{row['wall']:.2f} | {fmt_rate(row['pps'])} | "
                             f"{row['peak_mib']:.0f} |")
            ratio = big_row["peak_mib"] / small["peak_mib"]
            verdicts.append(f"- {tool} anonymous memory, {args.memory_size} / {args.size}: "
                            f"{ratio:.2f}x (target <= 1.5x): "
                            f"{'met' if ratio <= 1.5 else 'MISSED'}")

    if verdicts:
        lines += ["", "## Targets (issue 6)", ""] + verdicts
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    args.output.write_text(text)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
