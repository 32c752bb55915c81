"""The training record: ``loss.csv`` and ``loss.png`` (both rewritten atomically).

``loss.csv`` columns: step, loss (mean training loss over the steps since the previous row),
lr, val_rmse (sampling RMSE on held-out states, empty when not validated at that step).
"""
from __future__ import annotations

import math
from pathlib import Path

from .atomic import atomic_path, write_text

COLUMNS = ("step", "loss", "lr", "val_rmse")


def _fmt(value: float) -> str:
    return "" if value is None or math.isnan(value) else repr(float(value))


def write_loss_csv(path: str | Path, rows) -> None:
    """``rows``: iterables ``(step, loss, lr, val_rmse)``; NaN val_rmse is written empty."""
    lines = [",".join(COLUMNS)]
    for step, loss, lr, val in rows:
        lines.append(f"{int(step)},{_fmt(loss)},{_fmt(lr)},{_fmt(val)}")
    write_text(path, "\n".join(lines) + "\n")


def write_loss_plot(path: str | Path, rows) -> None:
    """Training loss (log scale) and validation RMSE against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [tuple(r) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
    if rows:
        ax.plot([r[0] for r in rows], [r[1] for r in rows], lw=1, label="training loss")
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    handles = ax.get_legend_handles_labels()[0]
    val = [(r[0], r[3]) for r in rows if not math.isnan(r[3])]
    if val:
        ax2 = ax.twinx()
        handles += ax2.plot(*zip(*val), "o-", color="C1", ms=3, label="validation sample RMSE")
        ax2.set_ylabel("sample RMSE (state units)")
    if handles:
        ax.legend(handles=handles, loc="upper right", frameon=False)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
