#!/usr/bin/env bash
# The long fuzzing run in two lanes, one pytest process per target file, so a
# file that finds a bug (and shrinks it) does not hold up the others.
# Usage: tests/fuzz/run_long.sh OUTDIR [EXAMPLES_A] [EXAMPLES_B]
# Figures (inputs per target, seconds, slowest input) land in OUTDIR/stats-*.json.
set -u
out=${1:?output directory}
a=${2:-20000}
b=${3:-10000}
mkdir -p "$out"
cd "$(dirname "$0")/../.."
lane() {
    local name=$1 examples=$2
    shift 2
    for file in "$@"; do
        FLINKWIRE_FUZZ_EXAMPLES=$examples FLINKWIRE_FUZZ_STATS="$out/stats-$name.json" \
            python3 -m pytest -q -p no:cacheprovider "tests/fuzz/$file" \
            >"$out/${file%.py}.log" 2>&1
        echo "$(date -u +%FT%TZ) $file exit $?" >>"$out/lanes.log"
    done
}
lane a "$a" test_fuzz_protocols.py &
lane b "$b" test_fuzz_tls.py test_fuzz_reading.py test_fuzz_tcp.py test_fuzz_packets.py test_fuzz_leakage.py \
    test_fuzz_pipeline.py &
wait
