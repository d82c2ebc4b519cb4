"""The `flinkwire` command: report, check.

Exit codes: 0 done (a damaged capture still gives 0, with a warning line per
kind of damage), 1 for `check` when a required channel is plaintext, 2 for bad
input (not a capture, unreadable config, bad arguments) or a capture of which
nothing could be read. `check` exits with its verdict's status even when its output
cannot be written (a reader that closed early, a full disk); with stdout or stderr
closed (`>&-`) every command writes there nothing and keeps its own status.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from ..errors import FlinkwireError
from ..flink import knowledge
from .summary import printable

GROUPS = ("internal", "rest", "unencryptable", "external-service")


def _shard_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number of processes, not {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"a number of processes, 1 or more, not {count}")
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flinkwire",
        description="What an eavesdropper learns from a Flink cluster, read from a capture.")
    sub = parser.add_subparsers(dest="command", required=True)

    report = sub.add_parser("report", help="print the exposure summary of a capture")
    report.add_argument("captures", nargs="*", help="pcap/pcapng files (default: bundled sample)")
    report.add_argument("--config", help="the cluster's config.yaml or flink-conf.yaml")
    report.add_argument("--json", metavar="OUT", help="write everything as JSON to OUT")
    report.add_argument("--html", metavar="OUT",
                        help="write the self-contained HTML report (plots, findings) to OUT")
    report.add_argument("--csv", metavar="DIR", help="write every table as CSV into DIR")
    report.add_argument("--parquet", metavar="DIR", help="write every table as Parquet into DIR")
    report.add_argument("--reveal", action="store_true",
                        help="show secret values in full (outputs are no longer shareable)")
    report.add_argument("--quiet", action="store_true", help="no progress bar")
    report.add_argument("--shards", type=_shard_count, default=1, metavar="N",
                        help="read one capture in N processes, each examining a share of "
                             "its flows (same tables; for idle cores)")

    check = sub.add_parser("check", help="exit 1 if a required channel group is not TLS")
    check.add_argument("captures", nargs="+", help="pcap/pcapng files")
    check.add_argument("--require-tls", default="internal,rest",
                       help="comma list of channel groups: internal, rest (default both)")
    check.add_argument("--config", help="the cluster's config.yaml or flink-conf.yaml")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.add_argument("--shards", type=_shard_count, default=1, metavar="N",
                       help="read one capture in N processes (see report --shards)")

    demo = sub.add_parser("demo", help="the bundled plaintext and TLS captures side by side")
    demo.add_argument("--html", metavar="OUT", help="also write the HTML report of both to OUT")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _warn(message: str) -> None:
    print(f"flinkwire: warning: {message}", file=sys.stderr)


def _damage_lines(info) -> list[str]:
    """One line per kind of damage in a capture: where it was first met, and how many
    more of that kind followed. A damaged interface block hits every packet after it,
    and a line per packet would hide the one thing the user needs to know."""
    first: dict[str, dict] = {}
    more: dict[str, int] = {}
    for anomaly in info.anomalies:
        kind = anomaly["kind"]
        if kind not in first:
            first[kind] = anomaly
            more[kind] = 0
        else:
            # The closing row of a kind counted past MAX_ANOMALIES_PER_KIND stands for many.
            more[kind] += anomaly.get("unlisted", 1)
    lines = []
    for kind, anomaly in first.items():
        line = f"{info.path}: {kind} at file offset {anomaly['file_offset']}: {anomaly['detail']}"
        if more[kind]:
            line += f" ({more[kind]} more of this kind after it)"
        lines.append(line)
    return lines


def _run_analysis(args, reveal=False):
    # Imported here, not at the top: pandas and the analysis modules cost about 0.5 s of
    # CPU, which `--help` (now 0.045 s) and a refused argument need not wait for.
    from ..tables.analysis import analyze, default_capture
    from .progress import progress_for
    paths = args.captures or [str(default_capture())]
    with progress_for(paths, quiet=args.quiet) as progress:
        analysis = analyze(paths, config=args.config, reveal=reveal, progress=progress,
                           shards=getattr(args, "shards", 1))
    read_nothing = True
    for info in analysis.stats.files:
        for line in _damage_lines(info):
            _warn(printable(line))
        if info.records_complete:
            read_nothing = False
    if read_nothing and any(info.anomalies for info in analysis.stats.files):
        print(f"flinkwire: {printable(', '.join(paths))}: no packet could be read",
              file=sys.stderr)
        return analysis, 2
    return analysis, 0


def _outputs_ok(args) -> bool:
    """Refuse, before any work, output paths that would overwrite an input (a capture,
    the config), that two outputs share, or that cannot be written: an analysis of a
    large capture takes minutes, and its result must not be lost at the last step."""
    inputs = {os.path.realpath(p): "one of the captures" for p in (args.captures or [])}
    if getattr(args, "config", None):
        inputs[os.path.realpath(args.config)] = "the --config file"
    taken: dict[str, str] = {}
    for option in ("json", "html", "csv", "parquet"):
        target = getattr(args, option, None)
        if not target:
            continue
        problem = _output_problem(option, target, inputs, taken)
        if problem:
            print(f"flinkwire: --{option} {printable(target)}: {problem}", file=sys.stderr)
            return False
        taken[os.path.realpath(target)] = option
    return True


def _output_problem(option: str, target: str, inputs: dict, taken: dict) -> str | None:
    real = os.path.realpath(target)
    if real in inputs:
        return f"is {inputs[real]}; refusing to overwrite it"
    if real in taken and {option, taken[real]} != {"csv", "parquet"}:
        return f"is also the --{taken[real]} output"
    is_file = option in ("json", "html")  # csv and parquet write a folder of tables
    if is_file and os.path.isdir(target):
        return "is a directory"
    if is_file and os.path.exists(target) and not os.access(target, os.W_OK):
        return "is not writable"
    if not is_file and os.path.exists(target) and not os.path.isdir(target):
        return "exists and is not a directory"
    folder = target if not is_file and os.path.isdir(target) \
        else os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        return "cannot write there"
    return None


def _terminate(signum, frame):
    # SIGTERM (timeout, CI) unwinds like Ctrl-C, so temporary files are removed.
    raise KeyboardInterrupt


def main(argv=None) -> int:
    _fill_closed_streams()
    logging.basicConfig(level=logging.ERROR, format="flinkwire: %(levelname)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:
        pass  # not the main thread (called from a library user's thread)
    try:
        status = _main(args)
        # Pending output is written here, inside the handlers below: left to the
        # interpreter's exit, a closed reader would be met after the status was chosen.
        _flush_stdout()
        return status
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do.
        _detach_stdout()
        return 0
    except OSError as exc:
        name = exc.filename if exc.filename is not None else "<stdout>"
        print(f"flinkwire: {printable(name)}: {exc.strerror or exc}", file=sys.stderr)
        if exc.filename is None:
            _detach_stdout()
        return 2


def _fill_closed_streams() -> None:
    """Point `sys.stdout` and `sys.stderr` at /dev/null where they are None (Python's
    way of saying fd 1 or 2 was closed when it started, `>&-`): what the command
    writes there goes nowhere, and its exit status stays its own."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            try:
                setattr(sys, name, open(os.devnull, "w"))
            except OSError:
                pass  # print() to None writes nothing, and every flush here checks


def _flush_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def _detach_stdout() -> None:
    """Point stdout at /dev/null, so that what is still buffered for a reader that has
    gone (or a full disk) is dropped at exit instead of failing again there."""
    try:
        _flush_stdout()
    except (OSError, ValueError):
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        # No file descriptor (a library caller's replacement stream): swap the object.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass


def _say_verdict(lines: list[str], status: int) -> int:
    """Print `check`'s verdict and return its exit status, whatever happens to stdout:
    a CI step that pipes `check` into `head` must still fail on plaintext."""
    try:
        for line in lines:
            print(line)
        _flush_stdout()
    except OSError as exc:
        if not isinstance(exc, BrokenPipeError):
            print(f"flinkwire: <stdout>: {exc.strerror or exc}", file=sys.stderr)
        _detach_stdout()
    return status


def _main(args) -> int:
    try:
        if args.command == "report":
            if not _outputs_ok(args):
                return 2
            analysis, status = _run_analysis(args, reveal=args.reveal)
            if status:
                return status
            print(analysis.summary())
            if args.json:
                analysis.to_json(args.json)
                print(f"\nJSON written to {args.json}")
            if args.csv:
                analysis.to_csv(args.csv)
                print(f"CSV tables written to {args.csv}")
            if args.parquet:
                analysis.to_parquet(args.parquet)
                print(f"Parquet tables written to {args.parquet}")
            if args.html:
                from .html import write_html
                write_html(analysis, args.html)
                print(f"\nHTML report written to {args.html}")
            return 0
        if args.command == "demo":
            from .demo import run_demo
            return run_demo(html=args.html, quiet=args.quiet)
        if args.command == "check":
            groups = [g.strip() for g in args.require_tls.split(",") if g.strip()]
            unknown = [g for g in groups if g not in GROUPS]
            if not groups:
                print("flinkwire: --require-tls: name at least one channel group "
                      f"({', '.join(GROUPS)})", file=sys.stderr)
                return 2
            if unknown:
                print(f"flinkwire: --require-tls: unknown channel group {unknown[0]!r} "
                      f"(choose from {', '.join(GROUPS)})", file=sys.stderr)
                return 2
            analysis, status = _run_analysis(args)
            if status:
                return status
            plain = analysis.plaintext_flows(groups)
            unknown = analysis.flows[analysis.flows["role"] == "unknown"]
            if len(unknown):
                readable = int(unknown["verdict"].isin(["plaintext"]).sum())
                print(f"note: {len(unknown)} flows of unknown role not checked ({readable} "
                      "plaintext); --config names more ports", file=sys.stderr)
            seen = analysis.flows[analysis.flows["role"].map(knowledge.channel_group)
                                  .isin(groups)] if len(analysis.flows) else analysis.flows
            empty = int((seen["verdict"] == "no-payload").sum()) if len(seen) else 0
            if empty:
                print(f"note: {empty} connections of {', '.join(groups)} channels carried no "
                      "payload: neither TLS nor plaintext could be seen", file=sys.stderr)
            tls_seen = analysis.tls_flows(groups)
            if plain.empty and tls_seen.empty:
                return _say_verdict([f"FAIL: no flow of {', '.join(groups)} channels was seen "
                                     f"carrying TLS ({len(seen)} flows of those channels in "
                                     "the capture)"], 1)
            if plain.empty:
                return _say_verdict([f"OK: all {len(tls_seen)} data-carrying flows of "
                                     f"{', '.join(groups)} channels are TLS"], 0)
            lines = [f"FAIL: {len(plain)} flows of {', '.join(groups)} channels are not TLS:"]
            lines += [f"  {f.flow_id} {f.role:<15} {f.client_ip}:{f.client_port} -> "
                      f"{f.server_ip}:{f.server_port} {f.verdict}"
                      for f in plain.itertuples(index=False)]
            return _say_verdict(lines, 1)
    except FlinkwireError as exc:
        print(f"flinkwire: {printable(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flinkwire: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
