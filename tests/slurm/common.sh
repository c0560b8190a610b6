# Shared settings of tests/slurm/start_cluster.sh and stop_cluster.sh (sourced, not run).
# Everything the test cluster writes lives under STATE_DIR, except the Slurm configuration, which goes
# to /etc/slurm (where sbatch, sacct and slurmstepd look without SLURM_CONF, as on a real cluster).
STATE_DIR=${RANOFLOW_SLURM_STATE:-/tmp/ranoflow-slurm}
PID_DIR=$STATE_DIR/pids
LOG_DIR=$STATE_DIR/log
SLURM_ETC=/etc/slurm
CLUSTER_NAME=ranoflow-ci
MARKER="# written by ranoflow tests/slurm/start_cluster.sh"
DB_PORT=${RANOFLOW_SLURM_DB_PORT:-3306}
# Daemons in start order; stop_cluster.sh stops them in reverse.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

daemon_alive() { # name -> 0 when its recorded PID is a live process
    local pidfile=$PID_DIR/$1.pid
    [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}
