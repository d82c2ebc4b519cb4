#!/usr/bin/env bash
# flinkwire capture lab. Usage (as root):
#   sudo bash captures/lab/run.sh all        # every scenario s1..s6
#   sudo bash captures/lab/run.sh s1 s4      # some scenarios
#   sudo bash captures/lab/run.sh cleanup    # remove leftover namespaces/processes
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "$(id -u)" != 0 ]; then echo "run as root (network namespaces, tcpdump)" >&2; exit 1; fi
cleanup() { python3 "$here/lab.py" cleanup >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
python3 "$here/lab.py" "${@:-all}"
