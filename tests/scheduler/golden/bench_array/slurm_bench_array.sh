#!/bin/bash
#SBATCH --job-name=genenkf-bench
#SBATCH --array=0-11%4
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --cpus-per-task=1
#SBATCH --gpus-per-node=2
#SBATCH --time=00:20:00
#SBATCH --partition=compute
#SBATCH --account=proj42
#SBATCH --exclusive
#SBATCH --output=/scratch/logs/%x-%A_%a.out
#
# genenkf benchmark sweep: 12 configurations, one per array index (rendered by
# tools/bench_slurm_array.py; the same sweeps as tools/bench_suite.py). Every index gets the
# allocation above and uses the nodes it needs; to leave no node idle, submit by node count:
#   sbatch --array=0-4,6-7,9-10 --nodes=1 SCRIPT
#   sbatch --array=5,8,11 --nodes=2 SCRIPT
# Results: one JSON-lines file per index in the results directory; tables and plots:
#   python tools/bench_suite.py --collect '/scratch/bench 1' --out TABLES
set -euo pipefail

PYTHON="$(command -v -- /opt/genenkf/venv/bin/python)" || { echo 'genenkf job: Python interpreter /opt/genenkf/venv/bin/python not found' >&2; exit 2; }
export OMP_NUM_THREADS=1
OUT='/scratch/bench 1'
mkdir -p -- "$OUT"

# Index -> configuration: the nodes it needs, its threads per process, a JSON
# description (first line of the result file) and the job step's command.
index="${SLURM_ARRAY_TASK_ID:?run this script with sbatch (an array task)}"
case "$index" in
    0) nodes=1 threads=4
       meta='{"index": 0, "sweep": "letkf_nx", "bench": "letkf", "ranks": 1, "mpi": false, "nodes": 1, "threads": 4, "command": "OMP_NUM_THREADS=4 srun --nodes=1 --ntasks=1 --cpus-per-task=4 python -m genenkf_hpc bench letkf --nx 2000 --members 32 --radius 4 --taper box --mode kernel --repeat 5"}'
       set -- srun --nodes=1 --ntasks=1 --cpus-per-task=4 "$PYTHON" -m genenkf_hpc bench letkf \
           --nx 2000 --members 32 --radius 4 --taper box --mode kernel --repeat 5 ;;
    1) nodes=1 threads=4
       meta='{"index": 1, "sweep": "letkf_nx", "bench": "letkf", "ranks": 1, "mpi": false, "nodes": 1, "threads": 4, "command": "OMP_NUM_THREADS=4 srun --nodes=1 --ntasks=1 --cpus-per-task=4 python -m genenkf_hpc bench letkf --nx 200000 --members 32 --radius 4 --taper box --mode kernel --repeat 5"}'
       set -- srun --nodes=1 --ntasks=1 --cpus-per-task=4 "$PYTHON" -m genenkf_hpc bench letkf \
           --nx 200000 --members 32 --radius 4 --taper box --mode kernel --repeat 5 ;;
    2) nodes=1 threads=1
       meta='{"index": 2, "sweep": "letkf_strong", "bench": "letkf", "ranks": 1, "mpi": true, "nodes": 1, "threads": 1, "command": "OMP_NUM_THREADS=1 srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=1 --ntasks-per-node=1 --cpus-per-task=1 --distribution=block python -m mpi4py -m genenkf_hpc bench letkf --nx 1000000 --members 32 --radius 4 --taper box --mode parallel --repeat 5"}'
       set -- srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=1 --ntasks-per-node=1 \
           --cpus-per-task=1 --distribution=block "$PYTHON" -m mpi4py -m genenkf_hpc \
           bench letkf --nx 1000000 --members 32 --radius 4 --taper box --mode parallel \
           --repeat 5 ;;
    3) nodes=1 threads=1
       meta='{"index": 3, "sweep": "letkf_strong", "bench": "letkf", "ranks": 2, "mpi": true, "nodes": 1, "threads": 1, "command": "OMP_NUM_THREADS=1 srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 --distribution=block python -m mpi4py -m genenkf_hpc bench letkf --nx 1000000 --members 32 --radius 4 --taper box --mode parallel --repeat 5"}'
       set -- srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=2 --ntasks-per-node=2 \
           --cpus-per-task=1 --distribution=block "$PYTHON" -m mpi4py -m genenkf_hpc \
           bench letkf --nx 1000000 --members 32 --radius 4 --taper box --mode parallel \
           --repeat 5 ;;
    4) nodes=1 threads=1
       meta='{"index": 4, "sweep": "letkf_strong", "bench": "letkf", "ranks": 4, "mpi": true, "nodes": 1, "threads": 1, "command": "OMP_NUM_THREADS=1 srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=4 --ntasks-per-node=4 --cpus-per-task=1 --distribution=block python -m mpi4py -m genenkf_hpc bench letkf --nx 1000000 --members 32 --radius 4 --taper box --mode parallel --repeat 5"}'
       set -- srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=4 --ntasks-per-node=4 \
           --cpus-per-task=1 --distribution=block "$PYTHON" -m mpi4py -m genenkf_hpc \
           bench letkf --nx 1000000 --members 32 --radius 4 --taper box --mode parallel \
           --repeat 5 ;;
    5) nodes=2 threads=1
       meta='{"index": 5, "sweep": "letkf_strong", "bench": "letkf", "ranks": 8, "mpi": true, "nodes": 2, "threads": 1, "command": "OMP_NUM_THREADS=1 srun --kill-on-bad-exit=1 --mpi=pmix --nodes=2 --ntasks=8 --ntasks-per-node=4 --cpus-per-task=1 --distribution=block python -m mpi4py -m genenkf_hpc bench letkf --nx 1000000 --members 32 --radius 4 --taper box --mode parallel --repeat 5"}'
       set -- srun --kill-on-bad-exit=1 --mpi=pmix --nodes=2 --ntasks=8 --ntasks-per-node=4 \
           --cpus-per-task=1 --distribution=block "$PYTHON" -m mpi4py -m genenkf_hpc \
           bench letkf --nx 1000000 --members 32 --radius 4 --taper box --mode parallel \
           --repeat 5 ;;
    6) nodes=1 threads=1
       meta='{"index": 6, "sweep": "sample_weak", "bench": "sample", "ranks": 1, "mpi": true, "nodes": 1, "threads": 1, "command": "OMP_NUM_THREADS=1 srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=1 --ntasks-per-node=1 --cpus-per-task=1 --distribution=block python -m mpi4py -m genenkf_hpc bench sample -c configs/paper.toml --members 8 --steps 20 --repeat 5 --device cuda"}'
       set -- srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=1 --ntasks-per-node=1 \
           --cpus-per-task=1 --distribution=block "$PYTHON" -m mpi4py -m genenkf_hpc \
           bench sample -c configs/paper.toml --members 8 --steps 20 --repeat 5 \
           --device cuda ;;
    7) nodes=1 threads=1
       meta='{"index": 7, "sweep": "sample_weak", "bench": "sample", "ranks": 2, "mpi": true, "nodes": 1, "threads": 1, "command": "OMP_NUM_THREADS=1 srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 --distribution=block python -m mpi4py -m genenkf_hpc bench sample -c configs/paper.toml --members 16 --steps 20 --repeat 5 --device cuda"}'
       set -- srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=2 --ntasks-per-node=2 \
           --cpus-per-task=1 --distribution=block "$PYTHON" -m mpi4py -m genenkf_hpc \
           bench sample -c configs/paper.toml --members 16 --steps 20 --repeat 5 \
           --device cuda ;;
    8) nodes=2 threads=1
       meta='{"index": 8, "sweep": "sample_weak", "bench": "sample", "ranks": 4, "mpi": true, "nodes": 2, "threads": 1, "command": "OMP_NUM_THREADS=1 srun --kill-on-bad-exit=1 --mpi=pmix --nodes=2 --ntasks=4 --ntasks-per-node=2 --cpus-per-task=1 --distribution=block python -m mpi4py -m genenkf_hpc bench sample -c configs/paper.toml --members 32 --steps 20 --repeat 5 --device cuda"}'
       set -- srun --kill-on-bad-exit=1 --mpi=pmix --nodes=2 --ntasks=4 --ntasks-per-node=2 \
           --cpus-per-task=1 --distribution=block "$PYTHON" -m mpi4py -m genenkf_hpc \
           bench sample -c configs/paper.toml --members 32 --steps 20 --repeat 5 \
           --device cuda ;;
    9) nodes=1 threads=1
       meta='{"index": 9, "sweep": "train_strong", "bench": "train", "ranks": 1, "mpi": true, "nodes": 1, "threads": 1, "command": "OMP_NUM_THREADS=1 srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=1 --ntasks-per-node=1 --cpus-per-task=1 --distribution=block python -m mpi4py -m genenkf_hpc bench train -c configs/paper.toml --batch 256 --steps 20 --device cuda"}'
       set -- srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=1 --ntasks-per-node=1 \
           --cpus-per-task=1 --distribution=block "$PYTHON" -m mpi4py -m genenkf_hpc \
           bench train -c configs/paper.toml --batch 256 --steps 20 --device cuda ;;
    10) nodes=1 threads=1
       meta='{"index": 10, "sweep": "train_strong", "bench": "train", "ranks": 2, "mpi": true, "nodes": 1, "threads": 1, "command": "OMP_NUM_THREADS=1 srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 --distribution=block python -m mpi4py -m genenkf_hpc bench train -c configs/paper.toml --batch 256 --steps 20 --device cuda"}'
       set -- srun --kill-on-bad-exit=1 --mpi=pmix --nodes=1 --ntasks=2 --ntasks-per-node=2 \
           --cpus-per-task=1 --distribution=block "$PYTHON" -m mpi4py -m genenkf_hpc \
           bench train -c configs/paper.toml --batch 256 --steps 20 --device cuda ;;
    11) nodes=2 threads=1
       meta='{"index": 11, "sweep": "train_strong", "bench": "train", "ranks": 4, "mpi": true, "nodes": 2, "threads": 1, "command": "OMP_NUM_THREADS=1 srun --kill-on-bad-exit=1 --mpi=pmix --nodes=2 --ntasks=4 --ntasks-per-node=2 --cpus-per-task=1 --distribution=block python -m mpi4py -m genenkf_hpc bench train -c configs/paper.toml --batch 256 --steps 20 --device cuda"}'
       set -- srun --kill-on-bad-exit=1 --mpi=pmix --nodes=2 --ntasks=4 --ntasks-per-node=2 \
           --cpus-per-task=1 --distribution=block "$PYTHON" -m mpi4py -m genenkf_hpc \
           bench train -c configs/paper.toml --batch 256 --steps 20 --device cuda ;;
    *) echo "genenkf bench array: no configuration for index $index (0-11)" >&2; exit 2 ;;
esac
if [ "$nodes" -gt "${SLURM_JOB_NUM_NODES:-1}" ]; then
    echo "genenkf bench array: index $index needs $nodes node(s), the job has ${SLURM_JOB_NUM_NODES:-1}; submit it with --nodes=$nodes" >&2
    exit 2
fi
export OMP_NUM_THREADS="$threads"
result="$OUT/$(printf 'index_%04d' "$index").jsonl"
load="$(cut -d ' ' -f 1 /proc/loadavg)"
# the description plus the load average, then the records of `genenkf bench`;
# the file gets its final name only when the step succeeded
printf '%s, "load_1min": %s}\n' "${meta%\}}" "$load" > "$result.partial"
"$@" >> "$result.partial"
mv -f -- "$result.partial" "$result"
echo "genenkf bench array: index $index done: $result"
