#!/usr/bin/env bash
# The long fuzzing run: every target on its own for a fixed time, in two lanes.
# Each target is one pytest process with a huge example budget, stopped by its
# time box (SIGTERM; the counters are flushed every 20 s), so a slow target
# cannot starve the others. A target that finds a bug stops early with the
# minimised input in its log.
# Usage: tests/fuzz/run_long.sh OUTDIR [SECONDS_PER_TARGET]
# Then: python3 tests/fuzz/summarise.py OUTDIR
set -u
out=${1:?output directory}
box=${2:-240}
mkdir -p "$out"
cd "$(dirname "$0")/../.."
targets=$(python3 -m pytest -q --collect-only -p no:cacheprovider tests/fuzz 2>/dev/null \
          | grep '::')
lane() {
    local index=0
    for node in $targets; do
        index=$((index + 1))
        [ $((index % 2)) -eq "$1" ] || continue
        name=${node##*::}
        FLINKWIRE_FUZZ_EXAMPLES=1000000 FLINKWIRE_FUZZ_STATS="$out/stats" \
            timeout --signal=TERM "$box" python3 -m pytest -q -x -p no:cacheprovider "$node" \
            >"$out/$name.log" 2>&1
        status=$?   # 124: time box reached, no finding; 1: a finding, see the log
        echo "$(date -u +%FT%TZ) $node exit $status" >>"$out/lanes.log"
    done
}
lane 0 &
lane 1 &
wait
