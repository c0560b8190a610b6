#!/usr/bin/env bash
# Start a single-node Slurm 22.05 cluster with accounting (slurmdbd on MariaDB) on this machine, for
# tests/test_slurm.py. Needs root; there is no systemd, so every daemon is started by hand in the
# foreground of its own session and its PID is recorded under $RANOFLOW_SLURM_STATE/pids
# (default /tmp/ranoflow-slurm); tests/slurm/stop_cluster.sh stops exactly those PIDs.
# The node advertises one GPU without having one (gres.conf: AutoDetect=off, File=/dev/null), so a
# job asking for gpu=1 is scheduled and accounted (AllocTRES gres/gpu=1) as on a GPU cluster.
# Idempotent: exits 0 at once when the cluster it started is still up.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"

say() { echo "[start_cluster] $*"; }
die() { echo "[start_cluster] ERROR: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and writes $SLURM_ETC)"

alive=0
for d in "${DAEMONS[@]}"; do daemon_alive "$d" && alive=$((alive + 1)); done
if ((alive == ${#DAEMONS[@]})); then
    say "already running (state in $STATE_DIR)"
    exit 0
elif ((alive > 0)); then
    die "some daemons of an earlier start are still running; run $here/stop_cluster.sh first"
fi

# --- packages -----------------------------------------------------------------------------------
missing=()
for cmd in slurmctld slurmd sbatch munged slurmdbd mariadbd; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if ((${#missing[@]})); then
    say "installing Slurm, munge and MariaDB (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq slurm-wlm slurmctld slurmd slurm-client \
        munge slurmdbd mariadb-server >/dev/null
fi

# --- fresh state --------------------------------------------------------------------------------
for f in slurm.conf gres.conf slurmdbd.conf; do
    if [[ -e $SLURM_ETC/$f ]] && ! grep -qF "$MARKER" "$SLURM_ETC/$f"; then
        die "$SLURM_ETC/$f exists and was not written by this script; refusing to overwrite it"
    fi
done
rm -rf "$STATE_DIR"
mkdir -p "$PID_DIR" "$LOG_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd" "$SLURM_ETC"
chmod 755 "$STATE_DIR"

start_daemon() { # name logfile command... : run in the foreground of a new session, record its PID
    local name=$1 log=$2
    shift 2
    setsid "$@" >>"$log" 2>&1 </dev/null &
    echo $! >"$PID_DIR/$name.pid"
}

wait_for() { # daemon seconds command... : retry the command every 0.5 s while the daemon lives
    local name=$1 seconds=$2
    shift 2
    for ((i = 0; i < seconds * 2; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        daemon_alive "$name" || die "$name exited (see $LOG_DIR/$name.*)"
        sleep 0.5
    done
    die "$name not ready within ${seconds}s: '$*' kept failing (logs in $LOG_DIR)"
}

# --- munge --------------------------------------------------------------------------------------
[[ -s /etc/munge/munge.key ]] || {
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
}
install -d -o munge -g munge -m 755 /run/munge /var/log/munge /var/lib/munge
# munged refuses to run as root; setpriv execs it as munge, so $! is munged itself.
start_daemon munged "$LOG_DIR/munged.out" \
    setpriv --reuid=munge --regid=munge --init-groups munged --foreground
wait_for munged 20 bash -c 'munge -n | unmunge'

# --- MariaDB (private data directory, TCP on 127.0.0.1 only) -------------------------------------
db_dir=$STATE_DIR/mysql
db_sock=$STATE_DIR/mysqld/mysqld.sock
install -d -o mysql -g mysql "$STATE_DIR/mysqld"
mariadb-install-db --no-defaults --user=mysql --datadir="$db_dir" --skip-test-db \
    --auth-root-authentication-method=socket >"$LOG_DIR/mariadb-install.log" 2>&1
install -o mysql -g mysql -m 640 /dev/null "$LOG_DIR/mariadbd.log"
start_daemon mariadbd "$LOG_DIR/mariadbd.out" \
    mariadbd --no-defaults --user=mysql --datadir="$db_dir" --socket="$db_sock" \
    --port="$DB_PORT" --bind-address=127.0.0.1 \
    --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 --log-error="$LOG_DIR/mariadbd.log"
wait_for mariadbd 60 mariadb-admin --no-defaults --socket="$db_sock" ping
mariadb --no-defaults --socket="$db_sock" -u root <<'SQL'
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL

# --- Slurm configuration for this machine --------------------------------------------------------
host=$(hostname -s)
# `slurmd -C` prints this machine's node line (CPUs, sockets, cores, RealMemory), first line only.
node_line=$(slurmd -C | head -n 1)
[[ $node_line == NodeName=$host* ]] || die "unexpected 'slurmd -C' output: $node_line"

cat >"$SLURM_ETC/slurm.conf" <<EOF
$MARKER
ClusterName=$CLUSTER_NAME
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# No cgroups in this container: track processes by parent PID, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job that gives no memory is allocated the whole node.
DefMemPerCPU=1024
ReturnToService=2
# Keep finished jobs visible to squeue for a while (also a fallback status command).
MinJobAge=300
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
# gres/gpu is not accounted unless named here; the test checks AllocTRES for it.
AccountingStorageTRES=gres/gpu
# Store sbatch --comment (the plugin writes rule_<rule>_wildcards_<...> there) for sacct.
AccountingStoreFlags=job_comment
MailProg=/bin/true
GresTypes=gpu
$node_line NodeAddr=127.0.0.1 Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

cat >"$SLURM_ETC/gres.conf" <<EOF
$MARKER
# A GPU the scheduler can hand out although the machine has none.
AutoDetect=off
NodeName=$host Name=gpu File=/dev/null
EOF

cat >"$SLURM_ETC/slurmdbd.conf" <<EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$STATE_DIR/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
chmod 600 "$SLURM_ETC/slurmdbd.conf"

# --- Slurm daemons --------------------------------------------------------------------------------
start_daemon slurmdbd "$LOG_DIR/slurmdbd.out" slurmdbd -D
wait_for slurmdbd 60 sacctmgr -n list cluster
sacctmgr -i add cluster "$CLUSTER_NAME" >/dev/null
sacctmgr -i add account ranoflow Description="ranoflow CI" >/dev/null
sacctmgr -i add user root account=ranoflow >/dev/null

start_daemon slurmctld "$LOG_DIR/slurmctld.out" slurmctld -D
wait_for slurmctld 60 scontrol ping
start_daemon slurmd "$LOG_DIR/slurmd.out" slurmd -D
node_idle() { [[ $(sinfo -h -n "$host" -o %T) == idle ]]; }
wait_for slurmd 60 node_idle

# Smoke test: a GPU job is scheduled, runs and is accounted.
srun --gpus=1 --mem=100 -t 1 -J smoke true || die "a gpu=1 test job failed (logs in $LOG_DIR)"
say "up: cluster $CLUSTER_NAME, node '$node_line Gres=gpu:1', partition main; state in $STATE_DIR"
