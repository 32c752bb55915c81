"""The pseudo-ensemble pattern (Generative EnKF's cycle with a stand-in sampler): sample per
member block, parallel LETKF, nudge the one simulation towards the analysis mean."""
from pathlib import Path

import numpy as np
import pytest

import pseudo_method
from assim_utils import TINY, analysis, genenkf, max_abs_diff
from genenkf_hpc import osse
from genenkf_hpc.config import load_config
from genenkf_hpc.da.letkf import letkf_analysis
from genenkf_hpc.dynamics import lorenz96
from genenkf_hpc.workflows.nature import nature_in_memory
from mpi_utils import run_mpi

HERE = Path(__file__).resolve().parent
OVERRIDES = ["osse.forcings=[8.0]", "osse.cycles=3", "osse.burn_in=0", "generative.members=5",
             "generative.alpha=0.5"]  # a partial nudging, which the hand computation follows


def test_cycle_by_hand(tmp_path):
    pseudo_method.install()
    assert genenkf("assimilate", "-c", TINY, "--method", "test_pseudo", "--out", tmp_path,
                   *OVERRIDES) == 0
    out = analysis(tmp_path)
    cfg = load_config(TINY, OVERRIDES)
    m, f = cfg.model, cfg.filter
    nature = nature_in_memory(cfg, 8.0)
    method = pseudo_method.NoisyPseudo(cfg)
    model = lorenz96.Lorenz96(m.nx, m.dt, m.forcing)
    x = osse.initial_ensemble([0], model, m.spinup_steps, cfg.osse.seed)[0]
    points, observed = np.arange(m.nx), np.flatnonzero(nature.mask)
    for cycle in (1, 2, 3):
        x = model.step(x)
        obs = nature.obs[cycle - 1]
        ens = method.sample_members(np.arange(5), cycle, x, obs[None])
        xa = letkf_analysis(ens, ens[:, observed], obs[observed], 1.0, points, observed, m.nx,
                            f.radius, taper=f.taper, inflation=f.inflation)
        assert np.allclose(out["analysis_mean"][cycle - 1], xa.mean(axis=0), atol=1e-12)
        assert np.allclose(out["analysis_spread"][cycle - 1], xa.std(axis=0, ddof=1), atol=1e-12)
        alpha = cfg.generative.alpha
        x = (1 - alpha) * x + alpha * xa.mean(axis=0)


@pytest.mark.mpi
def test_pseudo_ensemble_mpi_equals_serial(tmp_path):
    pseudo_method.install()
    args = ["assimilate", "-c", TINY, "--method", "test_pseudo", "osse.forcings=[8.0]",
            "generative.members=7", "model.nx=18"]
    assert genenkf(*args, "--out", tmp_path / "serial") == 0
    proc = run_mpi(3, ["python", HERE / "pseudo_method.py", *args, "--out", tmp_path / "mpi"])
    assert proc.returncode == 0, proc.stderr
    assert max_abs_diff(analysis(tmp_path / "serial"), analysis(tmp_path / "mpi")) <= 1e-10
