"""Print the figures of a long fuzzing run: python3 tests/fuzz/summarise.py OUTDIR"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzzing import summarise  # noqa: E402

rows = summarise(str(Path(sys.argv[1]) / "stats"))
print(f"| target | inputs | seconds | slowest input (s) |\n|---|---:|---:|---:|")
for name, row in sorted(rows.items()):
    print(f"| {name} | {row['inputs']} | {row['seconds']:.0f} | {row['slowest']:.2f} |")
print(f"| **all** | **{sum(r['inputs'] for r in rows.values())}** | "
      f"**{sum(r['seconds'] for r in rows.values()):.0f}** | |")
