"""tools/bench_suite.py (the benchmark sweeps) and tools/bench_model.py (the scaling model):
the sweep plan, the derived speedup/efficiency, the tables of a tiny real run whose recorded
commands reproduce the measurement, the collection of job-array results, and the model's
closed forms."""
import csv
import json
import math
import subprocess
import sys

import pytest

from mpi_utils import REPO

sys.path.insert(0, str(REPO / "tools"))
import bench_model  # noqa: E402
import bench_suite  # noqa: E402
from bench_suite import SWEEPS, Case, Settings, add_scaling, plan, row_from_record  # noqa: E402

from genenkf_hpc.cli import build_parser  # noqa: E402
from genenkf_hpc.da.bench import letkf_flops_per_point  # noqa: E402
from genenkf_hpc.da.letkf import observation_function_flops  # noqa: E402


def test_plan_covers_every_sweep_with_the_right_sizes():
    s = Settings()
    cases = plan(s)
    by = {name: [c for c in cases if c.sweep == name] for name in SWEEPS}
    assert all(by.values()), [n for n, v in by.items() if not v]

    def opt(case, flag):
        return case.args[case.args.index(flag) + 1]

    assert [int(opt(c, "--nx")) for c in by["letkf_nx"]] == list(s.nx_list)
    assert [int(opt(c, "--members")) for c in by["letkf_members"]] == list(s.members_list)
    assert all(not c.mpi and c.ranks == 1 and opt(c, "--mode") == "kernel"
               for c in by["letkf_nx"] + by["letkf_members"])
    assert [c.ranks for c in by["letkf_strong"]] == [1, 2, 3, 4]
    assert {int(opt(c, "--nx")) for c in by["letkf_strong"]} == {s.strong_nx}
    assert [int(opt(c, "--nx")) for c in by["letkf_weak"]] == [s.weak_nx * r for r in (1, 2, 3, 4)]
    assert [int(opt(c, "--members")) for c in by["forecast_weak"]] == [8, 16, 24, 32]
    assert [int(opt(c, "--members")) for c in by["sample_weak"]] == [8, 16, 24, 32]
    assert [c.ranks for c in by["train_strong"]] == [1, 2, 3]
    assert {opt(c, "--batch") for c in by["train_strong"]} == {str(s.train_batch)}
    assert [int(opt(c, "--batch")) for c in by["train_weak"]] == [16, 32, 48]
    assert all(c.mpi and opt(c, "--mode") == "parallel" for c in by["letkf_strong"])
    assert {c.scale for c in by["forecast_strong"]} == {"strong"}
    assert {c.scale for c in by["letkf_members"]} == {"size"}
    # every command is one the real `genenkf bench` parser accepts, as it is
    parser = build_parser("bench")
    for case in cases:
        args = parser.parse_args(case.bench_argv())
        assert args.what == case.bench


def test_plan_limits_and_errors():
    s = Settings(ranks=(4, 1, 2, 64), members=32, sample_members=8)
    cases = plan(s, ["forecast_strong", "sample_strong"])
    assert [c.ranks for c in cases if c.sweep == "forecast_strong"] == [1, 2, 4]  # <= members
    assert [c.ranks for c in cases if c.sweep == "sample_strong"] == [1, 2, 4]
    with pytest.raises(ValueError, match="nosuch"):
        plan(s, ["nosuch"])


def test_rows_speedup_and_efficiency():
    strong = [Case("forecast_strong", "forecast", r, (), True) for r in (1, 2, 4)]
    weak = [Case("train_weak", "train", r, (), True) for r in (1, 2)]
    rows = [row_from_record(c, {"nx": 10, "members": 8, "seconds": 1.0 / t,
                                "grid_point_steps_per_s": t})
            for c, t in zip(strong, (100.0, 180.0, 200.0))]
    rows += [row_from_record(c, {"global_batch": 16 * c.ranks, "steps_per_s": s,
                                 "samples_per_s": 16 * c.ranks * s})
             for c, s in zip(weak, (10.0, 8.0))]
    out = add_scaling(rows)
    assert [r["speedup"] for r in out[:3]] == pytest.approx([1.0, 1.8, 2.0])
    assert [r["efficiency"] for r in out[:3]] == pytest.approx([1.0, 0.9, 0.5])
    assert out[3]["throughput"] == 160.0 and out[4]["throughput"] == 256.0
    assert out[4]["efficiency"] == pytest.approx(256.0 / 2 / 160.0)  # (T_R / R) / T_1
    assert out[4]["seconds"] == pytest.approx(1 / 8.0)
    assert "speedup" not in rows[0]  # pure: the input rows are not modified
    kernel = row_from_record(Case("letkf_nx", "letkf", 1, (), False),
                             {"nx": 100, "members": 8, "seconds_per_analysis": 0.5,
                              "grid_points_per_s": 200.0, "flops_per_point": 1e6,
                              "local_obs": 9, "threads": 2})
    assert kernel["gflops"] == pytest.approx(0.2) and kernel["scale"] == "size"


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_tiny_run_writes_tables_and_reproducible_commands(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "bench_suite.py"), "--only",
                           "letkf_nx", "letkf_members", "--nx-list", "40", "80",
                           "--members-list", "4", "8", "--set", "members_nx=40",
                           "--repeat", "1", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = _read_csv(out / "results.csv")
    assert [(r["sweep"], r["nx"], r["members"]) for r in rows] == [
        ("letkf_nx", "40", "32"), ("letkf_nx", "80", "32"),
        ("letkf_members", "40", "4"), ("letkf_members", "40", "8")]
    assert all(float(r["throughput"]) > 0 and r["error"] == "" for r in rows)
    assert all(float(r["gflops"]) > 0 and r["local_obs"] == "9" for r in rows)
    assert _read_csv(out / "size.csv") == rows
    for name in ("size.png", "summary.md", "machine.json", "records.jsonl"):
        assert (out / name).stat().st_size > 0, name
    info = json.loads((out / "machine.json").read_text())
    assert info["usable_cores"] >= 1 and info["matmul_gflops_1_threads"] > 0
    assert "load_average" in info and "matmul_command_1_threads" in info
    # the recorded command, typed in the repository root, measures the same configuration
    again = subprocess.run(rows[1]["command"], shell=True, capture_output=True, text=True,
                           cwd=REPO, timeout=120)
    assert again.returncode == 0, again.stderr
    rec = json.loads(again.stdout.strip().splitlines()[-1])
    assert (rec["nx"], rec["members"], rec["taper"], rec["local_obs"]) == (80, 32, "box", 9)


@pytest.mark.mpi
def test_tiny_rank_sweep_under_mpi(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "bench_suite.py"), "--only",
                           "letkf_strong", "--ranks", "1", "2", "--set", "strong_nx=60",
                           "--set", "members=5", "--repeat", "1", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = _read_csv(out / "strong.csv")
    assert [r["ranks"] for r in rows] == ["1", "2"]
    assert rows[0]["bytes_per_cycle"] == "0" and int(rows[1]["bytes_per_cycle"]) > 0
    assert float(rows[0]["speedup"]) == 1.0 and float(rows[1]["speedup"]) > 0
    assert "mpiexec -n 2" in rows[1]["command"] and "--mode parallel" in rows[1]["command"]
    assert (out / "scaling.png").stat().st_size > 0


def test_collect_job_array_results(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for i, (ranks, thr) in enumerate(((1, 50.0), (2, 90.0))):
        meta = {"index": i, "sweep": "sample_strong", "bench": "sample", "ranks": ranks,
                "mpi": True, "nodes": 1, "threads": 1, "command": f"srun -n {ranks} ...",
                "load_1min": 0.5}
        rec = {"bench": "sample", "members_per_s": thr, "seconds_per_ensemble": 32 / thr,
               "members": 32, "nx": 40, "torch_threads": 1}
        (results / f"index_{i:04d}.jsonl").write_text(json.dumps(meta) + "\n"
                                                      + json.dumps(rec) + "\n")
    (results / "index_0002.jsonl.partial").write_text("{}\n")  # an unfinished index
    meta = {"index": 3, "sweep": "train_strong", "bench": "train", "ranks": 4, "mpi": True}
    (results / "index_0003.jsonl").write_text(json.dumps(meta) + "\n")  # a failed one
    rows, records = bench_suite.collect(results)
    assert [r["ranks"] for r in rows] == [1, 2, 4] and len(records) == 2
    assert "no JSON record" in rows[2]["error"]
    out = tmp_path / "tables"
    bench_suite.write_tables(rows, records, out, {"collected_from": str(results)})
    table = _read_csv(out / "strong.csv")
    assert [float(r["speedup"]) for r in table[:2]] == pytest.approx([1.0, 1.8])
    assert table[1]["command"] == "srun -n 2 ..." and table[1]["load_1min"] == "0.5"


def _machine(**kw):
    base = dict(nodes=10, cores_per_node=8, ranks_per_node=8, bandwidth=1e10, latency=1e-6,
                letkf_flops=2e9, forecast_rate=1e7)
    base.update(kw)
    return bench_model.Machine(**base)


def test_model_flops_and_layouts():
    prob = bench_model.Problem(nx=8_000_000, members=32, local_obs=9)
    obs_space = letkf_flops_per_point(32, 9, "observation", observation_function_flops(9, 4.5))
    assert prob.flops_per_point == obs_space < letkf_flops_per_point(32, 9, "ensemble")
    assert bench_model.Problem(1000, 32, 500).flops_per_point == 2 * 32 * 32 * 500 + 9 * 32**3 \
        + 2 * 500 * 32 + 6 * 32 * 32 + 12 * 32
    mach = _machine()
    block, cyclic, two, dom = (bench_model.cycle(prob, mach, lay) for lay in bench_model.LAYOUTS)
    # 80 ranks, 32 members: the member owners fill the first 4 nodes (block) or 4 per node
    sent = 8 * 1 * (prob.nx + 80 * prob.halo)
    assert block["node_bytes"] == 2 * 8 * sent and cyclic["node_bytes"] == 2 * 4 * sent
    assert block["forecast_s"] == pytest.approx(prob.nx / 1e7)  # one member per owner rank
    assert block["analysis_s"] == pytest.approx(100_000 * obs_space / 2e9)
    assert block["latency_s"] == pytest.approx(2 * 79 * 1e-6)
    # 2-D: P = 32 x 2 ranks used (16 idle), k - 1 messages, a subdomain of N / 2 per rank
    assert two["ranks"] == 64 and two["latency_s"] == pytest.approx(2 * 31 * 1e-6)
    assert two["forecast_s"] == pytest.approx(prob.nx / 2 / 1e7)
    # domains: all 32 members of 100,000 points per rank, 2 neighbours per exchange, no
    # transpose: 4 stages x 3 ghost points + the 8 observed halo points, per member
    assert dom["forecast_s"] == pytest.approx(32 * 100_000 / 1e7)
    assert dom["analysis_s"] == pytest.approx(block["analysis_s"])
    assert dom["node_bytes"] == 8 * 8 * 32 * (4 * 3 + 8)
    assert dom["latency_s"] == pytest.approx(2 * 5 * 1e-6)
    g = bench_model.sampling(prob, mach, evaluations=3, rate=1e5, tile_halo=20)
    assert g["sampling_s"] == pytest.approx(32 * 3 * 100_040 / 1e5)
    assert g["node_bytes"] == 8 * 3 * 32 * 40 * 4
    with pytest.raises(ValueError):
        bench_model.cycle(prob, mach, "3d")


def test_model_closed_forms_agree_with_the_cycle():
    prob = bench_model.Problem(nx=10**12, members=64, local_obs=9, halo=0)
    mach = _machine(nodes=100, cores_per_node=64, ranks_per_node=64)
    two = bench_model.cycle(prob, mach, "2d")
    ratio = bench_model.bandwidth_ratio_2d(prob, mach)
    assert two["bandwidth_s"] / two["analysis_s"] == pytest.approx(ratio * 63 / 64, rel=1e-3)
    p_star = bench_model.latency_crossover(prob, mach)
    nodes = max(1, round(p_star / 64))
    at = bench_model.cycle(prob, _machine(nodes=nodes, cores_per_node=64, ranks_per_node=64),
                           "1d-cyclic")
    assert at["latency_s"] / at["analysis_s"] == pytest.approx(1.0, rel=0.05)
    assert math.isfinite(p_star) and p_star > 0


def test_model_rates_from_a_results_csv(tmp_path):
    path = tmp_path / "results.csv"
    rows = [{"sweep": "letkf_strong", "ranks": 2, "members": 32, "throughput": 5e4},
            {"sweep": "letkf_strong", "ranks": 1, "members": 32, "throughput": 1e5},
            {"sweep": "forecast_strong", "ranks": 1, "members": 32, "throughput": 2e7}]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(bench_suite.COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    flops, forecast = bench_model.rates_from_csv(path)
    per_point = bench_model.Problem(0, 32, 9).flops_per_point
    assert flops == pytest.approx(1e5 * per_point) and forecast == 2e7  # one rank, p = 9
