#!/usr/bin/env bash
# `make test`'s pytest, in two processes side by side. The lab tier in the foreground; beside it
# the unit and aws tiers (they share nothing with the lab: the aws tier starts its own
# emulator), then the two whole-lifecycle runs, each in a lab of its own: the swarm's tests
# (tests/lab/swarm) and the rehearsal of `make lab` (tests/lab/test_rehearsal.py). The second
# process's report is printed after the lab's; the run fails if either fails.
set -uo pipefail
bin=${1:-.venv/bin}
log=$(mktemp)
apart=(tests/lab/swarm tests/lab/test_rehearsal.py)
(
  status=0
  "$bin/pytest" tests/unit tests/aws || status=$?
  for tests in "${apart[@]}"; do
    name=openlmis-$(basename "$tests" .py | tr _ -)
    OPS_TEST_LAB_NAME=$name "$bin/pytest" --durations=5 "$tests" || status=$?
  done
  exit "$status"
) >"$log" 2>&1 &
beside=$!
trap 'kill "$beside" 2>/dev/null; rm -f "$log"' EXIT
"$bin/pytest" --durations=10 "${apart[@]/#/--ignore=}" tests/lab
lab=$?
wait "$beside"
other=$?
echo
echo "=== unit and aws tiers, then the swarm and the rehearsal ==="
cat "$log"
exit $(( lab != 0 ? lab : other ))
