"""tools/bench_slurm_array.py: the benchmark sweeps as one Slurm job array.

Golden file of the rendered script, shell syntax, the index -> configuration table, validation
of the resources (genenkf_hpc.scheduler.make_job), and array tasks run under bash with a
stand-in ``srun`` that writes the per-index JSON lines which ``bench_suite.py --collect`` reads.
Regenerate the golden file after an intended change: UPDATE_GOLDEN=1 .venv/bin/pytest
tests/scheduler/test_bench_array.py
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testpaths import REPO

sys.path.insert(0, str(REPO / "tools"))
import bench_slurm_array as bsa  # noqa: E402
import bench_suite  # noqa: E402

# own sub-directory: test_render.py treats every golden/*.sh as a stage script
GOLDEN = Path(__file__).parent / "golden" / "bench_array" / "slurm_bench_array.sh"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
GOLDEN_ARGS = ["--nodes", "2", "--tasks-per-node", "4", "--gpus-per-node", "2",
               "--partition", "compute", "--account", "proj42", "--time", "00:20:00",
               "--results", "/scratch/bench 1", "--log-dir", "/scratch/logs",
               "--python", "/opt/genenkf/venv/bin/python", "--srun-mpi", "pmix",
               "--max-parallel", "4", "--only", "letkf_nx", "letkf_strong", "sample_weak",
               "train_strong", "--set", "nx_list=2000,200000"]


def render(argv):
    return bsa.build(bsa.parse_args(argv))


def indices(text):
    return [int(m) for m in re.findall(r"^    (\d+)\) nodes=", text, re.M)]


def test_golden_script():
    text = render(GOLDEN_ARGS)
    if UPDATE:
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), f"{GOLDEN} missing: run with UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(), "differs from the golden file (UPDATE_GOLDEN=1)"


def test_script_shape_and_syntax(tmp_path):
    text = render(GOLDEN_ARGS)
    n = len(indices(text))
    assert indices(text) == list(range(n)) and n == 2 + 4 + 3 + 3  # nx, strong, weak, train
    assert f"#SBATCH --array=0-{n - 1}%4" in text
    assert "#SBATCH --exclusive" in text and "#SBATCH --gpus-per-node=2" in text
    assert "#SBATCH --output=/scratch/logs/%x-%A_%a.out" in text
    assert "OUT='/scratch/bench 1'" in text  # quoted: the path has a space
    # 8 CPU ranks need both nodes, 4 GPU ranks need both nodes (2 GPUs each)
    assert "#   sbatch --array=0-4,6-7,9-10 --nodes=1 SCRIPT" in text
    assert "#   sbatch --array=5,8,11 --nodes=2 SCRIPT" in text
    assert text.count("--mpi=pmix") == 2 * (n - 2)  # MPI steps (+ their meta), not the kernel
    assert "--device cuda" in text and "bench letkf --nx 200000" in text
    script = tmp_path / "array.sh"
    script.write_text(text)
    subprocess.run(["bash", "-n", str(script)], check=True)
    # the default sweep (every benchmark) for a 4-node CPU allocation
    full = render(["--nodes", "4", "--tasks-per-node", "32"])
    n = len(indices(full))
    assert f"#SBATCH --array=0-{n - 1}\n" in full and n > 40
    assert re.findall(r"--ntasks=(\d+) ", full) and \
        max(int(x) for x in re.findall(r"--ntasks=(\d+) ", full)) == 128
    assert "--gpus-per-node" not in full and "--device cpu" in full


@pytest.mark.parametrize("argv, message", [
    (["--partition", "a b"], "--partition"),
    (["--time", "25"], "--time"),
    (["--nodes", "0"], "--nodes"),
    (["--ranks", "1", "64", "--tasks-per-node", "8"], "64 ranks need 8 nodes"),
    (["--max-parallel", "-1"], "--max-parallel"),
    (["--set", "repeat=many"], "--set repeat=many"),
    (["--set", "sample_ranks=1000", "--only", "sample_strong"], "no benchmark configurations"),
])
def test_bad_resources_are_refused(argv, message):
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "bench_slurm_array.py"), *argv],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def fake_srun(tmp_path):
    """A stand-in for srun: drops its options and runs the command (one process)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text('#!/bin/bash\nwhile [[ "$1" == -* ]]; do shift; done\nexec "$@"\n')
    srun.chmod(0o755)
    return bin_dir


def test_array_tasks_write_results_that_collect_reads(tmp_path):
    results = tmp_path / "results dir"
    script = tmp_path / "array.sh"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "bench_slurm_array.py"),
                           "--nodes", "1", "--tasks-per-node", "2", "--results", str(results),
                           "--python", sys.executable, "--workdir", str(REPO), "--only",
                           "letkf_nx", "forecast_strong", "--set", "nx_list=48", "--set",
                           "forecast_nx=32", "--set", "forecast_steps=2", "--set", "repeat=1",
                           "--ranks", "1", "-o", str(script)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, PATH=f"{fake_srun(tmp_path)}{os.pathsep}{os.environ['PATH']}",
               SLURM_JOB_NUM_NODES="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))

    def task(i, **extra):
        return subprocess.run(["bash", str(script)], capture_output=True, text=True,
                              env=dict(env, SLURM_ARRAY_TASK_ID=str(i), **extra), timeout=120)

    for i in (0, 1):
        done = task(i)
        assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in results.iterdir())
    assert files == ["index_0000.jsonl", "index_0001.jsonl"]  # no .partial left
    meta, rec = (json.loads(x) for x in (results / "index_0000.jsonl").read_text().splitlines())
    assert meta["sweep"] == "letkf_nx" and meta["index"] == 0 and "load_1min" in meta
    assert "bench letkf --nx 48" in meta["command"] and rec["nx"] == 48
    bad = task(2)
    assert bad.returncode == 2 and "no configuration for index 2 (0-1)" in bad.stderr
    rows, _ = bench_suite.collect(results)
    assert [(r["sweep"], r["ranks"]) for r in rows] == [("letkf_nx", 1), ("forecast_strong", 1)]
    assert rows[1]["throughput"] > 0 and "srun --kill-on-bad-exit=1" in rows[1]["command"]


def test_index_needing_more_nodes_than_allocated_stops(tmp_path):
    text = render(["--nodes", "2", "--tasks-per-node", "2", "--python", sys.executable,
                   "--results", str(tmp_path / "r"), "--only", "letkf_strong",
                   "--ranks", "4"])
    script = tmp_path / "a.sh"
    script.write_text(text)
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="0", SLURM_JOB_NUM_NODES="1")
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 2
    assert "needs 2 node(s), the job has 1; submit it with --nodes=2" in proc.stderr
    assert not list((tmp_path / "r").glob("*.jsonl"))


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_unset_array_index_is_refused(tmp_path):
    script = tmp_path / "a.sh"
    script.write_text(render(["--python", sys.executable, "--results", str(tmp_path / "r")]))
    env = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode != 0 and "run this script with sbatch" in proc.stderr


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_array_on_a_real_slurm(slurm_env, tmp_path):
    """sbatch the array (kernel run + 1- and 2-rank parallel LETKF through srun + PMIx) and
    collect the results: the 2-rank index really ran on 2 MPI ranks."""
    results, script = tmp_path / "results", tmp_path / "array.sh"
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "bench_slurm_array.py"),
                           "--nodes", "1", "--tasks-per-node", "2", "--time", "00:05:00",
                           "--results", str(results), "--log-dir", str(tmp_path / "logs"),
                           "--workdir", str(REPO), "--python", sys.executable, *root,
                           "--only", "letkf_nx", "letkf_strong", "--ranks", "1", "2",
                           "--set", "nx_list=64", "--set", "strong_nx=64", "--set", "members=5",
                           "--set", "repeat=1", "-o", str(script)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    done = subprocess.run(["sbatch", "--parsable", "--wait", str(script)], capture_output=True,
                          text=True, env=slurm_env, timeout=540, cwd=tmp_path)
    logs = "".join(p.read_text() for p in sorted((tmp_path / "logs").glob("*.out")))
    assert done.returncode == 0, done.stderr + logs
    rows, records = bench_suite.collect(results)
    assert [(r["sweep"], r["ranks"]) for r in rows] == [
        ("letkf_nx", 1), ("letkf_strong", 1), ("letkf_strong", 2)]
    assert [r.get("ranks") for r in records[1:]] == [1, 2]  # what the benchmark itself saw
    assert records[2]["bytes_per_cycle"] == records[2]["bytes_per_cycle_measured"] > 0
