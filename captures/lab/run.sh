#!/usr/bin/env bash
# flinkwire capture lab. Usage (as root):
#   sudo bash captures/lab/run.sh all        # every scenario s1..s7
#   sudo bash captures/lab/run.sh s1 s4      # some scenarios
#   sudo bash captures/lab/run.sh cleanup    # remove leftover namespaces/processes
# Then: python3 captures/lab/verify.py       # check truth files against the pcaps
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "$(id -u)" != 0 ]; then echo "run as root (network namespaces, tcpdump)" >&2; exit 1; fi
cleanup() { python3 "$here/lab.py" cleanup >/dev/null 2>&1 || true; }
python3 "$here/lab.py" "${@:-all}" &
child=$!
# lab.py turns SIGTERM into an orderly stop (JVMs, tcpdump, namespaces)
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; cleanup; exit 130' INT TERM
wait "$child"
rc=$?
trap - INT TERM
cleanup
exit "$rc"
