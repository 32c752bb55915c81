"""tools/gpu_check.sh, the one-command GPU acceptance: without CUDA one `error:` line and exit
2; with GENENKF_GPU_CHECK_DEVICE=cpu the same steps run on the CPU with gloo (a smoke test of
the script's logic: every step runs, every line is JSON, the criteria hold)."""
import json
import os
import subprocess

import pytest

from testpaths import REPO

SCRIPT = REPO / "tools" / "gpu_check.sh"


def run(env_extra, *args, timeout=60):
    env = {k: v for k, v in os.environ.items() if k != "GENENKF_GPU_CHECK_DEVICE"}
    env.update(OMP_NUM_THREADS="1", **env_extra)
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=timeout)


def test_without_cuda_one_error_line_and_exit_2(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = run({}, "--out", tmp_path / "gc")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: no CUDA GPU is visible") and \
        len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "GENENKF_GPU_CHECK_DEVICE=cpu" in proc.stderr
    proc = run({"GENENKF_GPU_CHECK_DEVICE": "tpu"})
    assert proc.returncode == 2 and "GENENKF_GPU_CHECK_DEVICE='tpu'" in proc.stderr


@pytest.mark.slow
@pytest.mark.mpi  # torchrun with 2 processes
def test_cpu_smoke_run_of_every_step(tmp_path):
    proc = run({"GENENKF_GPU_CHECK_DEVICE": "cpu"}, "--out", tmp_path / "gc", timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    checks = [(r["check"], r.get("precision")) for r in lines]
    assert checks == [("environment", None), ("train", "fp32"), ("train", "bf16"),
                      ("assimilate", "float32"), ("assimilate", "float64"),
                      ("bench_sample", "float32"), ("bench_train", None), ("bench_train", None),
                      ("summary", None)]
    assert all(r["ok"] for r in lines), lines
    by = {(r["check"], r.get("precision"), r.get("bf16")): r for r in lines}
    for precision in ("fp32", "bf16"):
        train = by["train", precision, precision == "bf16"]
        assert train["backend"] == "gloo" and train["ranks"] == 2 and train["steps"] == 3
    assert by["assimilate", "float64", None]["max_abs_diff_analysis_mean"] == 0.0
    sample = by["bench_sample", "float32", None]
    assert sample["members_per_s"] > 0 and sample["network_evaluations_per_s"] > 0
    assert lines[-1]["seconds"] <= lines[-1]["budget_seconds"]
    assert (tmp_path / "gc" / "train_bf16.log").is_file()
