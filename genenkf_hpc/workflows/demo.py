"""``genenkf demo``: the end-to-end story on ``configs/demo.toml`` (CONTRACT section 4).

1. ``dataset``: F = 8 training trajectories of the simulation model;
2. ``train``: a small observation-conditioned diffusion model, with this project's trainer (to
   show training; two minutes of it would be an undertrained model, so it is not compared);
3. ``campaign``: nature runs with an unbiased (F = 8) and a biased (F = 10) truth, observed at
   every 2nd point, assimilated by NoDA, nudging, the LETKF with the original's settings and
   one tuned on its own seed (32-member ensembles of the biased model), and the Generative
   EnKF (one simulation + a pseudo-ensemble of the shipped model, ``generative.checkpoint``);
   a table is printed and the figures are written.
Each stage has its own sub-directory; the whole demo runs in a few minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..config import Config
from ..io.rundir import sub_run
from . import campaign, dataset, train

HELP = "small end-to-end run: nature, LETKF, training, Generative EnKF"
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.toml"


def add_arguments(parser) -> None:
    pass


def _args(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    module.add_arguments(parser)
    return parser.parse_args(argv)


def run(args, cfg: Config, ctx) -> int:
    log, t0 = ctx.log, time.perf_counter()
    data_dir = ctx.path / "dataset"
    train_dir = ctx.path / "train"
    log.info("demo 1/3: training data (%d trajectories x %d steps, F=%g) -> %s",
             cfg.dataset.trajectories, cfg.dataset.steps, cfg.model.forcing, data_dir)
    dataset.run(_args(dataset, []), cfg, sub_run(ctx, "dataset", cfg))
    log.info("demo 2/3: training the diffusion model (%d steps, batch %d) -> %s",
             cfg.train.steps, cfg.train.batch_size, train_dir)
    train.run(_args(train, ["--data", str(data_dir)]), cfg, sub_run(ctx, "train", cfg))
    log.info("demo 3/3: assimilation, F_nature=%s, methods %s, Generative EnKF with the "
             "shipped model %s -> %s", cfg.osse.forcings, ", ".join(cfg.campaign.methods),
             cfg.generative.checkpoint, ctx.path / "campaign")
    campaign.run(_args(campaign, []), cfg, sub_run(ctx, "campaign", cfg))
    if ctx.is_main:
        print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; results: "
              f"{ctx.path / 'campaign' / 'results.md'}, figures: "
              f"{ctx.path / 'campaign' / 'rmse_vs_forcing.png'}, "
              f"{ctx.path / 'campaign' / 'rmse_time_F10.png'}", flush=True)
    return 0
