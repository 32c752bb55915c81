"""Runs on domains (run.domains, ranks = member groups x domains) give one-process results:
noda/nudging bit for bit, the LETKF/ETKF/EnKF to 1e-10 over 10 cycles, the Generative EnKF with
a local network in float64 to 1e-10; restarts move between layouts; bad layouts are refused."""
import os

import pytest

from assim_utils import (TINY, analysis, assert_user_error, genenkf, genenkf_subprocess,
                         identical, max_abs_diff, summary)
from mpi_utils import REPO, run_mpi

SHORT = ["osse.forcings=[8.0]", "osse.cycles=10", "osse.burn_in=2", "run.progress=false"]

CASES = [
    # (method, ranks, domains, overrides, analysis path)
    ("noda", 2, 2, ["model.nx=18"], "halo"),
    ("nudging", 3, 3, [], "halo"),                                      # segments 6, 5, 5
    ("noda", 3, 3, ["model.nx=5", "osse.obs_interval=1"], "halo"),     # 2, 2, 1 < the halo
    ("letkf", 2, 2, [], "halo"),
    ("letkf", 3, 3, ["filter.members=7", "model.nx=18"], "halo"),
    ("letkf", 4, 2, ["filter.members=7"], "halo+transpose"),          # 2 groups x 2 domains
    ("etkf", 3, 3, [], "halo"),
    ("enkf", 2, 2, [], "halo"),
    ("letkf", 2, 1, [], "transpose"),                                   # the member layout
    ("letkf_paramest", 2, 2, ["osse.forcings=[9.0]"], "halo"),         # a global parameter
    ("letkf", 4, 2, ["filter.additive=0.3"], "halo+transpose"),        # additive inflation
]


@pytest.mark.mpi
@pytest.mark.parametrize("method, ranks, domains, overrides, path", CASES,
                         ids=[f"{m}-n{r}-d{d}-{'-'.join(o) or 'tiny'}"
                              for m, r, d, o, _ in CASES])
def test_domains_equal_one_process(tmp_path, method, ranks, domains, overrides, path):
    args = ["assimilate", "-c", TINY, "--method", method, *SHORT, *overrides]
    assert genenkf(*args, "--out", tmp_path / "one") == 0
    proc = run_mpi(ranks, [*args, f"run.domains={domains}", "--out", tmp_path / "many"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    one, many = analysis(tmp_path / "one"), analysis(tmp_path / "many")
    if method in ("noda", "nudging"):
        assert identical(one, many)  # no reduction anywhere: bit for bit
    else:
        assert max_abs_diff(one, many) <= 1e-10
    layout = summary(tmp_path / "many")["layout"]
    assert (layout["domains"], layout["member_groups"], layout["analysis"]) == \
        (domains, ranks // domains, path)
    assert summary(tmp_path / "one")["layout"]["analysis"] == "transpose"


@pytest.mark.mpi
@pytest.mark.parametrize("method", ["noda", "letkf"])
def test_a_user_model_with_a_wide_halo_on_domains(tmp_path, method):
    """Any dynamics declares its halo: Lorenz (2005) model II with K = 8 (docs/examples, 20
    ghost points left, 12 right) on 3 domains of 16 points, shorter than its halo."""
    examples = REPO / "docs" / "examples"
    path = os.pathsep.join([str(REPO), str(examples)])
    args = ["assimilate", "-c", examples / "lorenz05.toml", "--method", method, "model.nx=48",
            "model.spinup_steps=100", "osse.cycles=6", "osse.burn_in=1", "filter.radius=8.0",
            "run.progress=false"]
    one = genenkf_subprocess(*args, "--out", tmp_path / "one",
                             env={**os.environ, "PYTHONPATH": path})
    assert one.returncode == 0, one.stderr
    proc = run_mpi(3, [*args, "run.domains=3", "--out", tmp_path / "many"],
                   env={"PYTHONPATH": path})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    one, many = analysis(tmp_path / "one"), analysis(tmp_path / "many")
    assert identical(one, many) if method == "noda" else max_abs_diff(one, many) <= 1e-10


LOCAL = ["model.nx=48", "generative.precision=float64", "generative.members=5",
         "osse.cycles=6", "osse.burn_in=1", "osse.forcings=[9.0]", "run.progress=false"]


@pytest.mark.mpi
@pytest.mark.parametrize("ranks, domains, extra", [
    (2, 2, []),                                                    # DDIB
    pytest.param(3, 3, ["generative.encoding=sdedit", "generative.batch_members=2"],
                 marks=pytest.mark.slow),                          # segments of 16
    pytest.param(4, 2, ["generative.recentre=true"],
                 marks=pytest.mark.slow),                          # 2 member groups x 2 domains
])
def test_genenkf_with_a_local_network_on_domains(tmp_path, tiny_local_model, ranks, domains,
                                                 extra):
    args = ["assimilate", "-c", TINY, "--method", "genenkf", "--model", tiny_local_model,
            *LOCAL, *extra]
    assert genenkf(*args, "--out", tmp_path / "one") == 0
    proc = run_mpi(ranks, [*args, f"run.domains={domains}", "--out", tmp_path / "many"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    diff = max_abs_diff(analysis(tmp_path / "one"), analysis(tmp_path / "many"))
    assert diff <= 1e-10, diff
    assert summary(tmp_path / "many")["layout"]["domains"] == domains
    assert summary(tmp_path / "one")["spread"] > 0


def test_a_local_network_runs_on_another_ring(tmp_path, tiny_local_model):
    """Trained on 48 points, it samples a ring of 64 (any multiple of its factor >= 40)."""
    args = ["assimilate", "-c", TINY, "--method", "genenkf", "--model", tiny_local_model,
            *LOCAL, "model.nx=64", "--out", tmp_path]
    assert genenkf(*args) == 0
    assert analysis(tmp_path)["analysis_mean"].shape == (6, 64)


@pytest.mark.parametrize("nx, fragment", [
    (47, "model.nx=47 is not a multiple of the downsampling factor 2"),
    (32, "model.nx=32 is smaller than the receptive field of 40 points"),
])
def test_rings_a_local_network_cannot_sample(tmp_path, tiny_local_model, nx, fragment):
    proc = genenkf_subprocess("assimilate", "-c", TINY, "--method", "genenkf", "--model",
                              tiny_local_model, *LOCAL, f"model.nx={nx}", "--out", tmp_path)
    assert_user_error(proc, fragment)


@pytest.mark.parametrize("method, extra, fragment", [
    ("gaussian_pseudo", [], "run.domains=2: gaussian_pseudo draws from a dense"),
    ("genenkf", ["--model", "UNET"], "run.domains=2: model"),
    ("letkf", [], "run.domains=2 does not divide the 1 ranks"),
    ("letkf", ["run.domains=three"], "run.domains='three': expected \"auto\" or an integer"),
])
def test_layouts_that_cannot_run(tmp_path, tiny_model, method, extra, fragment):
    extra = [str(tiny_model) if a == "UNET" else a for a in extra]
    proc = genenkf_subprocess("assimilate", "-c", TINY, "--method", method, *SHORT,
                              "run.domains=2", *extra, "--out", tmp_path)
    assert_user_error(proc, fragment)
    if method == "genenkf":
        assert "whole-ring network" in proc.stderr


@pytest.mark.slow
@pytest.mark.mpi
def test_restart_on_domains_resumes_on_another_layout(tmp_path):
    """Killed on 3 domains after a restart, resumed on 2: the analysis of one process."""
    args = ["assimilate", "-c", TINY, "--method", "letkf", *SHORT, "osse.cycles=14",
            "run.checkpoint_every=5"]
    assert genenkf(*args, "--out", tmp_path / "one") == 0
    out = tmp_path / "run"
    failed = run_mpi(3, [*args, "run.domains=3", "--out", out],
                     env={"GENENKF_FAIL_AT_CYCLE": "1:12"})
    assert failed.returncode != 0 and list((out / "restart").glob("restart_*.npz"))
    resumed = run_mpi(2, [*args, "run.domains=2", "--out", out, "--resume"])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert max_abs_diff(analysis(tmp_path / "one"), analysis(out)) <= 1e-10
