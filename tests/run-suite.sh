#!/usr/bin/env bash
# The whole test suite, as `make test` runs it: the live-SLURM tests (tests/slurm, one cluster at a time)
# and everything else, side by side: one pytest process for the SLURM tests, one with pytest-xdist's
# workers (SNNBATCH_TEST_WORKERS, default 2; a test file's tests stay on one worker) for the rest.
#
#   tests/run-suite.sh PYTHON [PYTEST ARGS...]
#
# Much of the rest's time is Numba compiling kernels for the signatures the tests use, one core at a
# time; two workers compile on two cores, and what one has compiled the other loads from Numba's cache.
# Most of a SLURM test's time is the scheduler's (polling intervals, MinJobAge, requeue holds), not CPU,
# so the rest of the suite runs beside it; every SLURM test injects its faults once a state is reached
# (a task stopped at an iteration, tasks done), never after a fixed time, so the other process's load
# changes how long it takes, not what it sees. The SLURM part's output is held in a log and printed after
# the other part's; the exit status is the first non-zero of the two (0 when both pass).
set -uo pipefail
PY=${1:?usage: tests/run-suite.sh PYTHON [PYTEST ARGS...]}
shift
cd "$(dirname "$0")/.."
log=$(mktemp "${TMPDIR:-/tmp}/snnbatch-slurm-tests.XXXXXX")
trap 'rm -f "$log"' EXIT

"$PY" -m pytest -m "slurm and not slow" -p no:cacheprovider "$@" >"$log" 2>&1 &
slurm=$!
# if this script is stopped, stop the SLURM part too (its cluster is stopped by its session fixture)
trap 'kill -INT "$slurm" 2>/dev/null; wait "$slurm"; rm -f "$log"; exit 130' INT TERM

"$PY" -m pytest -m "not slurm and not slow" -n "${SNNBATCH_TEST_WORKERS:-2}" --dist loadfile "$@"
rest=$?
wait "$slurm"
beside=$?
trap - INT TERM

echo
echo "=============================== live-SLURM tests (tests/slurm), run side by side ==============================="
cat "$log"
echo "tests without SLURM: exit $rest; live-SLURM tests beside them: exit $beside"
for rc in "$rest" "$beside"; do
  [ "$rc" -ne 0 ] && exit "$rc"
done
exit 0
