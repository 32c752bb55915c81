"""``genenkf train --data DIR``: train the observation-conditioned diffusion model.

One loop for one process and for DistributedDataParallel under torchrun, srun or mpiexec
(gloo on CPUs, nccl on GPUs). ``train.batch_size`` is the GLOBAL batch: the draws of step s are
keyed by (train.seed, s), every rank takes its contiguous slice, gradients are averaged, so any
rank count gives the same weights (to round-off). Gradient accumulation splits a rank's slice
into ``train.grad_accum`` micro-batches. EMA weights are the ones used for sampling.

Outputs (rank 0): ``checkpoints/step_<8 digits>.pt`` and ``checkpoints/latest.pt`` (atomic,
``torch.load(..., weights_only=True)``), ``loss.csv``, ``loss.png``, ``eval.json`` (held-out
quality check) and ``summary.json``. ``--resume`` continues from ``checkpoints/latest.pt`` of
``--out``: resuming after N steps gives the same loss trace and weights as 2N uninterrupted
steps. SIGTERM / SIGUSR1 (e.g. a Slurm time limit) write a checkpoint and exit 0.
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import osse, rng
from ..config import Config
from ..diffusion.bundle import build_bundle
from ..diffusion.conditioning import Normaliser
from ..diffusion.networks import build_network, check_network, locality, network_args
from ..diffusion.schedule import Schedule
from ..errors import UserError
from ..io import checkpoint as ckpt_io
from ..io import hdf5
from ..io.atomic import write_json
from ..io.losslog import write_loss_csv, write_loss_plot
from ..parallel import ddp
from ..parallel.comm import collective_error
from ..parallel.decomposition import block_range
from ..parallel.environment import threads_per_process
from ..training import data as tdata
from ..training import state as tstate
from ..training import validation
from ..training.step import StepParts, check_loss, optimizer_step

HELP = "train the observation-conditioned diffusion model (DDP-ready) -> checkpoints/"
CKPT_DIR = "checkpoints"
STOP_SIGNALS = ("SIGTERM", "SIGUSR1")


def add_arguments(parser) -> None:
    parser.add_argument("--data", help="a `genenkf dataset` output directory (required)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from <out>/checkpoints/latest.pt")
    parser.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                        help="checkpoint and exit after this step (split a run over job limits)")
    parser.add_argument("--eval-states", type=int, default=16,
                        help="held-out test states of the final quality check (0: skip)")
    parser.add_argument("--eval-members", type=int, default=32,
                        help="samples per held-out state in the final quality check")


@dataclass(frozen=True)
class TrainOptions:
    """What a training run takes besides the config (the command's flags)."""

    data: str                    # a `genenkf dataset` directory
    resume: bool = False         # continue from <out>/checkpoints/latest.pt
    stop_at: int | None = None   # checkpoint and stop after this step
    eval_states: int = 16        # held-out states of the final quality check (0: skip)
    eval_members: int = 32       # samples per held-out state


def run(args, cfg: Config, ctx) -> int:
    train_model(cfg, ctx, TrainOptions(args.data, args.resume, args.stop_at, args.eval_states,
                                       args.eval_members))
    return 0


def train_model(cfg: Config, ctx, opts: TrainOptions) -> Path:
    """Train into the run directory ``ctx.path``; returns ``checkpoints/latest.pt``. One process
    or DDP over the job's ranks (``ctx.env``); collective."""
    if not opts.data:
        raise UserError("train: --data DIR is required (the output of `genenkf dataset`)")
    meta = hdf5.read_metadata(opts.data)
    if int(meta["nx"]) != cfg.model.nx:
        raise UserError(f"model.nx={cfg.model.nx} but dataset {opts.data} has nx={meta['nx']}")
    if cfg.train.batch_size < ctx.env.world_size * cfg.train.grad_accum:
        raise UserError(f"train.batch_size={cfg.train.batch_size} is smaller than ranks x "
                        f"train.grad_accum = {ctx.env.world_size} x {cfg.train.grad_accum}")
    arch = network_args(cfg, cfg.model.nx)
    check_network(arch, cfg.model.nx)  # architecture errors before any process group is formed
    ds = ddp.setup(ctx.env, cfg.train.device, comm=ctx.comm)
    if ds.device.type == "cpu":
        torch.set_num_threads(threads_per_process())  # oversubscribed pools crawl
    try:
        trainer = Trainer(opts, cfg, ctx, meta, arch, ds)
        trainer.train()
    except BaseException:
        ddp.teardown(ds, clean=False)
        raise
    ddp.teardown(ds)
    return trainer.ckpt_dir / ckpt_io.LATEST


def dataset_record(meta: dict, directory) -> dict:
    """What the checkpoint keeps of the training data (``metadata.json`` of ``genenkf
    dataset``): where it came from and what it was (model, F, time step, spacing of stored
    states), for the model-experiment check."""
    dynamics = meta.get("dynamics", "lorenz96")
    return {"path": str(Path(directory).resolve()), "nx": int(meta["nx"]),
            "dt": float(meta["dt"]),
            # before `interval` was recorded, datasets stored consecutive model steps
            "interval": float(meta.get("interval", meta["dt"])),
            "forcing": float(meta["forcing"]), "seed": int(meta["seed"]),
            "source": str(meta.get("source", "model")),
            "dynamics": str(meta.get("dynamics_name") or (
                dynamics.get("dynamics") if isinstance(dynamics, dict) else dynamics))}


def trained_obs(ckpt: dict) -> dict:
    """A checkpoint's observation settings, with what older checkpoints did not record filled
    in as they trained (lag 0, every interval-th point observed)."""
    from ..diffusion.compatibility import model_mask

    obs = ckpt["obs"]
    return {"interval": obs["interval"], "sigma": obs["sigma"], "lag": int(obs.get("lag", 0)),
            "mask": list(model_mask(ckpt))}


class _StopFlag:
    """Set by SIGTERM / SIGUSR1; the loop checkpoints at the next step boundary."""

    def __init__(self):
        self.signal: str | None = None
        self._old = {}

    def __enter__(self):
        for name in STOP_SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None:
                with contextlib.suppress(ValueError):  # not the main thread
                    self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Trainer:
    def __init__(self, opts: TrainOptions, cfg: Config, ctx, meta: dict, arch, ds):
        self.opts, self.cfg, self.ctx, self.meta = opts, cfg, ctx, meta
        self.arch, self.ds = arch, ds
        self.log = ctx.log
        # All ranks use rank 0's run directory (torchrun ranks may have picked their own).
        self.path = Path(ddp.broadcast_object(str(ctx.path), ds))
        self.ckpt_dir = self.path / CKPT_DIR
        tc, dc = cfg.train, cfg.diffusion
        self.normaliser = Normaliser(float(meta["normalisation"]["lo"]),
                                     float(meta["normalisation"]["hi"]))
        self.schedule = Schedule(dc.timesteps, dc.schedule)
        self.mask = osse.obs_mask(cfg.model.nx, cfg.osse.obs_interval)
        with torch.random.fork_rng(devices=[]):  # initial weights from (seed), not the rank
            torch.manual_seed(rng.torch_seed(tc.seed, rng.Purpose.TRAINING, 0))
            net = build_network(arch)
            ema = build_network(arch)
        ema.load_state_dict(net.state_dict())
        self.net = net.to(ds.device)
        self.ema = ema.to(ds.device).eval().requires_grad_(False)
        self.model = ddp.wrap(self.net, ds)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=tc.lr)
        self.bf16 = tc.precision == "bf16" or (tc.precision == "auto" and ds.device.type == "cuda")
        self.step, self.history, self.window = 0, [], (0.0, 0)

    # --- set-up ------------------------------------------------------------------------------
    def _static(self) -> dict:
        cfg = self.cfg
        return dict(cfg_dict=cfg.to_dict(), arch=self.arch.to_dict(),
                    receptive_field=locality(self.arch),
                    diffusion={"timesteps": cfg.diffusion.timesteps,
                               "schedule": cfg.diffusion.schedule,
                               "objective": cfg.diffusion.objective, "loss": cfg.diffusion.loss,
                               "p_uncond": cfg.diffusion.p_uncond},
                    normalisation={**self.normaliser.to_dict(),
                                   **{k: float(v) for k, v in self.meta["normalisation"].items()
                                      if isinstance(v, (int, float))}},
                    # what the model fits (diffusion/compatibility.py reads these)
                    obs={"interval": cfg.osse.obs_interval, "sigma": cfg.osse.obs_sigma,
                         "lag": cfg.network.obs_lag,
                         "mask": [int(i) for i in np.flatnonzero(self.mask)]},
                    dataset=dataset_record(self.meta, self.opts.data))

    def _resume(self) -> None:
        path = self.ckpt_dir / ckpt_io.LATEST
        ck = ckpt_io.load_checkpoint(path)
        static = self._static()
        trained = {"arch": ck.get("arch"), "diffusion": ck.get("diffusion"),
                   "obs": trained_obs(ck) if "obs" in ck else None}
        for key in ("arch", "diffusion", "obs"):
            if trained[key] != static[key]:
                raise UserError(f"--resume: {path} was trained with {key}={trained[key]}, the "
                                f"config now gives {static[key]}")
        if ck["normalisation"].get("lo") != static["normalisation"]["lo"] or \
                ck["normalisation"].get("hi") != static["normalisation"]["hi"]:
            raise UserError(f"--resume: {path} was trained on a dataset with another "
                            "normalisation (different --data?)")
        self.net.load_state_dict(ck["model"])
        self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["optimizer"])
        self.step = int(ck["step"])
        self.history = [tuple(float(v) for v in row) for row in ck["loss_history"].tolist()]
        self.window = (float(ck["window"][0]), int(ck["window"][1]))
        self.log.info("resumed from %s at step %d", path, self.step)

    # --- the loop ----------------------------------------------------------------------------
    def train(self) -> int:
        cfg, tc, ds = self.cfg, self.cfg.train, self.ds
        if self.opts.resume:
            self._resume()
        train_states = tdata.load_split(self.opts.data, self.meta, "train")
        maker = tdata.BatchMaker(train_states, self.normaliser, self.mask, cfg.osse.obs_sigma,
                                 cfg.network.seq_len, self.schedule, ds.device,
                                 lag=cfg.network.obs_lag)
        val_split = "val" if self.meta["splits"]["val"] else None
        val_cases = self._cases(val_split, tc.val_samples, which=0) if val_split else None
        n_traj, n_steps = train_states.shape[:2]
        lo, hi = block_range(tc.batch_size, ds.world_size, ds.rank)
        micro = [tuple(lo + np.array(block_range(hi - lo, tc.grad_accum, j)))
                 for j in range(tc.grad_accum)]
        stop_at = self.opts.stop_at
        if stop_at is not None and stop_at <= self.step:
            raise UserError(f"--stop-at {stop_at}: the run is already at step {self.step}")
        self.log.info("train: %d steps from step %d, global batch %d over %d rank(s) x %d "
                      "micro-batch(es), %d parameters, device %s%s", tc.steps, self.step,
                      tc.batch_size, ds.world_size, tc.grad_accum,
                      sum(p.numel() for p in self.net.parameters()), ds.device,
                      " (bf16 autocast)" if self.bf16 else "")
        parts = StepParts(self.model, self.net, self.ema, self.opt, self.schedule,
                          cfg.diffusion.objective, cfg.diffusion.loss, tc.ema_decay,
                          tc.batch_size, ds.world_size, ds.active, self.bf16, ds.device.type)
        bar = _progress(tc.steps, self.step, ds.is_main and cfg.run.progress)
        t0, done, stopped = time.perf_counter(), 0, None
        with _StopFlag() as flag:
            while self.step < tc.steps:
                lr = tstate.lr_at(self.step, tc.lr, tc.steps, tc.warmup_steps, tc.lr_schedule)
                gb = tdata.draw_global_batch(tc.seed, self.step, tc.batch_size, n_traj, n_steps,
                                             cfg.network.seq_len, cfg.model.nx,
                                             cfg.diffusion.timesteps, cfg.diffusion.p_uncond,
                                             lag=cfg.network.obs_lag)
                loss_sum = optimizer_step(parts, gb, maker, micro, lr, self.step)
                self.step += 1
                done += 1
                want_stop = flag.signal is not None or (stop_at is not None
                                                        and self.step >= stop_at)
                loss_sum, stops = ddp.all_reduce_values([loss_sum, float(want_stop)], ds)
                check_loss_collectively(loss_sum, self.step)
                self._record(loss_sum / tc.batch_size, lr, val_cases)
                bar.update(1)
                if stops > 0 and self.step < tc.steps:
                    stopped = flag.signal or (f"--stop-at {stop_at}" if stop_at is not None
                                              and self.step >= stop_at
                                              else "a signal on another rank")
                    break
                if self.step % tc.checkpoint_every == 0 and self.step < tc.steps:
                    self._save()
        bar.close()
        wall = time.perf_counter() - t0
        self._save()
        if stopped:
            self.log.warning("stopped by %s after step %d; checkpoint %s written. Resume with: "
                             "genenkf train --data %s --out %s --resume [same config]",
                             stopped, self.step, self.ckpt_dir / ckpt_io.LATEST, self.opts.data,
                             self.path)
            return 0
        self._finish(wall, done)
        return 0

    def _record(self, loss: float, lr: float, val_cases) -> None:
        tc = self.cfg.train
        s, n = self.window
        self.window = (s + loss, n + 1)
        val_due = self.step == tc.steps or (tc.val_every > 0 and self.step % tc.val_every == 0)
        if self.step % tc.log_every and not val_due:
            return
        val = math.nan
        if val_due and val_cases is not None and self.ds.is_main:
            gc = self.cfg.generative
            val = validation.validation_rmse(self._bundle(), val_cases, tc.seed, self.step,
                                             steps=min(gc.sampling_steps, 20), eta=gc.eta,
                                             guidance=gc.guidance)
        s, n = self.window
        self.history.append((float(self.step), s / n, lr, val))
        self.window = (0.0, 0)
        if self.ds.is_main:
            self.log.debug("step %d loss %.5f lr %.3g val_rmse %s", self.step, s / n, lr, val)

    # --- outputs -----------------------------------------------------------------------------
    def _bundle(self):
        return build_bundle(self.ema, self.schedule, self.cfg.diffusion.objective,
                            self.normaliser, self.cfg.osse.obs_interval, self.cfg.osse.obs_sigma,
                            info={"step": self.step}, obs_lag=self.cfg.network.obs_lag,
                            nx=self.cfg.model.nx)

    def _cases(self, split, n: int, which: int):
        states = tdata.load_split(self.opts.data, self.meta, split)
        return validation.held_out_cases(states, n, self.cfg.network.seq_len, self.mask,
                                         self.cfg.osse.obs_sigma, self.cfg.train.seed, which,
                                         lag=self.cfg.network.obs_lag)

    def _save(self) -> None:
        if not self.ds.is_main:
            return
        ck = tstate.make_checkpoint(step=self.step, net=self.net, ema=self.ema,
                                    optimizer=self.opt, history=self.history, window=self.window,
                                    seed=self.cfg.train.seed, world_size=self.ds.world_size,
                                    **self._static())
        ckpt_io.save_step_and_latest(self.ckpt_dir, self.step, ck)
        write_loss_csv(self.path / "loss.csv", self.history)
        write_loss_plot(self.path / "loss.png", self.history)

    def _finish(self, wall: float, done: int) -> None:
        if not self.ds.is_main:
            return
        cfg, tc = self.cfg, self.cfg.train
        rate = done * tc.batch_size / max(wall, 1e-9) / self.ds.world_size
        summary = {"steps": self.step, "ranks": self.ds.world_size, "device": str(self.ds.device),
                   "backend": self.ds.backend, "bf16": self.bf16,
                   "final_loss": self.history[-1][1] if self.history else None,
                   "val_rmse": next((r[3] for r in reversed(self.history)
                                     if not math.isnan(r[3])), None),
                   "samples_per_s_per_rank": rate, "wall_seconds": wall,
                   "checkpoint": str(self.ckpt_dir / ckpt_io.LATEST)}
        split = "test" if self.meta["splits"]["test"] else "val"
        if self.opts.eval_states > 0 and self.meta["splits"][split]:
            gc = cfg.generative
            cases = self._cases(split, self.opts.eval_states, which=1)
            ev = validation.evaluate(self._bundle(), cases, tc.seed,
                                     members=self.opts.eval_members, steps=gc.sampling_steps,
                                     eta=gc.eta, guidance=gc.guidance)
            ev["split"] = split
            write_json(self.path / "eval.json", ev)
            summary["eval"] = ev
            self.log.info("held-out %s (%d states, %d members): ensemble-mean RMSE %.3f, spread "
                          "%.3f, linear interpolation RMSE %.3f", split, ev["cases"],
                          ev["members"], ev["rmse_ensemble_mean"], ev["spread"],
                          ev["rmse_linear_interpolation"])
        write_json(self.path / "summary.json", summary)
        self.log.info("trained %d steps in %.1f s (%.1f samples/s/rank); final loss %.4f; "
                      "checkpoint %s", done, wall, rate, summary["final_loss"] or math.nan,
                      self.ckpt_dir / ckpt_io.LATEST)


def check_loss_collectively(loss_sum: float, step: int) -> None:
    """The reduced loss is the same on every rank: a bad one is one collective error."""
    try:
        check_loss(loss_sum, step)
    except UserError as exc:
        raise collective_error(exc) from None


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, initial: int, enabled: bool):
    """tqdm on rank 0 when stderr is a terminal (log files stay clean)."""
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)
    return _NoBar()
