#!/usr/bin/env bash
# Start a throw-away single-node SLURM on this machine for tests/slurm (root, no systemd).
#
#   tests/slurm/start.sh [--accounting on|off] [--max-array-size N] [--cpus N] [--min-job-age S]
#                        [--max-submit-jobs N] [--state-dir DIR]
#
# Stops whatever an earlier start.sh with the same state dir left running, writes slurm.conf (and
# slurmdbd.conf) into DIR/etc, links /etc/slurm/slurm.conf (and slurmdbd.conf) to them so every
# SLURM command, submitit and snnbatch find the cluster without SLURM_CONF, starts munge (unless one
# already answers), with accounting also a private MariaDB (DIR/mysql, socket DIR/run/mysql/mysqld.sock)
# and slurmdbd, then slurmctld and slurmd, waits for an idle node and prints DIR.
# Every start is a fresh cluster: no jobs, job ids from 1, an empty accounting database.
# On failure: exit 1 and the tail of the daemon log that explains it. See README.md for the choices.
set -uo pipefail

ACCOUNTING=on
MAX_ARRAY_SIZE=1001
CPUS=8           # declared CPUs (config_overrides): more than the 2 real cores, see README.md
MIN_JOB_AGE=10
MAX_SUBMIT_JOBS=0  # with accounting: root's association limit MaxSubmitJobs, enforced (0: no limit)
STATE=/tmp/snnbatch-slurm
usage() { sed -n '4,5p' "$0" | sed 's/^# *//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case "$1" in
    --accounting) ACCOUNTING=$2 ;;
    --max-array-size) MAX_ARRAY_SIZE=$2 ;;
    --cpus) CPUS=$2 ;;
    --min-job-age) MIN_JOB_AGE=$2 ;;
    --max-submit-jobs) MAX_SUBMIT_JOBS=$2 ;;
    --state-dir) STATE=$2 ;;
    *) usage ;;
  esac
  shift 2
done
case "$ACCOUNTING" in on|off) ;; *) usage ;; esac
[ "$MAX_SUBMIT_JOBS" = 0 ] || [ "$ACCOUNTING" = on ] || usage
for n in "$MAX_ARRAY_SIZE" "$CPUS" "$MIN_JOB_AGE" "$MAX_SUBMIT_JOBS"; do [[ "$n" =~ ^[0-9]+$ ]] || usage; done
[ -n "$STATE" ] || usage
[ "$(id -u)" = 0 ] || { echo "start.sh: must run as root" >&2; exit 1; }
for b in munged slurmctld slurmd scontrol sinfo; do
  command -v "$b" >/dev/null || { echo "start.sh: $b not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
done
if [ "$ACCOUNTING" = on ]; then
  for b in slurmdbd sacctmgr mariadbd mariadb-install-db; do
    command -v "$b" >/dev/null || { echo "start.sh: $b not found (apt-get install slurmdbd mariadb-server)" >&2; exit 1; }
  done
fi
mkdir -p "$STATE" && STATE=$(cd "$STATE" && pwd) || exit 1
HERE=$(cd "$(dirname "$0")" && pwd)
T0=$(date +%s)

"$HERE/stop.sh" --state-dir "$STATE" || true

LOG=$STATE/log RUN=$STATE/run ETC=$STATE/etc
rm -rf "$STATE/state" "$STATE/spool"          # fresh cluster: no jobs, ids from 1
mkdir -p "$LOG" "$RUN" "$ETC" "$STATE/state" "$STATE/spool"
: > "$LOG/slurmctld.log"; : > "$LOG/slurmd.log"; : > "$LOG/slurmdbd.log"

fail() { # message [log files...]: the message and the tail of each non-empty log
  echo "start.sh: $1" >&2; shift
  for f in "$@"; do [ -s "$f" ] && { echo "--- tail of $f:" >&2; tail -n 25 "$f" >&2; }; done
  exit 1
}
launch() { # name command...: start a daemon detached, its early stderr in LOG/name.stderr
  local name=$1; shift
  (cd / && setsid "$@" </dev/null >"$LOG/$name.stderr" 2>&1) || fail "$name did not start" "$LOG/$name.stderr" "$LOG/$name.log"
}
wait_for() { # seconds command... : poll every 0.2 s
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$deadline" ] || return 1; sleep 0.2; done
}
# a daemon of that name that is not ours (ours were all stopped above) holds the ports: refuse
for d in slurmctld slurmd slurmdbd; do
  p=$(pgrep -x "$d" | head -n1)
  [ -z "$p" ] || fail "a $d (pid $p) that this start.sh did not start (state dir $STATE) is running; stop it first"
done

mkdir -p /etc/slurm
HOST=$(hostname -s)
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts
MEM_MB=$(( $(awk '/^MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 2048 ))

# --- munge: reuse one that answers (Debian's postinst may have started it), else start ours
munge_ok() { munge -n | unmunge; }
if ! munge_ok >/dev/null 2>&1; then
  mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then mungekey --create 2>/dev/null || create-munge-key -f; fi
  chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
  chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
  runuser -u munge -- munged --force || fail "munged did not start" /var/log/munge/munged.log
  wait_for 10 munge_ok || fail "munge does not answer" /var/log/munge/munged.log
  cp /run/munge/munged.pid "$RUN/munged.pid"   # ours: stop.sh stops it
fi

# --- accounting: private MariaDB (fresh database each start) + slurmdbd
if [ "$ACCOUNTING" = on ]; then
  mkdir -p "$RUN/mysql"; chown mysql:mysql "$RUN/mysql"
  export MYSQL_UNIX_PORT=$RUN/mysql/mysqld.sock  # libmariadb's default socket for mariadb(1) and slurmdbd
  DB=$STATE/mysql
  if [ ! -d "$DB/mysql" ]; then
    rm -rf "$DB"; mkdir -p "$DB"; chown mysql:mysql "$DB"
    mariadb-install-db --user=mysql --datadir="$DB" --auth-root-authentication-method=socket \
      --skip-test-db --innodb-log-file-size=8M >"$LOG/mariadb-install.log" 2>&1 \
      || fail "mariadb-install-db failed" "$LOG/mariadb-install.log"
  fi
  touch "$LOG/mariadb.log"; chown mysql:mysql "$LOG/mariadb.log"
  (setsid mariadbd --no-defaults --user=mysql --datadir="$DB" --skip-networking --socket="$MYSQL_UNIX_PORT" \
     --pid-file="$RUN/mysql/mariadbd.pid" --log-error="$LOG/mariadb.log" --innodb-buffer-pool-size=32M \
     --innodb-log-file-size=8M --innodb-lock-wait-timeout=900 --performance-schema=OFF \
     --max-connections=50 </dev/null >/dev/null 2>&1 &)
  sql() { mariadb --socket="$MYSQL_UNIX_PORT" -uroot -e "$1"; }
  wait_for 30 sql 'select 1' || fail "mariadb does not answer" "$LOG/mariadb.log"
  sql 'drop database if exists slurm_acct_db' || fail "cannot reset slurm_acct_db"
  cat > "$ETC/slurmdbd.conf" <<CONF
# written by tests/slurm/start.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
CONF
  chown root:root "$ETC/slurmdbd.conf"; chmod 600 "$ETC/slurmdbd.conf"
  ln -sfn "$ETC/slurmdbd.conf" /etc/slurm/slurmdbd.conf
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none"
  [ "$MAX_SUBMIT_JOBS" = 0 ] || ACCT="$ACCT
AccountingStorageEnforce=associations,limits"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
  [ -L /etc/slurm/slurmdbd.conf ] && rm -f /etc/slurm/slurmdbd.conf
fi

cat > "$ETC/slurm.conf" <<CONF
# written by tests/slurm/start.sh --accounting $ACCOUNTING --max-array-size $MAX_ARRAY_SIZE --cpus $CPUS --max-submit-jobs $MAX_SUBMIT_JOBS
ClusterName=snnbatch
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
# no cgroups in this container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# the node declares $CPUS CPUs whatever the hardware has
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1,sched_min_interval=0,batch_sched_delay=0
MaxArraySize=$MAX_ARRAY_SIZE
MaxJobCount=$(( MAX_ARRAY_SIZE > 5000 ? 2 * MAX_ARRAY_SIZE : 10000 ))
MinJobAge=$MIN_JOB_AGE
KillWait=5
ReturnToService=2
InactiveLimit=0
SlurmdTimeout=60
JobRequeue=1
# preemption: jobs in debug are requeued (after USR2 from --signal, then SIGTERM) for jobs in high
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
$ACCT
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=30
PartitionName=high Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
CONF
ln -sfn "$ETC/slurm.conf" /etc/slurm/slurm.conf

if [ "$ACCOUNTING" = on ]; then
  launch slurmdbd slurmdbd
  wait_for 40 sacctmgr -n list cluster || fail "slurmdbd does not answer" "$LOG/slurmdbd.stderr" "$LOG/slurmdbd.log"
  sacctmgr -i add cluster snnbatch >/dev/null || fail "sacctmgr add cluster failed" "$LOG/slurmdbd.log"
  if [ "$MAX_SUBMIT_JOBS" != 0 ]; then
    sacctmgr -i modify user root set maxsubmitjobs="$MAX_SUBMIT_JOBS" >/dev/null \
      || fail "sacctmgr could not set MaxSubmitJobs" "$LOG/slurmdbd.log"
  fi
fi
launch slurmctld slurmctld -i
wait_for 30 scontrol ping || fail "slurmctld does not answer" "$LOG/slurmctld.stderr" "$LOG/slurmctld.log"
launch slurmd slurmd
node_idle() { [ "$(sinfo -h -N -n "$HOST" -o %t | sort -u)" = idle ]; }
wait_for 30 node_idle || fail "the node is not idle: $(sinfo -h -N -o '%t %E' 2>&1)" "$LOG/slurmd.stderr" "$LOG/slurmd.log"
echo "start.sh: single-node SLURM up in $(( $(date +%s) - T0 )) s (accounting $ACCOUNTING," \
  "MaxArraySize $MAX_ARRAY_SIZE, $CPUS CPUs, partitions debug/high$([ "$MAX_SUBMIT_JOBS" = 0 ] || echo ", MaxSubmitJobs $MAX_SUBMIT_JOBS"))" >&2
echo "$STATE"
