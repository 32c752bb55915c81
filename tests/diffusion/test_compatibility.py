"""A model must fit its experiment (issue 12, defect 4; CONTRACT section 7): every key of the
requirement table stops a run that differs, naming the key and both values; the shipped model
(an older checkpoint without the newer records) fits the paper experiment through fallbacks."""
import copy

import numpy as np
import pytest
import torch

from genenkf_hpc import osse
from genenkf_hpc.config import load_config
from genenkf_hpc.diffusion import compatibility as compat
from genenkf_hpc.errors import UserError

from testpaths import CONFIGS, REPO

SHIPPED = REPO / "models" / "l96_paper_small.pt"
PAPER = CONFIGS / "paper.toml"


@pytest.fixture(scope="module")
def shipped():
    """The shipped checkpoint's records (no weights needed) as checkpoints before the newer
    records were written: no obs mask, no dataset interval, source or dynamics."""
    ckpt = torch.load(SHIPPED, weights_only=True)
    old = copy.deepcopy({k: ckpt[k] for k in ("arch", "obs", "dataset", "step")})
    old["obs"].pop("mask", None)
    old["obs"].pop("lag", None)
    for key in ("interval", "source", "dynamics"):
        old["dataset"].pop(key, None)
    return old


@pytest.fixture(scope="module")
def recorded(shipped):
    """The same model as `genenkf train` records it now."""
    ckpt = copy.deepcopy(shipped)
    ckpt["obs"]["mask"] = list(range(0, 40, 2))
    ckpt["dataset"].update(interval=0.05, source="model", dynamics="lorenz96")
    return ckpt


def experiment(*overrides, mask=None, forcing_nature=10.0):
    """The paper experiment in posterior mode (the mode of models/l96_paper_small.pt)."""
    cfg = load_config(PAPER, ['generative.mode="posterior"', *overrides])
    if mask is None:
        mask = osse.obs_mask(cfg.model.nx, cfg.osse.obs_interval)
    return compat.Experiment(cfg, mask, forcing_nature)


def refusal(ckpt, exp, allow=()):
    with pytest.raises(UserError) as info:
        compat.check(ckpt, exp, list(allow), "models/m.pt")
    text = str(info.value)
    assert "\n" not in text and "models/m.pt" in text
    return text


def test_the_shipped_model_fits_the_paper_experiment(shipped, recorded):
    for ckpt in (shipped, recorded):
        assert compat.mismatches(ckpt, experiment()) == []
        assert compat.check(ckpt, experiment(), [], "m.pt") == []


def test_old_checkpoints_are_read_through_fallbacks(shipped):
    values = {r.key: r.model(shipped) for r in compat.REQUIREMENTS if r.applies(shipped)}
    assert values["obs_mask"] == tuple(range(0, 40, 2))
    assert values["history_interval"] == 0.05  # consecutive model steps
    assert values["dynamics"] == "lorenz96" and values["forcing"] == 8.0
    assert compat.training_source(shipped) == "model"


@pytest.mark.parametrize("key, overrides, model_value, experiment_value", [
    ("nx", ["model.nx=20"], "model 40", "experiment 20 (model.nx)"),
    ("obs_interval", ["osse.obs_interval=4"], "model 2", "experiment 4 (osse.obs_interval)"),
    ("obs_sigma", ["osse.obs_sigma=0.5"], "model 1", "experiment 0.5 (osse.obs_sigma)"),
    ("obs_lag", ['generative.mode="prior"'], "model 0 (posterior mode)",
     "experiment 1 (prior mode) (generative.mode)"),
    ("dt", ["model.dt=0.01", "osse.steps_per_cycle=5"], "model 0.05", "experiment 0.01"),
    ("history_interval", ["osse.steps_per_cycle=2"], "model 0.05", "experiment 0.1"),
    ("forcing", ["model.forcing=9.0"], "model 8", "experiment 9 (model.forcing)"),
    ("dynamics", ['model.dynamics="lorenz96_two_scale"'], "model lorenz96",
     "experiment lorenz96_two_scale (model.dynamics)"),
])
def test_each_mismatch_is_refused_naming_key_and_values(recorded, key, overrides, model_value,
                                                        experiment_value):
    text = refusal(recorded, experiment(*overrides))
    assert f"{key}: {model_value}, {experiment_value}" in text, text
    assert f'"{key}"' in text.split("generative.allow_mismatch = ")[1]


def test_observed_points_must_be_the_same_not_only_their_number(recorded):
    odd = np.zeros(40, dtype=bool)
    odd[1::2] = True  # every 2nd point, as trained, but the other half of the ring
    text = refusal(recorded, experiment(mask=odd))
    assert "obs_mask: model [0, 2, 4, ..., 36, 38] (20 points), experiment [1, 3, 5, ..., " \
           "37, 39] (20 points)" in text


def test_history_spacing_matters_only_with_a_history(recorded):
    one_row = copy.deepcopy(recorded)
    one_row["arch"]["seq_len"] = 1
    assert compat.mismatches(one_row, experiment("osse.steps_per_cycle=2")) == []
    assert [m.key for m in compat.mismatches(recorded, experiment("osse.steps_per_cycle=2"))] \
        == ["history_interval"]


def test_a_reanalysis_trained_model_must_fit_the_nature_run(recorded):
    """dataset.source = "nature": the network learnt the truth's F (here 10), not the model's."""
    nature = copy.deepcopy(recorded)
    nature["dataset"].update(source="nature", forcing=10.0)
    assert compat.mismatches(nature, experiment(forcing_nature=10.0)) == []
    text = refusal(nature, experiment(forcing_nature=11.0))
    assert "forcing: model 10, experiment 11 (F_nature of the run)" in text
    text = refusal(nature, experiment('nature.dynamics="lorenz96_two_scale"', "nature.dt=0.005"))
    assert "dynamics: model lorenz96, experiment lorenz96_two_scale (nature.dynamics)" in text


def test_allowed_mismatches_pass_and_are_returned(recorded):
    exp = experiment("osse.obs_sigma=0.5", "model.forcing=9.0")
    text = refusal(recorded, exp, allow=["obs_sigma"])
    assert "forcing:" in text and "obs_sigma:" not in text
    accepted = compat.check(recorded, exp, ["obs_sigma", "forcing"], "m.pt")
    assert [m.to_dict() for m in accepted] == [
        {"key": "obs_sigma", "model": 1.0, "experiment": 0.5, "where": "osse.obs_sigma"},
        {"key": "forcing", "model": 8.0, "experiment": 9.0, "where": "model.forcing"}]


def test_unknown_allow_mismatch_names_are_refused_listing_the_valid_ones():
    with pytest.raises(UserError, match="'sigma'.*valid keys: nx, obs_interval, obs_sigma"):
        load_config(PAPER, ['generative.allow_mismatch=["sigma"]'])


def test_a_checkpoint_of_something_else_is_named(recorded):
    broken = copy.deepcopy(recorded)
    del broken["dataset"]
    with pytest.raises(UserError, match="m.pt: not a genenkf train checkpoint"):
        compat.check(broken, experiment(), [], "m.pt")


def test_a_local_network_fits_any_ring_with_its_observation_pattern():
    """A local network (receptive field recorded) is not tied to its training ring: nx is
    the grid check's (networks.check_grid); the observations must follow its pattern."""
    ckpt = torch.load(REPO / "models" / "l96_local.pt", weights_only=True)
    ckpt = {k: ckpt[k] for k in ("arch", "obs", "dataset", "step", "receptive_field")}
    ring = int(ckpt["dataset"]["nx"]) * 4
    exp = experiment(f"model.nx={ring}", "generative.mode=posterior")
    assert [m.key for m in compat.mismatches(ckpt, exp)] == []
    every_4th = experiment(f"model.nx={ring}", "generative.mode=posterior",
                           mask=osse.obs_mask(ring, 4))
    text = refusal(ckpt, every_4th)
    assert ("obs_mask: model every 2-th point from 0, experiment every 4-th point from 0"
            in text)
