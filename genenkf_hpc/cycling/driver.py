"""The cycle loop of ``genenkf assimilate`` for one nature run (one F_nature).

Per cycle c = 1..cycles (ARCHITECTURE "Time"): forecast the state from c-1 to c with the
simulation model (every rank its member block or the simulation, on its segment of the ring:
:class:`~genenkf_hpc.parallel.layout.Layout`, ``run.domains``), analyse with the observation
of cycle c, gather the diagnostics of every grid block to rank 0, which streams
them to ``analysis.nc.partial``. Every ``run.checkpoint_every`` cycles, and when SIGTERM/SIGUSR1
arrives, the full state goes to a restart file; ``resume=True`` continues from the newest one
and reproduces the uninterrupted run bit for bit (all randomness is keyed by member and cycle).
A non-finite or exploding state stops the run with a :class:`DivergenceError`. With no output
directory (``path=None``, the Python API) the cycles are recorded in memory and nothing is
written: the :class:`Outcome` carries the analysis as an ``xarray.Dataset`` (rank 0).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import metrics
from ..config import Config
from ..dynamics.from_config import forecast_model
from ..errors import DivergenceError, UserError
from ..io import analysis_file, restart
from ..parallel.comm import collective_error, run_on_root
from ..parallel.decomposition import choose_domains
from ..parallel.layout import Layout
from . import records
from .resume import load_restart, run_fingerprint, start_plan
from .base import CycleContext, NatureInput
from .registry import method_class
from .signals import StopRequest

DIVERGENCE_LIMIT = 1.0e4  # |x| beyond this is an explosion (Lorenz-96 states stay within ~30)
FAIL_HOOK = "GENENKF_FAIL_AT_CYCLE"  # "rank:cycle": raise there (tests of the abort path)


@dataclass
class Outcome:
    status: str               # "complete", "stopped" (signal, restart written) or "skipped"
    path: Path
    summary: dict | None = None
    cycle: int = 0            # last cycle done
    restart: Path | None = None
    signal_name: str = ""
    analysis: object = None   # rank 0, path=None: the in-memory analysis (xarray.Dataset)


def assimilate_forcing(cfg: Config, method_name: str, nature: NatureInput, path: Path | None,
                       comm, log, *, resume: bool = False, model_path: str | None = None,
                       progress: bool = True, stop: StopRequest | None = None) -> Outcome:
    """Run (or resume) the assimilation of one nature run into ``path`` (None: in memory, no
    file, no restarts); collective."""
    if path is None and (resume or cfg.run.checkpoint_every):
        what = "resume" if resume else f"run.checkpoint_every={cfg.run.checkpoint_every}"
        raise collective_error(UserError(f"{what} needs an output directory (out=DIR) for its "
                                         "restart files; without one nothing is written"), comm)
    t_start = time.perf_counter()
    stop = stop or StopRequest()
    method = method_class(method_name)(cfg, model_path)
    nx, cycles = cfg.model.nx, cfg.osse.cycles
    dynamics = forecast_model(cfg)
    if dynamics.state_size != nx:
        raise collective_error(UserError(
            f"model.dynamics={cfg.model.dynamics!r} has a state of {dynamics.state_size} values "
            f"for {nx} grid points: a forecast model's whole state must be what DA analyses"),
            comm)
    try:
        identity = method.identity()  # e.g. reads the model checkpoint: alike on every rank
    except UserError as exc:
        raise collective_error(exc, comm) from None
    layout = make_layout(cfg, method, comm, nature.mask, dynamics)
    ctx = CycleContext(cfg, comm, layout, nature.mask, cfg.osse.obs_sigma ** 2, dynamics,
                       model_path, forcing_nature=nature.forcing)
    fingerprint = run_fingerprint(cfg, method_name, nature, identity)

    plan = run_on_root(comm, lambda: start_plan(path, resume, fingerprint, method_name,
                                                identity))
    kind, restart_file, summary = comm.bcast(plan)
    if kind == "skip":
        log.info("%s: already complete (summary.json), skipped", path)
        return Outcome("skipped", path, summary=summary, cycle=cycles)

    method.setup(ctx)
    history = np.full((method.history_length(), nx), np.nan)
    series = {name: np.full(cycles, np.nan) for name in analysis_file.SERIES}
    start, wall_before, counts = 1, 0.0, None
    if kind == "resume":
        state, history, series, meta, extra = load_restart(comm, restart_file, method, layout,
                                                           series)
        method.load_extra_state(extra)
        start, wall_before = meta["cycle"] + 1, meta["wall_seconds"]
        counts = meta.get("rank_counts")
        log.info("%s: resuming %s after cycle %d from %s", path, method_name, meta["cycle"],
                 restart_file)
    else:
        state = method.initial_state(ctx)

    time_axis = cfg.model.dt * cfg.osse.steps_per_cycle * np.arange(1, cycles + 1)
    writer = run_on_root(comm, lambda: analysis_file.open_writer(
        path, nx, cycles, time_axis, records.file_attrs(cfg, method, nature),
        resume=kind == "resume"))
    recorder = records.Recorder(writer, nx, start) if comm.rank == 0 else None
    loop = _Loop(cfg, method, ctx, nature, path, comm, recorder, series, fingerprint,
                 wall_before, t_start, counts)
    try:
        outcome = loop.run(state, history, start, stop, progress, log)
    except BaseException:
        if recorder is not None:
            recorder.writer.abandon(keep=path is not None and bool(restart.list_restarts(path)))
        raise
    return outcome


def make_layout(cfg: Config, method, comm, mask, dynamics) -> Layout:
    """The ranks as member groups x domains for ``run.domains`` (collective UserErrors)."""
    try:
        support = method.domain_support()
        refusal = support.refusal or ("" if dynamics.halo is not None else
                                      f"model.dynamics={cfg.model.dynamics!r} declares no halo, "
                                      "so it cannot run on domains")
        domains = choose_domains(cfg.run.domains, comm.size, cfg.model.nx,
                                 supported=not refusal, align=support.align, reason=refusal)
    except UserError as exc:
        raise collective_error(exc, comm) from None
    return Layout(comm, members=method.members(), nx=cfg.model.nx, domains=domains,
                  radius=method.halo_radius(), mask=mask, dynamics_halo=dynamics.halo,
                  align=support.align if domains > 1 else 1)


class _Loop:
    """The cycles themselves (kept in one object so checkpoints see the whole state)."""

    def __init__(self, cfg, method, ctx, nature, path, comm, recorder, series, fingerprint,
                 wall_before, t_start, rank_counts=None):
        self.cfg, self.method, self.ctx, self.nature = cfg, method, ctx, nature
        self.path, self.comm, self.recorder, self.series = path, comm, recorder, series
        self.fingerprint, self.wall_before, self.t_start = fingerprint, wall_before, t_start
        self.timers = {"forecast": 0.0, "analysis": 0.0, "diagnostics": 0.0, "checkpoint": 0.0}
        self.fail_at = _fail_hook(comm.rank)
        # Rank histogram of the truth among the analysis members after the burn-in: this
        # rank's points; a resumed run's earlier counts sit on rank 0 only (summed at the end).
        self.rank_counts = np.zeros(method.members() + 1)
        if rank_counts is not None and comm.rank == 0:
            self.rank_counts += np.asarray(rank_counts, dtype=float)

    def run(self, state, history, start, stop, progress, log) -> Outcome:
        cfg, comm, t = self.cfg, self.comm, self.ctx.layout
        cycles, every = cfg.osse.cycles, cfg.run.checkpoint_every
        owned = slice(*t.grid_range)
        self.bar = _progress_bar(comm, progress, cycles, start)
        self.pending, self.pending_first = [], start
        for cycle in range(start, cycles + 1):
            if cycle == self.fail_at:
                raise RuntimeError(f"injected failure ({FAIL_HOOK}) on rank {comm.rank} at "
                                   f"cycle {cycle}")
            tick = time.perf_counter()
            state = self.method.forecast(self.ctx, state, cfg.osse.steps_per_cycle)
            bad_forecast = _bad(state)
            if bad_forecast:
                # The ranks agree on divergence only at the end of the cycle (one Allreduce per
                # cycle); until then a finite stand-in keeps every rank's analysis well defined,
                # so all of them reach the same collectives and raise the same error.
                state = np.zeros_like(state)
            tock = time.perf_counter()
            obs = self.nature.obs[cycle - 1]
            history = np.concatenate([history[1:], obs[None]])
            state, diag = self.method.analyse(self.ctx, state, obs, cycle, history)
            tack = time.perf_counter()
            fields = records.point_fields(diag, self.nature.truth[cycle - 1, owned])
            if diag.ensemble is not None and cycle > cfg.osse.burn_in:
                self.rank_counts += metrics.rank_histogram(diag.ensemble,
                                                           self.nature.truth[cycle - 1, owned])
            flags = comm.Allreduce(np.array([float(stop.requested), float(bad_forecast),
                                             float(_bad(state) or _bad(fields))]))
            if flags[1] or flags[2]:
                self._diverged(cycle, "forecast" if flags[1] else "analysis")
            self.pending.append(fields)
            stopping = flags[0] > 0
            checkpoint = stopping or (every and cycle % every == 0 and cycle < cycles)
            if checkpoint or len(self.pending) >= records.FLUSH_EVERY or cycle == cycles:
                self._collect()
            if self.bar is not None:
                self.bar.update(1)
            self.timers["forecast"] += tock - tick
            self.timers["analysis"] += tack - tock
            self.timers["diagnostics"] += time.perf_counter() - tack
            if checkpoint:
                written = self._checkpoint(cycle, state, history)
                if stopping:
                    self._close_bar()
                    return Outcome("stopped", self.path, cycle=cycle, restart=written,
                                   signal_name=stop.name or "signal")
        self._close_bar()
        summary, analysis = self._finish(log)
        return Outcome("complete", self.path, summary=summary, cycle=cycles, analysis=analysis)

    # -- pieces
    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _diverged(self, cycle: int, stage: str) -> None:
        """Every rank raises the same DivergenceError (the flags were reduced)."""
        self._close_bar()
        what = "ensemble" if self.method.state_kind == "ensemble" else "simulation"
        last = restart.latest_restart(self.path) \
            if self.comm.rank == 0 and self.path is not None else None
        last = self.comm.bcast(last)
        keep = f"; the last good restart is kept: {last}" if last else ""
        hint = ("is model.dt stable for model.forcing?" if stage == "forecast" else
                "try more filter.inflation, filter.rtps or filter.members")
        raise collective_error(DivergenceError(
            f"filter divergence at cycle {cycle}: method {self.method.name}, variable "
            f"{stage} {what} is not finite or exceeds |x| = {DIVERGENCE_LIMIT:g} ({hint}){keep}"),
            self.comm)

    def _collect(self) -> None:
        """Gather the pending cycles' point fields to rank 0 (one Gatherv) and record them."""
        n = len(self.pending)
        if n == 0:
            return
        stacked = np.concatenate(self.pending)  # (3 n, npts_local): mean, var, crps per cycle
        gathered = self.ctx.layout.gather_points(stacked)
        first = self.pending_first
        self.pending, self.pending_first = [], first + n
        if self.comm.rank != 0:
            return
        for i, fields in enumerate(gathered.reshape(n, 3, -1)):
            self._record(first + i, fields)
        if self.bar is not None:
            self.bar.set_postfix(rmse=f"{self.series['rmse'][first + n - 2]:.3f}")

    def _record(self, cycle: int, gathered: np.ndarray) -> None:
        mean, var, crps = gathered
        truth = self.nature.truth[cycle - 1]
        i = cycle - 1
        self.series["rmse"][i] = float(metrics.rmse(mean, truth))
        self.series["spread"][i] = float(np.sqrt(np.mean(var)))
        self.series["crps"][i] = float(np.mean(crps))
        self.recorder.add(cycle, {"truth": truth, "obs": self.nature.obs[i],
                                  "analysis_mean": mean, "analysis_spread": np.sqrt(var)},
                          {name: self.series[name][i] for name in analysis_file.SERIES})

    def _checkpoint(self, cycle: int, state, history) -> Path | None:
        tick = time.perf_counter()
        full = self.ctx.layout.gather_state(state, self.method.state_kind)
        extra = self.method.extra_state()
        counts = self.comm.Allreduce(self.rank_counts)
        written = None
        if self.comm.rank == 0:
            self.recorder.flush(sync=True)
            arrays = {"state": full, "obs_history": history,
                      **{name: self.series[name][:cycle] for name in analysis_file.SERIES},
                      **{f"extra_{key}": value for key, value in extra.items()}}
            meta = {"method": self.method.name, "fingerprint": self.fingerprint,
                    **self.method.identity(),
                    "state_kind": self.method.state_kind, "output_position": cycle,
                    "wall_seconds": self.wall_before + time.perf_counter() - self.t_start,
                    "ranks": self.comm.size, "forcing_nature": self.nature.forcing,
                    "rank_counts": [int(c) for c in counts]}
            written = restart.write_restart(self.path, cycle, arrays, meta)
        self.timers["checkpoint"] += time.perf_counter() - tick
        return self.comm.bcast(written)

    def _finish(self, log) -> tuple[dict, object]:
        """``(summary, the in-memory analysis or None)``; rank 0 writes the outputs."""
        cfg, comm = self.cfg, self.comm
        # all ranks, since this start (a resumed run counts the cycles after its restart)
        moved = comm.allreduce(self.ctx.layout.sent_bytes)
        counts = comm.Allreduce(self.rank_counts)
        summary = analysis = None
        if comm.rank == 0:
            self.recorder.flush(sync=False)
            closed = self.recorder.writer.close()
            wall = self.wall_before + time.perf_counter() - self.t_start
            summary = records.build_summary(cfg, self.method, self.nature, self.series, comm.size, wall)
            summary["fingerprint"] = self.fingerprint  # what --resume checks before skipping
            summary["layout"] = {**self.ctx.layout.describe(), "bytes_sent": moved}
            if counts.sum() > 0:  # an ensemble of analysis members (not a lone simulation)
                summary["rank_histogram"] = [int(c) for c in counts]
            if self.path is None:
                analysis = closed
            else:
                analysis_file.write_summary(self.path / analysis_file.SUMMARY_FILE, summary)
                restart.clear_restarts(self.path)  # complete: the restarts are no longer needed
            log.debug("%s: timings (rank 0) %s; transposes and halos moved %d bytes between ranks",
                      self.path, ", ".join(f"{k} {v:.2f} s" for k, v in self.timers.items()),
                      moved)
        return comm.bcast(summary), analysis


# ---------------------------------------------------------------------------------------------
# helpers


def _bad(array: np.ndarray) -> bool:
    return bool(array.size) and not (np.all(np.isfinite(array))
                                     and np.max(np.abs(array)) <= DIVERGENCE_LIMIT)


def _fail_hook(rank: int) -> int:
    """The cycle at which this rank must fail (``GENENKF_FAIL_AT_CYCLE=rank:cycle``), or -1."""
    spec = os.environ.get(FAIL_HOOK, "")
    if not spec:
        return -1
    try:
        who, cycle = (int(part) for part in spec.split(":"))
    except ValueError:
        raise UserError(f"{FAIL_HOOK}={spec!r}: expected RANK:CYCLE") from None
    return cycle if who == rank else -1


def _progress_bar(comm, progress: bool, cycles: int, start: int):
    if comm.rank != 0 or not progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=cycles, initial=start - 1, unit="cycle",
                file=sys.stderr)
