"""The campaign: same truth for every method, tuning on a separate seed, complete outputs."""
import csv
import math
import subprocess
import sys


import pytest

from genenkf_hpc.config import tomllib

from testpaths import CONFIGS

TINY = ["-c", str(CONFIGS / "tiny.toml"), "osse.forcings=[8.0, 10.0]", "osse.cycles=24",
        "campaign.tune_cycles=12", "campaign.tune_radius=[2.0, 4.0]",
        "campaign.tune_inflation=[1.05]", "campaign.tune_rtps=[0.0, 0.5]",
        "campaign.tune_gaussian_scale=[0.3]",
        'campaign.methods=["noda", "nudging", "enkf", "letkf", "letkf_tuned", "gaussian_pseudo"]',
        'campaign.method_overrides=["letkf:filter.taper=\\"box\\""]']


@pytest.fixture(scope="module")
def campaign_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("campaign")
    proc = subprocess.run([sys.executable, "-m", "genenkf_hpc", "campaign", "--out", str(out)] + TINY,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def read_rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_results_table_has_every_method_and_forcing(campaign_dir):
    rows = read_rows(campaign_dir / "results.csv")
    pairs = {(r["method"], float(r["forcing_nature"])) for r in rows}
    methods = ["noda", "nudging", "enkf", "letkf", "letkf_tuned", "gaussian_pseudo"]
    assert pairs == {(m, f) for m in methods for f in (8.0, 10.0)}
    for r in rows:
        assert float(r["rmse"]) > 0 and float(r["wall_seconds"]) > 0
    md = (campaign_dir / "results.md").read_text()
    assert "letkf_tuned" in md and "Cost per cycle" in md
    for name in ["rmse_vs_forcing.png", "rmse_time_F8.png", "rmse_time_F10.png",
                 "hovmoller_letkf_tuned_F10.png"]:
        assert (campaign_dir / name).stat().st_size > 1000, name


def test_every_method_saw_the_same_truth_and_observations(campaign_dir):
    import numpy as np
    import xarray as xr

    for f in ("8", "10"):
        ref = xr.open_dataset(campaign_dir / "noda" / f"F{f}" / "analysis.nc")
        for m in ["nudging", "enkf", "letkf", "letkf_tuned", "gaussian_pseudo"]:
            ds = xr.open_dataset(campaign_dir / m / f"F{f}" / "analysis.nc")
            np.testing.assert_array_equal(ds.truth.values, ref.truth.values)
            np.testing.assert_array_equal(ds.obs.values, ref.obs.values)


def test_tuning_used_a_separate_seed_and_the_best_point(campaign_dir):
    import json

    best_rmse, best_cfg = None, None
    for run in (campaign_dir / "tuning" / "letkf_tuned" / "F10").iterdir():
        cfg = tomllib.loads((run / "config.toml").read_text())
        assert cfg["osse"]["seed"] == 1000 and cfg["osse"]["cycles"] == 12
        rmse = json.loads((run / "summary.json").read_text())["rmse"]
        if best_rmse is None or rmse < best_rmse:
            best_rmse, best_cfg = rmse, cfg
    final = tomllib.loads((campaign_dir / "letkf_tuned" / "F10" / "config.toml").read_text())
    assert final["osse"]["seed"] == 0
    assert final["filter"]["radius"] == best_cfg["filter"]["radius"]
    assert final["filter"]["rtps"] == best_cfg["filter"]["rtps"]


def test_method_overrides_apply_to_their_method_only(campaign_dir):
    letkf = tomllib.loads((campaign_dir / "letkf" / "F8" / "config.toml").read_text())
    enkf = tomllib.loads((campaign_dir / "enkf" / "F8" / "config.toml").read_text())
    assert letkf["filter"]["taper"] == "box" and enkf["filter"]["taper"] == "gaspari_cohn"


def test_bad_method_override_is_a_user_error(tmp_path):
    """A typo in a label is an error; an override of a known entry that this campaign does not
    run is not (a subset of a shipped config's entries)."""
    base = [sys.executable, "-m", "genenkf_hpc", "campaign", "-c", str(CONFIGS / "tiny.toml"),
            'campaign.methods=["noda"]', "osse.forcings=[8.0]"]
    proc = subprocess.run(base + ["--out", str(tmp_path / "a"),
                                  'campaign.method_overrides=["letkff:filter.radius=2"]'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: campaign.method_overrides")
    assert "letkff" in proc.stderr
    proc = subprocess.run(base + ["--out", str(tmp_path / "b"),
                                  'campaign.method_overrides=["letkf:filter.radius=2"]'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------
# Several seeds, variants, built-in tuned entries

SEEDS = ["-c", str(CONFIGS / "tiny.toml"), "osse.forcings=[8.0, 10.0]", "osse.cycles=24",
         "campaign.seeds=[0, 1]", "campaign.tune_cycles=12", "campaign.tune_radius=[2.0, 4.0]",
         "campaign.tune_inflation=[1.05, 1.2]", "campaign.tune_rtps=[0.0]",
         "campaign.tune_additive=[0.0, 0.3]",
         'campaign.methods=["noda", "letkf", "letkf_tuned_k4", "letkf_paramest"]',
         'campaign.variants=["letkf_box:letkf", "paramest_wide:letkf_paramest"]',
         'campaign.method_overrides=["letkf_box:filter.taper=\\"box\\"", '
         '"paramest_wide:paramest.min_spread=0.3"]']


def _campaign(out, args, ranks=1):
    if ranks == 1:
        return subprocess.run([sys.executable, "-m", "genenkf_hpc", "campaign", "--out", str(out)]
                              + args, capture_output=True, text=True, timeout=600)
    from mpi_utils import run_mpi

    return run_mpi(ranks, ["campaign", "--out", out, *args], timeout=600)


@pytest.fixture(scope="module")
def seeds_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds")
    proc = _campaign(out, SEEDS)
    assert proc.returncode == 0, proc.stderr
    return out


def test_every_seed_is_scored_with_a_seed_column(seeds_dir):
    rows = read_rows(seeds_dir / "results.csv")
    labels = ["noda", "letkf", "letkf_tuned_k4", "letkf_paramest", "letkf_box", "paramest_wide"]
    assert [r["method"] for r in rows[::4]] == labels  # variants after campaign.methods
    assert {(r["method"], float(r["forcing_nature"]), int(r["seed"])) for r in rows} == \
        {(m, f, s) for m in labels for f in (8.0, 10.0) for s in (0, 1)}
    for r in rows:
        run = seeds_dir / r["method"] / f"seed{r['seed']}" / f"F{float(r['forcing_nature']):g}"
        cfg = tomllib.loads((run / "config.toml").read_text())
        assert cfg["osse"]["seed"] == int(r["seed"])
    k4 = [r for r in rows if r["method"] == "letkf_tuned_k4"]
    assert all("'members': 4" not in r["settings"] for r in k4)
    assert all(int(r["model_steps_per_cycle"]) == 4 for r in k4)
    pe = [r for r in rows if r["method"] == "letkf_paramest"]
    assert all(5.0 < float(r["forcing_estimate"]) < 12.0 for r in pe)


def test_results_md_shows_mean_and_std_over_seeds(seeds_dir):
    import numpy as np

    rows = read_rows(seeds_dir / "results.csv")
    md = (seeds_dir / "results.md").read_text()
    assert "mean ± standard deviation over 2 seeds (0, 1)" in md
    for section in ("## Analysis RMSE", "## Spread", "## Spread / RMSE", "## CRPS",
                    "## Estimated forcing F", "## Cost per cycle", "## Tuning (seed 1000)",
                    "## Rank histograms"):
        assert section in md, section
    values = [float(r["rmse"]) for r in rows
              if r["method"] == "letkf" and float(r["forcing_nature"]) == 10.0]
    cell = f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
    line = [ln for ln in md.splitlines() if ln.startswith("| letkf |")][0]
    assert cell in line, (cell, line)
    for name in ["rmse_vs_forcing.png", "rmse_time_F8.png", "rmse_time_F10.png",
                 "rank_histogram_F8.png", "rank_histogram_F10.png", "hovmoller_letkf_F10.png"]:
        assert (seeds_dir / name).stat().st_size > 1000, name


def test_tuning_happens_once_on_the_tuning_seed(seeds_dir):
    tuning = read_rows(seeds_dir / "tuning.csv")
    assert {r["method"] for r in tuning} == {"letkf_tuned_k4", "letkf_paramest", "paramest_wide"}
    for label in ("letkf_tuned_k4", "paramest_wide"):  # a variant inherits its base's grid
        for run in (seeds_dir / "tuning" / label / "F10").iterdir():
            assert tomllib.loads((run / "config.toml").read_text())["osse"]["seed"] == 1000
    chosen = {(r["method"], float(r["forcing_nature"])): r["settings"] for r in tuning
              if r["chosen"] == "True"}
    for (label, f), settings in chosen.items():
        for seed in (0, 1):  # both scored seeds run the one tuned setting
            cfg = tomllib.loads((seeds_dir / label / f"seed{seed}" / f"F{f:g}" /
                                 "config.toml").read_text())
            for item in settings.split():
                key, value = item.split("=")
                section, name = key.split(".")
                assert cfg[section][name] == float(value), (label, f, item)
    md = (seeds_dir / "results.md").read_text()
    assert "`filter.additive` in [0.0, 0.3]" in md and "Tuning cost" in md


def test_variants_apply_their_overrides_on_top_of_their_base(seeds_dir):
    box = tomllib.loads((seeds_dir / "letkf_box" / "seed0" / "F8" / "config.toml").read_text())
    plain = tomllib.loads((seeds_dir / "letkf" / "seed0" / "F8" / "config.toml").read_text())
    assert box["filter"]["taper"] == "box" and plain["filter"]["taper"] == "gaspari_cohn"
    wide = tomllib.loads((seeds_dir / "paramest_wide" / "seed1" / "F10" / "config.toml")
                         .read_text())
    assert wide["paramest"]["min_spread"] == 0.3
    assert wide["filter"]["taper"] == "gaspari_cohn"  # the built-in entry's own override


def test_resume_skips_every_finished_run_with_seeds_and_variants(seeds_dir):
    summaries = sorted(seeds_dir.rglob("summary.json"))
    before = {p: p.stat().st_mtime_ns for p in summaries}
    table = (seeds_dir / "results.csv").read_text()
    proc = _campaign(seeds_dir, SEEDS + ["--resume"])
    assert proc.returncode == 0, proc.stderr
    assert sorted(seeds_dir.rglob("summary.json")) == summaries  # tuning candidates included
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert (seeds_dir / "results.csv").read_text() == table


@pytest.mark.slow
@pytest.mark.mpi
def test_two_ranks_give_the_one_process_results(seeds_dir, tmp_path):
    proc = _campaign(tmp_path, SEEDS, ranks=2)
    assert proc.returncode == 0, proc.stderr
    timing = {"wall_seconds", "seconds_per_cycle"}
    one, two = read_rows(seeds_dir / "results.csv"), read_rows(tmp_path / "results.csv")
    assert len(one) == len(two)
    for a, b in zip(one, two):
        for key in a.keys() - timing:
            if key in ("rmse", "spread", "spread_ratio", "crps", "forcing_estimate"):
                x, y = float(a[key]), float(b[key])
                assert abs(x - y) <= 1e-10 or (math.isnan(x) and math.isnan(y)), (key, a, b)
            else:
                assert a[key] == b[key], key


@pytest.mark.parametrize("override, fragment", [
    ('campaign.variants=["letkf:letkf_tuned"]', "letkf is already a method"),
    ('campaign.variants=["mine:nothing"]', "unknown base 'nothing'"),
    ('campaign.variants=["mine"]', "expected 'label:base'"),
    ("campaign.seeds=[0, 1000]", "includes campaign.tune_seed=1000"),
])
def test_bad_campaign_entries_are_user_errors(tmp_path, override, fragment):
    proc = subprocess.run([sys.executable, "-m", "genenkf_hpc", "campaign", "--out", str(tmp_path),
                           "-c", str(CONFIGS / "tiny.toml"), 'campaign.methods=["noda"]',
                           override], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and fragment in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# CONTRACT section 7: a shipped config names its model relative to itself


def test_paper_config_finds_its_model_from_any_directory(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "genenkf_hpc", "campaign", "-c",
                           str(CONFIGS / "paper.toml"), "--out", str(out),
                           'campaign.methods=["genenkf"]', "campaign.seeds=[0]",
                           "osse.forcings=[8.0]", "osse.cycles=2", "osse.burn_in=1",
                           "generative.members=4", "run.progress=false"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    model = (CONFIGS.parent / "models" / "l96_paper_prior.pt").resolve()
    for written in (out / "config.toml", out / "genenkf" / "F8" / "config.toml"):
        assert tomllib.loads(written.read_text())["generative"]["checkpoint"] == str(model)


SHIPPED_PRIOR = CONFIGS.parent / "models" / "l96_paper_prior.pt"


@pytest.mark.parametrize("text, missing, entry", [
    ('[generative]\ncheckpoint = "models/none.pt"\n[campaign]\nmethods = ["noda", "genenkf"]\n',
     "models/none.pt", "genenkf"),
    # each Generative EnKF entry runs its own generative.checkpoint (two_scale.toml's
    # genenkf_model_data); a variant's missing file is named too
    (f'[generative]\ncheckpoint = "{SHIPPED_PRIOR}"\n[campaign]\nmethods = ["noda", "genenkf"]\n'
     'variants = ["other:genenkf"]\n'
     'method_overrides = [\'other:generative.checkpoint="none.pt"\']\n', "none.pt", "other"),
])
def test_missing_checkpoint_is_named_before_any_run(tmp_path, text, missing, entry):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "genenkf_hpc", "campaign", "-c", str(cfg),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"error: generative.checkpoint={tmp_path}/{missing}: no such "
                                   f"file (campaign entry {entry} needs a trained model)")
    assert not (tmp_path / "out" / "noda").exists()


def test_python_api_table_has_a_seed_dimension_with_several_seeds(tmp_path):
    import genenkf_hpc as gk

    cfg = gk.load_config(CONFIGS / "tiny.toml", 'campaign.methods=["noda", "letkf"]',
                         "campaign.seeds=[0, 1]", "osse.cycles=16")
    table = gk.campaign(cfg, out=tmp_path)
    assert table.rmse.dims == ("da_method", "forcing", "seed")
    assert list(table.seed.values) == [0, 1]
    for row in read_rows(tmp_path / "results.csv"):
        value = table.rmse.sel(da_method=row["method"], forcing=float(row["forcing_nature"]),
                               seed=int(row["seed"]))
        assert float(value) == float(row["rmse"])
