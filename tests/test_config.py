import pytest

from genenkf_hpc.config import (SECTIONS, Config, load_config, parse_override, read_toml,
                                to_toml)
from genenkf_hpc.errors import UserError

from testpaths import CONFIGS


def test_defaults_are_valid_and_round_trip(tmp_path):
    cfg = Config()
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize("name", ["tiny", "l96_standard", "demo", "paper"])
def test_shipped_configs_load_and_round_trip(tmp_path, name):
    path = CONFIGS / f"{name}.toml"
    if not path.exists():
        pytest.skip(f"{path.name} not shipped yet")
    cfg = load_config(path)
    again = tmp_path / "again.toml"
    again.write_text(to_toml(cfg))
    assert load_config(again) == cfg


def test_contract_override_keys_exist():
    keys = ["model.nx", "model.forcing", "osse.forcings", "osse.cycles", "osse.obs_interval",
            "osse.obs_sigma", "osse.seed", "filter.members", "filter.radius", "filter.inflation",
            "train.steps", "train.batch_size"]
    for key in keys:
        section, name = key.split(".")
        assert hasattr(Config(), section) and hasattr(getattr(Config(), section), name), key


def test_overrides_parse_toml_values_else_strings():
    assert parse_override("osse.forcings=[5, 6.5]") == ("osse", "forcings", [5, 6.5])
    assert parse_override("filter.taper=box") == ("filter", "taper", "box")
    assert parse_override("run.progress=false") == ("run", "progress", False)
    cfg = load_config(None, ["osse.forcings=[5, 6]", "filter.members=8", "model.forcing=9"])
    assert cfg.osse.forcings == [5.0, 6.0] and cfg.filter.members == 8
    assert isinstance(cfg.model.forcing, float)


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[filter]\nmembers = 10\nradius = 2.0\n")
    cfg = load_config(path, ["filter.members=12"])
    assert cfg.filter.members == 12 and cfg.filter.radius == 2.0


@pytest.mark.parametrize("overrides, fragment", [
    (["bogus.key=1"], "unknown config section [bogus]"),
    (["filter.bogus=1"], "unknown config key filter.bogus"),
    (["filter.members=many"], "filter.members='many': expected an integer"),
    (["filter.members=1.5"], "filter.members=1.5: expected an integer"),
    (["filter.members=1"], "filter.members=1: must be >= 2"),
    (["filter.inflation=0.9"], "filter.inflation=0.9: must be >= 1"),
    (["filter.taper=hat"], "filter.taper='hat': expected one of box, gaspari_cohn"),
    (["osse.obs_sigma=0"], "osse.obs_sigma=0.0: must be > 0"),
    (["osse.forcings=8"], "osse.forcings=8: expected a list"),
    (["osse.forcings=[]"], "osse.forcings=[]"),
    (["osse.forcings=[8, 8]"], "values must be distinct"),
    (["osse.obs_interval=41"], "osse.obs_interval=41: must be <= model.nx=40"),
    (["model.nx=3"], "model.nx=3: must be >= 4"),
    (["run.progress=1"], "run.progress=1: expected true or false"),
    (["osse.burn_in=2000"], "osse.burn_in=2000: must be < osse.cycles=1000"),
    (["nokey"], "expected section.key=value"),
    (["model.dt=inf"], "expected a finite number"),
])
def test_bad_configs_raise_user_error_naming_the_key(overrides, fragment):
    with pytest.raises(UserError) as info:
        load_config(None, overrides)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[filter\nmembers = ")
    with pytest.raises(UserError, match="not valid TOML"):
        read_toml(bad)


def test_every_section_is_in_config():
    assert set(SECTIONS) == set(Config().to_dict())


def test_checkpoint_in_a_config_file_is_relative_to_the_file(tmp_path, monkeypatch):
    """CONTRACT section 7: shipped configs name their model relative to themselves; a path
    given on the command line stays relative to the working directory."""
    from genenkf_hpc.config import load_config

    (tmp_path / "configs").mkdir()
    path = tmp_path / "configs" / "c.toml"
    path.write_text('[generative]\ncheckpoint = "../models/m.pt"\n')
    monkeypatch.chdir(tmp_path / "configs")
    assert load_config(path).generative.checkpoint == str(tmp_path / "models" / "m.pt")
    assert load_config(path, ["generative.checkpoint=x.pt"]).generative.checkpoint == "x.pt"
    path.write_text('[generative]\ncheckpoint = "/abs/m.pt"\n')
    assert load_config(path).generative.checkpoint == "/abs/m.pt"
    assert load_config(None).generative.checkpoint == ""


def test_a_campaign_entry_names_its_own_model_relative_to_the_config(tmp_path):
    """A variant's generative.checkpoint in campaign.method_overrides is a path like the
    [generative] one: relative to the config file (CONTRACT section 7)."""
    (tmp_path / "configs").mkdir()
    path = tmp_path / "configs" / "c.toml"
    path.write_text('[campaign]\nvariants = ["other:genenkf"]\nmethod_overrides = '
                    '[\'other:generative.checkpoint="../models/m.pt"\', '
                    '"other:generative.members=4"]\n')
    cfg = load_config(path)
    assert cfg.campaign.method_overrides == [
        f'other:generative.checkpoint="{tmp_path / "models" / "m.pt"}"',
        "other:generative.members=4"]
