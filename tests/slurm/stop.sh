#!/usr/bin/env bash
# Stop what tests/slurm/start.sh started with this state dir: cancel all jobs, then slurmd,
# slurmctld, slurmdbd, MariaDB and munged (munged only if start.sh started it). Daemons are found
# through their pid files under DIR/run (and checked by name), so nothing else is touched.
#
#   tests/slurm/stop.sh [--state-dir DIR]
STATE=/tmp/snnbatch-slurm
while [ $# -gt 0 ]; do
  case "$1" in
    --state-dir) [ -n "${2:-}" ] || { echo "usage: $0 [--state-dir DIR]" >&2; exit 2; }; STATE=$2; shift 2 ;;
    *) echo "usage: $0 [--state-dir DIR]" >&2; exit 2 ;;
  esac
done
RUN=$STATE/run
[ -d "$RUN" ] || exit 0

ours() { # pidfile name -> prints the pid if that process is alive and is called name
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$2" ] && echo "$pid"
}
stop() { # pidfile:name... : SIGTERM to all of them at once, wait up to 10 s, then SIGKILL
  local spec pid alive pids=()
  for spec in "$@"; do
    if pid=$(ours "${spec%%:*}" "${spec##*:}"); then kill "$pid" 2>/dev/null; pids+=("$pid:${spec##*:}"); fi
    rm -f "${spec%%:*}"
  done
  for _ in $(seq 1 50); do
    alive=0
    for spec in "${pids[@]}"; do [ -d /proc/"${spec%%:*}" ] && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.2
  done
  for spec in "${pids[@]}"; do
    if [ -d /proc/"${spec%%:*}" ]; then
      echo "stop.sh: ${spec##*:} (${spec%%:*}) ignored SIGTERM for 10 s, killing it" >&2
      kill -9 "${spec%%:*}" 2>/dev/null
    fi
  done
}

# jobs first, so that no slurmstepd or task outlives slurmd
if ours "$RUN/slurmctld.pid" slurmctld >/dev/null && ours "$RUN/slurmd.pid" slurmd >/dev/null; then
  jobs=$(squeue -h -o %i 2>/dev/null)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086
    scancel --quiet $jobs 2>/dev/null
    for _ in $(seq 1 75); do  # KillWait=5: the steps are gone well within 15 s
      [ -z "$(squeue -h -t RUNNING,COMPLETING,SUSPENDED -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
fi
stop "$RUN/slurmd.pid:slurmd" "$RUN/slurmctld.pid:slurmctld"   # slurmctld still flushes to slurmdbd
stop "$RUN/slurmdbd.pid:slurmdbd" "$RUN/mysql/mariadbd.pid:mariadbd" "$RUN/munged.pid:munged"
exit 0
