"""Figures (matplotlib, Agg): RMSE over time, Hovmoller diagrams, RMSE against F_nature,
rank histograms.

Each function takes plain arrays and a path and writes one PNG atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _pyplot().close(fig)


def rmse_over_time(series: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | Path,
                   title: str = "", burn_in_time: float | None = None,
                   obs_sigma: float | None = None) -> None:
    """One line per ``(label, time, rmse)``; log scale when the values span a decade."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, time, rmse in series:
        ax.plot(time, rmse, lw=1, label=label)
    if burn_in_time is not None:
        ax.axvline(burn_in_time, color="0.5", ls=":", lw=1, label="end of burn-in")
    if obs_sigma is not None:
        ax.axhline(obs_sigma, color="k", ls="--", lw=0.8, label="obs error sigma")
    values = np.concatenate([np.asarray(s[2]) for s in series]) if series else np.array([1.0])
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.size and finite.max() / max(finite.min(), 1e-12) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("model time")
    ax.set_ylabel("analysis RMSE")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    _save(fig, path)


def hovmoller(time: np.ndarray, truth: np.ndarray, analysis: np.ndarray, path: str | Path,
              title: str = "", max_cycles: int = 300) -> None:
    """Truth, analysis mean and their difference, ``(time, x)``, for the last ``max_cycles``."""
    plt = _pyplot()
    sl = slice(max(0, len(time) - max_cycles), len(time))
    t, tr, an = time[sl], truth[sl], analysis[sl]
    err = an - tr
    vmax = np.nanmax(np.abs(tr))
    emax = max(np.nanmax(np.abs(err)), 1e-12) if np.isfinite(err).any() else 1.0
    fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharey=True)
    extent = (-0.5, tr.shape[1] - 0.5, t[-1], t[0])
    for ax, data, name, cmap, lim in ((axes[0], tr, "truth", "RdBu_r", vmax),
                                      (axes[1], an, "analysis mean", "RdBu_r", vmax),
                                      (axes[2], err, "analysis - truth", "PuOr_r", emax)):
        im = ax.imshow(data, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, extent=extent,
                       interpolation="nearest")
        ax.set_title(name)
        ax.set_xlabel("grid point x")
        fig.colorbar(im, ax=ax, shrink=0.8)
    axes[0].set_ylabel("model time")
    fig.suptitle(title)
    _save(fig, path)


def rmse_vs_forcing(rows: Sequence[dict], path: str | Path, model_forcing: float | None = None,
                    obs_sigma: float | None = None) -> None:
    """Time-mean RMSE per method against F_nature; ``rows`` have method, forcing_nature, rmse,
    one row per run: with several runs (seeds) per method and F the line joins their means and
    each run is a small dot (honest on a log scale, where error bars are not)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for i, method in enumerate(methods):
        runs: dict[float, list[float]] = {}
        for r in rows:
            if r["method"] == method and np.isfinite(r["rmse"]):
                runs.setdefault(float(r["forcing_nature"]), []).append(float(r["rmse"]))
        x = sorted(runs)
        line, = ax.plot(x, [np.mean(runs[f]) for f in x], marker="o", label=method)
        if any(len(v) > 1 for v in runs.values()):
            shift = 0.025 * (i - (len(methods) - 1) / 2)  # methods side by side
            ax.plot([f + shift for f in x for _ in runs[f]], [v for f in x for v in runs[f]],
                    ".", color=line.get_color(), alpha=0.5, ms=4)
    if model_forcing is not None:
        ax.axvline(model_forcing, color="0.5", ls=":", lw=1, label="model F (unbiased)")
    if obs_sigma is not None:
        ax.axhline(obs_sigma, color="k", ls="--", lw=0.8, label="obs error sigma")
    ax.set_yscale("log")
    ax.set_xlabel("F_nature")
    ax.set_ylabel("time-mean analysis RMSE")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)


def rank_histograms(panels: Sequence[tuple[str, np.ndarray, str]], path: str | Path,
                    title: str = "", columns: int = 4) -> None:
    """One panel per ``(label, counts (k + 1,), note)``: the truth's rank among the k members
    as relative frequency times (k + 1), so a calibrated ensemble is flat at 1 (dashed); a U
    shape is an under-dispersed ensemble, a dome an over-dispersed one, a slope a bias."""
    plt = _pyplot()
    n = max(len(panels), 1)
    cols = min(columns, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (label, counts, note) in zip(axes.ravel(), panels):
        counts = np.asarray(counts, dtype=float)
        freq = counts / max(counts.sum(), 1.0) * counts.size
        ax.bar(np.arange(counts.size), freq, width=1.0, color="tab:blue", edgecolor="none")
        ax.axhline(1.0, color="k", ls="--", lw=0.8)
        ax.set_title(f"{label}\n{note}" if note else label, fontsize=9)
        ax.set_xlim(-0.5, counts.size - 0.5)
        ax.set_xlabel("rank of the truth", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("frequency x (k + 1)", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
