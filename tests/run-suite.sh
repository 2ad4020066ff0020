#!/usr/bin/env bash
# The whole test suite, as `make test` runs it: the live-SLURM tests (tests/slurm, one cluster at a time)
# and everything else, mostly side by side in two pytest processes.
#
#   tests/run-suite.sh PYTHON [PYTEST ARGS...]
#
# Most of a SLURM test's time is the scheduler's (polling intervals, MinJobAge, requeue holds), not CPU,
# so the rest of the suite runs beside it. Two SLURM tests run after the rest, alone: they time their
# faults against the machine's speed (the packed preemption sizes its element's deadline from a reference
# run made just before; the faults test's node DOWN and RESUME race slurmd's own re-registration), and a
# second pytest process beside them changes that speed in the middle of the test. The SLURM part's output
# is held in a log and printed after the other part's; the exit status is the first non-zero of the
# three runs (0 when all pass).
set -uo pipefail
PY=${1:?usage: tests/run-suite.sh PYTHON [PYTEST ARGS...]}
shift
cd "$(dirname "$0")/.."
ALONE=(tests/slurm/test_pack_slurm.py tests/slurm/test_faults_slurm.py)
log=$(mktemp "${TMPDIR:-/tmp}/snnbatch-slurm-tests.XXXXXX")
trap 'rm -f "$log"' EXIT

deselect=()
for f in "${ALONE[@]}"; do deselect+=(--deselect "$f"); done
"$PY" -m pytest -m "slurm and not slow" -p no:cacheprovider "${deselect[@]}" "$@" >"$log" 2>&1 &
slurm=$!
# if this script is stopped, stop the SLURM part too (its cluster is stopped by its session fixture)
trap 'kill -INT "$slurm" 2>/dev/null; wait "$slurm"; rm -f "$log"; exit 130' INT TERM

"$PY" -m pytest -m "not slurm and not slow" "$@"
rest=$?
wait "$slurm"
beside=$?
trap - INT TERM

echo
echo "=============================== live-SLURM tests (tests/slurm), run side by side ==============================="
cat "$log"
echo
echo "=============================== live-SLURM tests that run alone: ${ALONE[*]} ==============================="
"$PY" -m pytest -m "slurm and not slow" -p no:cacheprovider "$@" "${ALONE[@]}"
alone=$?
echo "tests without SLURM: exit $rest; live-SLURM tests beside them: exit $beside; alone: exit $alone"
for rc in "$rest" "$beside" "$alone"; do
  [ "$rc" -ne 0 ] && exit "$rc"
done
exit 0
