"""Self-describing outputs: ``xarray.open_dataset`` of nature.nc, analysis.nc and a dataset shard
shows ``long_name`` and ``units`` on every variable and coordinate, and the file alone tells how
it was made (the resolved config as TOML text and the package version)."""
import pytest
import xarray as xr

from genenkf_hpc import __version__
from genenkf_hpc.cli import main
from genenkf_hpc.config import config_from_dict, tomllib

from testpaths import CONFIGS

TINY = str(CONFIGS / "tiny.toml")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    small = ["osse.forcings=[8.0]", "dataset.trajectories=3", "dataset.steps=10",
             "dataset.val_fraction=0.0", "dataset.test_fraction=0.0"]
    for command, extra in (("nature", []), ("assimilate", ["--method", "letkf"]),
                           ("dataset", [])):
        assert main([command, "-c", TINY, *small, *extra, "--out", str(root / command)]) == 0
    return {"nature.nc": root / "nature" / "nature.nc",
            "analysis.nc": root / "assimilate" / "analysis.nc",
            "shard": root / "dataset" / "shard_00000.h5"}


@pytest.mark.parametrize("name", ["nature.nc", "analysis.nc", "shard"])
def test_every_variable_and_coordinate_has_long_name_and_units(outputs, name):
    with xr.open_dataset(outputs[name]) as ds:
        assert ds.data_vars and ds.coords
        for var in ds.variables:
            attrs = ds[var].attrs
            assert attrs.get("long_name") and attrs.get("units"), (name, var, attrs)
        # labelled plots: the axis label is built from long_name and units
        field = "states" if name == "shard" else "truth"
        assert "[1]" in xr.plot.utils.label_from_attrs(ds[field])


@pytest.mark.parametrize("name", ["nature.nc", "analysis.nc", "shard"])
def test_the_file_tells_how_it_was_made(outputs, name):
    with xr.open_dataset(outputs[name]) as ds:
        assert ds.attrs["genenkf_version"] == __version__
        assert ds.attrs["source"] == f"genenkf_hpc {__version__}"
        cfg = config_from_dict(tomllib.loads(ds.attrs["config"]))  # a loadable config
    written = (outputs[name].parent / "config.toml").read_text()
    assert config_from_dict(tomllib.loads(written)) == cfg
    assert cfg.model.nx == 16 and cfg.osse.forcings == [8.0]


def test_shard_coordinates(outputs):
    with xr.open_dataset(outputs["shard"]) as ds:
        assert ds["states"].dims == ("trajectory", "time", "x")
        assert list(ds["trajectory"].values) == [0, 1] and ds.sizes["x"] == 16
        assert ds["time"].values[0] == pytest.approx(0.05) and ds.attrs["dynamics"] == "lorenz96"
