#!/usr/bin/env bash
# Stop the daemons tests/slurm/start_cluster.sh started, by their recorded PIDs, in reverse start
# order (TERM, then KILL after 20 s). Jobs still on the test cluster are cancelled first.
# Leaves the state directory (logs) in place; start_cluster.sh wipes it on the next start.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"

if daemon_alive slurmctld; then
    scancel --cluster="$CLUSTER_NAME" --full --user="$(id -un)" 2>/dev/null || true
fi

for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    name=${DAEMONS[i]}
    pidfile=$PID_DIR/$name.pid
    [[ -s $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if kill -TERM "$pid" 2>/dev/null; then
        for ((t = 0; t < 40; t++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "[stop_cluster] $name ($pid) ignored TERM, killing it"
            kill -KILL "$pid" 2>/dev/null
        fi
        echo "[stop_cluster] stopped $name ($pid)"
    fi
    rm -f "$pidfile"
done
