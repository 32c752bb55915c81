#!/bin/bash
#PBS -N genenkf-train
#PBS -l select=1:ncpus=4:mpiprocs=1:ngpus=4
#PBS -l walltime=01:00:00
#PBS -q compute
#PBS -A proj42
#PBS -j oe
#PBS -o /scratch/logs/
#PBS -r y
#
# genenkf train: DistributedDataParallel on one process per GPU (4 per node), 1 node(s) x 4
# process(es) per node, via torchrun. Rendered by `genenkf jobs render`; submit with `qsub
# SCRIPT`. Submitting it again after a walltime or preemption stop continues where it stopped.
set -euo pipefail

cd -- "$PBS_O_WORKDIR"
PYTHON="$(command -v -- /opt/genenkf/venv/bin/python)" || { echo 'genenkf job: Python interpreter /opt/genenkf/venv/bin/python not found' >&2; exit 2; }
export OMP_NUM_THREADS=1
OUT='/scratch/exp 1/train'
# Resume when an earlier run of this job left a checkpoint (walltime, preemption).
set --
if [ -e "$OUT"/checkpoints/latest.pt ]; then set -- --resume; fi

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
run_step "$PYTHON" -m torch.distributed.run --standalone --nproc-per-node=4 -m genenkf_hpc \
    train -c configs/paper.toml --out "$OUT" --data data "$@" || status=$?
if [ -n "$stop_signal" ]; then
    echo "genenkf job: stopped by SIG$stop_signal before the end; submit this script again to resume" >&2
    exit 75
fi
exit "$status"
