"""Where flinkwire's full analysis spends its time, from a py-spy sampling profile.

How: runs `py-spy record --format raw` on `benchmarks/competitors.py flinkwire CAPTURE` (the
same process the benchmark times), keeps the collapsed stacks under benchmarks/profiles/,
and prints two lists: self time by source line (the leaf frame of each sample) and
inclusive time by function (every function on the stack, once per sample). Only frames
inside flinkwire/ are listed by default; `--all` shows the others too (pandas, re, ...).

    python benchmarks/profile.py benchmarks/data/flink-100M-s1.pcap
    python benchmarks/profile.py --raw benchmarks/profiles/flinkwire-....txt   # summarise again
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def record(capture: Path, rate: int) -> Path:
    out = HERE / "profiles" / f"flinkwire-{capture.stem}.txt"
    out.parent.mkdir(exist_ok=True)
    subprocess.run(["py-spy", "record", "--rate", str(rate), "--format", "raw", "--output",
                    str(out), "--", sys.executable, str(HERE / "competitors.py"), "flinkwire",
                    str(capture)], check=True)
    return out


def parse(raw: Path):
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            yield stack.split(";"), int(count)


def frame_parts(frame: str) -> tuple[str, str, str]:
    match = FRAME.match(frame)
    if not match:
        return frame, "?", "0"
    return match["function"], match["file"], match["line"]


def summarise(raw: Path, top: int, everything: bool) -> str:
    self_time: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    for frames, count in parse(raw):
        total += count
        leaf = next((frame for frame in reversed(frames)
                     if everything or "flinkwire/" in frame_parts(frame)[1]), frames[-1])
        function, file, line = frame_parts(leaf)
        self_time[f"{file}:{line} {function}"] += count
        seen = set()
        for frame in frames:
            function, file, _line = frame_parts(frame)
            if (everything or "flinkwire/" in file) and (file, function) not in seen:
                seen.add((file, function))
                inclusive[f"{file} {function}"] += count
    lines = [f"{total} samples from {raw}", "", "Self time (leaf frame; non-flinkwire callees "
             "are charged to the flinkwire line that called them):"]
    lines += [f"  {100 * count / total:5.1f}%  {where}" for where, count in
              self_time.most_common(top)]
    lines += ["", "Inclusive time by function:"]
    lines += [f"  {100 * count / total:5.1f}%  {where}" for where, count in
              inclusive.most_common(top)]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture", type=Path, nargs="?")
    parser.add_argument("--raw", type=Path, help="summarise this collapsed-stack file instead")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--all", action="store_true", help="list frames outside flinkwire/")
    args = parser.parse_args(argv)
    if not args.raw and not args.capture:
        parser.error("give a capture or --raw")
    raw = args.raw or record(args.capture, args.rate)
    print(summarise(raw, args.top, args.all))
    return 0


if __name__ == "__main__":
    sys.exit(main())
