"""Plots of tools/bench_suite.py: LETKF kernel throughput against N and k, and strong/weak
scaling against the rank count (matplotlib, Agg; each PNG written atomically)."""
from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    from genenkf_hpc.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _pyplot().close(fig)


def plot_size(rows: list[dict], path: Path, target: float | None = None) -> None:
    """LETKF kernel throughput against N and against k (GFLOP/s on the right axis)."""
    by_n = [r for r in rows if r["sweep"] == "letkf_nx" and r.get("throughput")]
    by_k = [r for r in rows if r["sweep"] == "letkf_members" and r.get("throughput")]
    if not by_n and not by_k:
        return
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    if by_n:
        a.plot([r["nx"] for r in by_n], [r["throughput"] for r in by_n], "o-",
               label=f"measured ({by_n[0].get('threads')} threads)")
        if target:
            a.axhline(target, color="k", ls="--", lw=1, label="issue 3 target (2 idle cores)")
        a.set_xscale("log")
        a.legend(loc="lower right")
        a.set(xlabel="grid points N", ylabel="grid points / s",
              title=f"LETKF kernel vs N (k = {by_n[0]['members']})", ylim=(0, None))
    if by_k:
        b.plot([r["members"] for r in by_k], [r["throughput"] for r in by_k], "o-",
               label="grid points / s")
        b.set(xlabel="members k", ylabel="grid points / s", ylim=(0, None),
              title=f"LETKF kernel vs k (N = {by_k[0]['nx']})")
        b.set_xscale("log", base=2)
        b.set_xticks([r["members"] for r in by_k], [str(r["members"]) for r in by_k])
        c = b.twinx()
        c.plot([r["members"] for r in by_k], [r.get("gflops") or 0 for r in by_k], "s--",
               color="C1", label="GFLOP/s")
        c.set(ylabel="GFLOP/s", ylim=(0, None))
        b.legend(handles=b.lines + c.lines, loc="lower left")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def plot_scaling(rows: list[dict], path: Path) -> None:
    """Strong-scaling speedup and weak-scaling efficiency against the rank count."""
    strong = [r for r in rows if r.get("scale") == "strong" and r.get("speedup")]
    weak = [r for r in rows if r.get("scale") == "weak" and r.get("efficiency")]
    if not strong and not weak:
        return
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, part, key in ((a, strong, "speedup"), (b, weak, "efficiency")):
        for i, bench in enumerate(dict.fromkeys(r["bench"] for r in part)):
            mine = [r for r in part if r["bench"] == bench]
            ax.plot([r["ranks"] for r in mine], [r[key] for r in mine], marker="osd^"[i % 4],
                    label=bench)
        ranks = sorted({r["ranks"] for r in part})
        if ranks:
            ax.set_xticks(ranks)
            ax.plot(ranks, [x / ranks[0] for x in ranks] if key == "speedup"
                    else [1.0] * len(ranks), "k--", lw=1, label="ideal")
        ax.grid(alpha=0.3)
        if part:
            ax.legend()
    loads = [r["load_1min"] for r in strong + weak if r.get("load_1min") is not None]
    note = f", load average {min(loads):g}-{max(loads):g}" if loads else ""
    a.set(xlabel="ranks", ylabel="speedup T_R / T_1", title="strong scaling" + note,
          ylim=(0, None))
    b.set(xlabel="ranks", ylabel="efficiency (T_R / R) / T_1", title="weak scaling",
          ylim=(0, 1.2))
    fig.tight_layout()
    _save(fig, path)
