#!/usr/bin/env bash
# The whole test suite, as `make test` runs it: the live-SLURM tests (tests/slurm, one cluster) and
# everything else, side by side in two pytest processes.
#
#   tests/run-suite.sh PYTHON [PYTEST ARGS...]
#
# Most of a SLURM test's time is the scheduler's (polling intervals, MinJobAge, requeue holds), not
# CPU, so the rest of the suite runs beside it. The SLURM part's output is held in a log and printed
# after the other part's; the exit status is the first non-zero of the two (0 when both pass).
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

"$PY" -m pytest -m "not slurm and not slow" "$@"
rest=$?
wait "$slurm"
slurm_rc=$?

echo
echo "================================ live-SLURM tests (tests/slurm), run side by side ================================"
cat "$log"
echo "tests without SLURM: exit $rest; live-SLURM tests: exit $slurm_rc"
# pytest's exit 5 is "no tests collected": a selection that matched nothing is a failure here too
[ "$rest" -ne 0 ] && exit "$rest"
exit "$slurm_rc"
