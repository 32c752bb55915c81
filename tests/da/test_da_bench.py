"""The LETKF benchmark function returns the documented record (tiny sizes)."""
from genenkf_hpc.da.bench import bench_letkf, bench_matmul, letkf_flops_per_point


def test_bench_letkf_record():
    out = bench_letkf(nx=64, members=8, radius=4.0, repeats=2, threads=1)
    for key in ("benchmark", "nx", "members", "radius", "taper", "obs_interval", "local_obs",
                "solve", "seconds_per_analysis", "grid_points_per_s", "flops_per_point"):
        assert key in out
    assert out["benchmark"] == "letkf" and out["taper"] == "box" and out["local_obs"] == 9
    assert out["solve"] == "ensemble"  # 9 local obs >= 8 members
    assert out["seconds_per_analysis"] > 0 and out["grid_points_per_s"] > 0
    out = bench_letkf(nx=64, members=16, radius=4.0, taper="gaspari_cohn", obs_interval=2,
                      repeats=1, threads=2)
    assert out["local_obs"] == 4 and out["solve"] == "observation"
    # the functions of B are counted: the flops exceed those of everything else
    assert out["flops_per_point"] > 2 * letkf_flops_per_point(16, 4, "observation", 0)


def test_flop_counts_grow_as_expected():
    assert letkf_flops_per_point(32, 9, "ensemble") > letkf_flops_per_point(32, 9, "observation",
                                                                             20_000)
    assert letkf_flops_per_point(32, 9, "observation", 13) > letkf_flops_per_point(32, 9,
                                                                                  "observation", 12)
    assert bench_matmul(size=64, repeats=1)["gflops"] > 0
