#!/bin/bash
#PBS -N genenkf-nature
#PBS -l select=1:ncpus=1:mpiprocs=1
#PBS -l walltime=00:30:00
#PBS -q workq
#PBS -A myproject
#PBS -j oe
#PBS -o runs/paper/jobs/logs/
#
# genenkf nature: one process. Rendered by `genenkf jobs render`; submit with `qsub SCRIPT`.
# Submitting it again after a walltime or preemption stop continues where it stopped.
set -euo pipefail

cd -- "$PBS_O_WORKDIR"
set +u  # module and venv activation scripts are not written for set -u
source .venv/bin/activate
set -u
PYTHON="$(command -v -- python3)" || { echo 'genenkf job: Python interpreter python3 not found' >&2; exit 2; }
export OMP_NUM_THREADS=1
OUT=runs/paper/nature

# The job step runs in the background so that this shell can catch the walltime warning
# or a TERM and pass it on as USR1: the program writes a checkpoint and exits cleanly (a
# TERM would make the launcher kill the processes at once).
stop_signal=""
on_signal() {
    stop_signal=$1
    interrupted=1
    echo "genenkf job: caught SIG$1, asking the job step to checkpoint and stop" >&2
    kill -USR1 "$step_pid" 2>/dev/null || true
}
run_step() {
    "$@" &
    step_pid=$!
    trap 'on_signal USR1' USR1
    trap 'on_signal TERM' TERM
    local status=0
    while :; do
        interrupted=0
        wait "$step_pid" && status=0 || status=$?
        # A trapped signal ends `wait` early (status > 128): wait again for the step itself.
        [ "$interrupted" = 1 ] && [ "$status" -gt 128 ] || break
    done
    trap - USR1 TERM
    return "$status"
}

status=0
run_step "$PYTHON" -m genenkf_hpc nature -c configs/paper.toml --out "$OUT" || status=$?
if [ -n "$stop_signal" ]; then
    echo "genenkf job: stopped by SIG$stop_signal before the end; submit this script again to rerun it" >&2
    exit 75
fi
exit "$status"
