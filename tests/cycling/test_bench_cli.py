"""`genenkf bench letkf|forecast`: one JSON object per line with the measured figures and the
settings; under mpiexec per-rank figures, the total throughput and the transpose volume."""
import json

import pytest

from assim_utils import genenkf_subprocess
from mpi_utils import run_mpi


def _records(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def test_bench_forecast_serial():
    proc = genenkf_subprocess("bench", "forecast", "--nx", 64, "--members", 4, "--steps", 2,
                              "--repeat", 2)
    assert proc.returncode == 0, proc.stderr
    (r,) = _records(proc.stdout)
    assert r["bench"] == "forecast" and r["nx"] == 64 and r["members"] == 4
    assert r["member_steps_per_s"] > 0 and len(r["per_rank"]) == 1


def test_bench_letkf_parallel_mode_on_one_process():
    proc = genenkf_subprocess("bench", "letkf", "--mode", "parallel", "--nx", 64, "--members", 8,
                              "--radius", 3, "--repeat", 2)
    assert proc.returncode == 0, proc.stderr
    (r,) = _records(proc.stdout)
    assert r["grid_points_per_s"] > 0 and r["seconds_per_analysis"] > 0
    assert r["radius"] == 3.0 and r["ranks"] == 1 and r["bytes_per_cycle"] == 0


def test_bench_bad_target_and_values():
    proc = genenkf_subprocess("bench", "nosuch")
    assert proc.returncode == 2 and "invalid choice: 'nosuch'" in proc.stderr
    proc = genenkf_subprocess("bench", "letkf", "--members", 1)
    assert proc.returncode == 2 and "--members=1" in proc.stderr


@pytest.mark.mpi
def test_bench_under_mpi_reports_per_rank():
    proc = run_mpi(3, ["bench", "letkf", "--nx", 100, "--members", 7, "--radius", 4,
                       "--repeat", 2], timeout=120)
    assert proc.returncode == 0, proc.stderr
    (r,) = _records(proc.stdout)  # printed once, by rank 0
    assert r["mode"] == "parallel" and r["ranks"] == 3
    assert [p["points"] for p in r["per_rank"]] == [34, 33, 33]
    assert sum(p["members"] for p in r["per_rank"]) == 7
    assert r["bytes_per_cycle"] == r["volume"]["to_grid_bytes"] + r["volume"]["to_members_bytes"]
    assert r["bytes_per_cycle_measured"] == r["bytes_per_cycle"]  # counted in the Alltoallv calls
    proc = run_mpi(2, ["bench", "forecast", "--nx", 40, "--members", 5, "--steps", 2,
                       "--repeat", 2], timeout=120)
    assert proc.returncode == 0, proc.stderr
    (r,) = _records(proc.stdout)
    assert [p["members"] for p in r["per_rank"]] == [3, 2]


def test_bench_letkf_kernel_threads():
    proc = genenkf_subprocess("bench", "letkf", "--nx", 256, "--members", 16, "--threads", 2,
                              "--taper", "box", "--repeat", 1)
    assert proc.returncode == 0, proc.stderr
    (r,) = _records(proc.stdout)
    assert r["threads"] == 2 and r["solve"] == "observation" and r["local_obs"] == 9
    assert r["flops_per_point"] > 0 and r["grid_points_per_s"] > 0
    proc = genenkf_subprocess("bench", "letkf", "--threads", 0)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --threads=0: too small"


def test_bench_forecast_runs_any_dynamics():
    """The members start from the model's own random states: a model whose state is larger
    than its grid (two-scale Lorenz-96, K (J + 1) values) runs too."""
    proc = genenkf_subprocess("bench", "forecast", "--nx", 8, "--members", 3, "--steps", 2,
                              "--repeat", 1, 'model.dynamics="lorenz96_two_scale"',
                              "model.params={J=4}", "model.dt=0.005")
    assert proc.returncode == 0, proc.stderr
    (r,) = _records(proc.stdout)
    assert r["member_steps_per_s"] > 0 and r["nx"] == 8


@pytest.mark.mpi
@pytest.mark.parametrize("what, extra", [
    ("forecast", ["--steps", 2]),
    ("letkf", ["--radius", 4, "--obs-interval", 2]),
    ("sample", ["--steps", 3, "network.kind=local", "network.base_width=8",
                "network.blocks_per_level=1", "network.multipliers=[1, 2]",
                "generative.guidance=2.0", "generative.batch_members=2"]),
])
def test_bench_on_domains_counts_the_bytes_it_sends(what, extra):
    """--domains: every rank its segment; bytes sent equal the formula; peak RSS per rank."""
    proc = run_mpi(2, ["bench", what, "--nx", 400, "--members", 3, "--domains", 2,
                       "--repeat", 2, *extra], timeout=300)
    assert proc.returncode == 0, proc.stderr
    (r,) = _records(proc.stdout)
    assert r["layout"]["domains"] == 2 and r["ranks"] == 2
    assert [p["points"] for p in r["per_rank"]] == [200, 200]
    assert all(p["peak_rss_mb"] > 0 for p in r["per_rank"])
    measured = r.get("bytes_per_step_measured", r.get("bytes_per_cycle_measured"))
    formula = r.get("bytes_per_step_formula", r.get("bytes_per_cycle_formula"))
    assert measured == formula > 0


def test_bench_domains_refusals():
    proc = genenkf_subprocess("bench", "train", "--domains", 2)
    assert proc.returncode == 2 and "--domains=2: expected" in proc.stderr
    proc = genenkf_subprocess("bench", "sample", "--domains", 2, "--nx", 64, "--members", 2)
    assert proc.returncode == 2 and "run.domains=2: a whole-ring network" in proc.stderr
