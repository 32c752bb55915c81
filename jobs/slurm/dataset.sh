#!/bin/bash
#SBATCH --job-name=genenkf-dataset
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=16
#SBATCH --cpus-per-task=1
#SBATCH --time=01:00:00
#SBATCH --partition=compute
#SBATCH --account=myproject
#SBATCH --output=runs/paper/jobs/logs/%x-%j.out
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@120
#SBATCH --kill-on-invalid-dep=yes
#
# genenkf dataset: MPI, 1 node(s) x 16 process(es) per node, via srun + mpi4py (an exception on
# any rank aborts the whole job). Rendered by `genenkf jobs render`; submit with `sbatch
# SCRIPT`. Submitting it again after a walltime or preemption stop continues where it stopped.
set -euo pipefail

set +u  # module and venv activation scripts are not written for set -u
source .venv/bin/activate
set -u
PYTHON="$(command -v -- python3)" || { echo 'genenkf job: Python interpreter python3 not found' >&2; exit 2; }
export OMP_NUM_THREADS=1
OUT=runs/paper/dataset

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
run_step srun --kill-on-bad-exit=1 "$PYTHON" -m mpi4py -m genenkf_hpc dataset -c \
    configs/paper.toml --out "$OUT" || status=$?
if [ -n "$stop_signal" ]; then
    echo "genenkf job: stopped by SIG$stop_signal before the end; submit this script again to rerun it" >&2
    exit 75
fi
exit "$status"
