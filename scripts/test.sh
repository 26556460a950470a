#!/usr/bin/env bash
# `make test`'s pytest: the lab tier in the foreground, and beside it in a second process the
# unit and aws tiers (they share nothing with the lab: the aws tier starts its own emulator),
# then the swarm's lab tests in a lab of their own (tests/lab/swarm). The second process's
# report is printed after the lab's; the run fails if either fails.
set -uo pipefail
bin=${1:-.venv/bin}
log=$(mktemp)
(
  "$bin/pytest" tests/unit tests/aws; tiers=$?
  OPS_TEST_LAB_NAME=openlmis-swarm-test "$bin/pytest" --durations=5 tests/lab/swarm; swarm=$?
  exit $(( tiers != 0 ? tiers : swarm ))
) >"$log" 2>&1 &
beside=$!
trap 'kill "$beside" 2>/dev/null; rm -f "$log"' EXIT
"$bin/pytest" --durations=10 --ignore=tests/lab/swarm tests/lab
lab=$?
wait "$beside"
other=$?
echo
echo "=== unit and aws tiers, then the swarm ==="
cat "$log"
exit $(( lab != 0 ? lab : other ))
