#!/usr/bin/env bash
# `make test`'s pytest: the lab tier in the foreground, the unit and aws tiers beside it in a
# second process (they share nothing with the lab: the aws tier starts its own emulator). The
# second process's report is printed after the lab's; the run fails if either fails.
set -uo pipefail
bin=${1:-.venv/bin}
log=$(mktemp)
"$bin/pytest" tests/unit tests/aws >"$log" 2>&1 &
beside=$!
trap 'kill "$beside" 2>/dev/null; rm -f "$log"' EXIT
"$bin/pytest" --durations=10 tests/lab
lab=$?
wait "$beside"
other=$?
echo
echo "=== unit and aws tiers ==="
cat "$log"
exit $(( lab != 0 ? lab : other ))
