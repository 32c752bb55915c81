#!/bin/bash
#PBS -N genenkf-assimilate
#PBS -l select=1:ncpus=2:mpiprocs=2
#PBS -l walltime=01:00:00
#PBS -q compute
#PBS -A proj42
#PBS -j oe
#PBS -o /scratch/logs/
#
# genenkf assimilate: MPI, 1 node(s) x 2 process(es) per node, via mpiexec + mpi4py (an
# exception on any rank aborts the whole job). Rendered by `genenkf jobs render`; submit with
# `qsub SCRIPT`. Submitting it again after a walltime or preemption stop continues where it
# stopped.
set -euo pipefail

cd -- '/work dir'
set +u  # module and venv activation scripts are not written for set -u
module load gcc/12
module load openmpi/4.1
set -u
PYTHON="$(command -v -- /opt/genenkf/venv/bin/python)" || { echo 'genenkf job: Python interpreter /opt/genenkf/venv/bin/python not found' >&2; exit 2; }
MPIEXEC="$(command -v -- /opt/mpi/bin/mpiexec)" || { echo 'genenkf job: MPI launcher /opt/mpi/bin/mpiexec not found' >&2; exit 2; }
export OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OUT='/scratch/exp 1/assimilate'
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
    "OMP_NUM_THREADS=$OMP_NUM_THREADS" "$PYTHON" -m mpi4py -m genenkf_hpc assimilate -c \
    configs/paper.toml --out "$OUT" --method letkf --resume 'osse.forcings=[5.0, 8.0]' \
    filter.members=16 || status=$?
if [ -n "$stop_signal" ]; then
    echo "genenkf job: stopped by SIG$stop_signal before the end; submit this script again to resume" >&2
    exit 75
fi
exit "$status"
