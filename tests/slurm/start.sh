#!/usr/bin/env bash
# Start a single-node SLURM on this machine for the tests (root, no systemd).
#   tests/slurm/start.sh [--accounting on|off] [--max-array-size N] [--state-dir DIR]
# Writes /etc/slurm/slurm.conf (so every SLURM command and submitit find it), starts munge,
# with accounting also MariaDB and slurmdbd, then slurmctld and slurmd, and waits for an idle node.
set -euo pipefail
ACCOUNTING=on
MAX_ARRAY_SIZE=1001
STATE=/tmp/snnbatch-slurm
while [ $# -gt 0 ]; do
  case "$1" in
    --accounting) ACCOUNTING=$2; shift 2 ;;
    --max-array-size) MAX_ARRAY_SIZE=$2; shift 2 ;;
    --state-dir) STATE=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/stop.sh" --state-dir "$STATE" >/dev/null 2>&1 || true

fail() { echo "start.sh: $1" >&2; [ -n "${2:-}" ] && [ -f "$2" ] && tail -n 30 "$2" >&2; exit 1; }
wait_for() { # seconds, description, command...
  local n=$1 what=$2; shift 2
  for _ in $(seq 1 $((n * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

HOST=$(hostname -s)
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts
mkdir -p "$STATE"/{spool,state,log} /run/slurm /var/spool/slurmd
CPUS=4   # more than the 2 cores: lets several 1-cpu array elements share the machine (config_overrides)
MEM=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 2048 ))

# munge
[ -s /etc/munge/munge.key ] || (mungekey --create 2>/dev/null || create-munge-key -f)
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
pgrep -x munged >/dev/null || runuser -u munge -- munged || fail "munged did not start" /var/log/munge/munged.log
wait_for 10 munge munge -n || fail "munge does not answer"

if [ "$ACCOUNTING" = on ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then mariadb-install-db --user=mysql >/dev/null 2>&1 || true; fi
  nohup mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
    --innodb-buffer-pool-size=16M --log-error="$STATE/log/mariadb.log" >/dev/null 2>&1 &
  echo $! > "$STATE/mariadb.pid"
  wait_for 30 mariadb mariadb -uroot -e "select 1" || fail "mariadb did not start" "$STATE/log/mariadb.log"
  cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=root
CONF
  chmod 600 /etc/slurm/slurmdbd.conf
  slurmdbd || fail "slurmdbd did not start" "$STATE/log/slurmdbd.log"
  sleep 1
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=snnbatch
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
StateSaveLocation=$STATE/state
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1,sched_min_interval=0,batch_sched_delay=0
MaxArraySize=$MAX_ARRAY_SIZE
MaxJobCount=20000
MinJobAge=30
KillWait=5
ReturnToService=2
InactiveLimit=0
MpiDefault=none
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
JobRequeue=1
$ACCT
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=10
PartitionName=high Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
CONF

if [ "$ACCOUNTING" = on ]; then
  wait_for 20 slurmdbd sacctmgr -i list cluster || fail "slurmdbd does not answer" "$STATE/log/slurmdbd.log"
  sacctmgr -i add cluster snnbatch >/dev/null 2>&1 || true
fi
slurmctld -i || fail "slurmctld did not start" "$STATE/log/slurmctld.log"
wait_for 30 slurmctld scontrol ping || fail "slurmctld does not answer" "$STATE/log/slurmctld.log"
slurmd || fail "slurmd did not start" "$STATE/log/slurmd.log"
idle() { sinfo -h -N -o %t | grep -qE '^(idle|mix|alloc)'; }
wait_for 40 node idle || { scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true; wait_for 10 node idle; } \
  || fail "the node did not become idle: $(sinfo -h -N -o '%t %E')" "$STATE/log/slurmd.log"
echo "$STATE"
