#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh started (slurmd, slurmctld, slurmdbd, mariadb; munge stays).
STATE=/tmp/snnbatch-slurm
[ "${1:-}" = --state-dir ] && STATE=$2
scancel --quiet --user=root >/dev/null 2>&1 || true
for d in slurmd slurmctld slurmdbd; do pkill -x "$d" 2>/dev/null || true; done
if [ -f "$STATE/mariadb.pid" ]; then kill "$(cat "$STATE/mariadb.pid")" 2>/dev/null || true; rm -f "$STATE/mariadb.pid"; fi
for _ in $(seq 1 50); do pgrep -x 'slurmd|slurmctld|slurmdbd|mariadbd' >/dev/null || break; sleep 0.2; done
pkill -9 -x 'slurmd|slurmctld|slurmdbd|mariadbd' 2>/dev/null || true
rm -rf "$STATE/state"
exit 0
