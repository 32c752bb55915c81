#!/bin/bash
#PBS -N genenkf-dataset
#PBS -l select=1:ncpus=16:mpiprocs=16
#PBS -l walltime=01:00:00
#PBS -q workq
#PBS -A myproject
#PBS -j oe
#PBS -o runs/paper/jobs/logs/
#
# genenkf dataset: MPI, 1 node(s) x 16 process(es) per node, via mpiexec + mpi4py (an exception
# on any rank aborts the whole job). Rendered by `genenkf jobs render`; submit with `qsub
# SCRIPT`. Submitting it again after a walltime or preemption stop continues where it stopped.
set -euo pipefail

cd -- "$PBS_O_WORKDIR"
set +u  # module and venv activation scripts are not written for set -u
source .venv/bin/activate
set -u
PYTHON="$(command -v -- python3)" || { echo 'genenkf job: Python interpreter python3 not found' >&2; exit 2; }
MPIEXEC="$(command -v -- mpiexec)" || { echo 'genenkf job: MPI launcher mpiexec not found' >&2; exit 2; }
export OMP_NUM_THREADS=1
OUT=runs/paper/dataset
: "${PBS_NODEFILE:?is not set: submit this script with qsub}"
NP="$(wc -l < "$PBS_NODEFILE")"  # PBS lists each node once per MPI process (mpiprocs)

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
run_step "$MPIEXEC" -n "$NP" -machinefile "$PBS_NODEFILE" env \
    "OMP_NUM_THREADS=$OMP_NUM_THREADS" "$PYTHON" -m mpi4py -m genenkf_hpc dataset -c \
    configs/paper.toml --out "$OUT" || status=$?
if [ -n "$stop_signal" ]; then
    echo "genenkf job: stopped by SIG$stop_signal before the end; submit this script again to rerun it" >&2
    exit 75
fi
exit "$status"
