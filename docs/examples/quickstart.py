# %% [markdown]
# # genenkf_hpc from Python: a quickstart
#
# A Lorenz-96 OSSE in a few lines: build a config, make the truth and its observations, run
# three data-assimilation methods on the same observations, tabulate and plot. Run the cells in
# a notebook (VS Code / Jupyter open `# %%` cells), or the whole file:
#
#     python docs/examples/quickstart.py            # figures -> runs/quickstart/
#     GENENKF_FIGURES=/tmp/figs python docs/examples/quickstart.py
#
# It takes seconds on a laptop. Everything stays in memory: nothing is written but the figures.

# %%
import os
import sys
from pathlib import Path

import matplotlib
import pandas as pd

import genenkf_hpc as gk

# In a notebook the figures are shown; as a script they are saved (GENENKF_FIGURES or
# runs/quickstart/).
INTERACTIVE = hasattr(sys, "ps1") or "ipykernel" in sys.modules
FIGURES = os.environ.get("GENENKF_FIGURES") or (None if INTERACTIVE else "runs/quickstart")
if FIGURES:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def show(fig, name: str) -> None:
    if FIGURES is None:
        plt.show()
        return
    path = Path(FIGURES) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"figure: {path}")


# %% [markdown]
# ## 1. A config
# The command line's `section.key=value` overrides work here too (and the same errors name a
# bad key). The simulation model has F = 8; the truth has F = 8 (unbiased) and F = 10 (a
# biased model). Every 2nd of 40 points is observed with noise sigma = 1.

# %%
cfg = gk.load_config(None, "model.nx=40", "model.spinup_steps=500",
                     "osse.forcings=[8.0, 10.0]", "osse.cycles=300", "osse.burn_in=100",
                     "osse.obs_interval=2", "filter.members=16", "filter.radius=4.0",
                     "filter.inflation=1.1")
print(cfg.osse)

# %% [markdown]
# ## 2. The truth and its observations
# `gk.nature` returns an `xarray.Dataset` with the variables of `nature.nc`: `truth` and `obs`
# `(forcing, time, x)`, `obs_mask (x)`; every variable carries `long_name` and `units`, and the
# attributes hold the config that made it.

# %%
truth = gk.nature(cfg)
print(truth)

# %% [markdown]
# ## 3. Three methods on the same observations
# A free run (`noda`), nudging towards the observations and a 16-member LETKF. Each result has
# the fields of `analysis.nc` with a `forcing` dimension, the RMSE per cycle (`rmse_series`) and
# its time mean after the burn-in (`rmse`, as in `summary.json`).

# %%
methods = ("noda", "nudging", "letkf")
results = {m: gk.assimilate(cfg, m, nature=truth) for m in methods}
table = pd.DataFrame({m: ds.rmse.to_series() for m, ds in results.items()}).T
table.columns = [f"F_nature={f:g}" for f in table.columns]
print("time-mean analysis RMSE after the burn-in")
print(table.round(3))

# %% [markdown]
# ## 4. RMSE over time

# %%
fig, axes = plt.subplots(1, len(truth.forcing), figsize=(11, 3.5), sharey=True)
for ax, forcing in zip(axes, truth.forcing.values):
    for m, ds in results.items():
        ds.rmse_series.sel(forcing=forcing).plot(ax=ax, label=m, lw=1)
    ax.axhline(cfg.osse.obs_sigma, color="k", ls="--", lw=0.8, label="obs error sigma")
    ax.set_yscale("log")
    ax.set_title(f"F_nature = {forcing:g} (model F = {cfg.model.forcing:g})")
axes[0].legend()
show(fig, "rmse_time")

# %% [markdown]
# ## 5. A Hovmoller diagram of the biased case
# Labels come from the variables' `long_name` and `units`.

# %%
letkf = results["letkf"].sel(forcing=10.0)
error = (letkf.analysis_mean - letkf.truth).assign_attrs(long_name="analysis - truth", units="1")
fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True, layout="constrained")
for ax, field, cmap in zip(axes, (letkf.truth, letkf.analysis_mean, error),
                           ("RdBu_r", "RdBu_r", "PuOr_r")):
    field.plot(ax=ax, cmap=cmap, robust=True)
    ax.set_title(field.attrs["long_name"])
for ax in axes[1:]:
    ax.set_ylabel("")
axes[0].invert_yaxis()  # time runs downwards
fig.suptitle(f"LETKF, F_nature = 10 (model F = {cfg.model.forcing:g})")
show(fig, "hovmoller")

# %% [markdown]
# ## Next
# - `gk.assimilate(cfg, "letkf", out="runs/letkf")` also writes what `genenkf assimilate` writes.
# - The Generative EnKF needs a trained model: `gk.assimilate(gk.load_config("configs/paper.toml"),
#   "genenkf")` uses the shipped one; `gk.dataset` and `gk.train` make your own.
# - Your own dynamical model: docs/dynamics.md.
