"""The cycle loop of ``genenkf assimilate`` for one nature run (one F_nature).

Per cycle c = 1..cycles (ARCHITECTURE "Time"): forecast the state from c-1 to c with the
simulation model (every rank its own member block, or the replicated simulation), analyse with
the observation of cycle c, gather the diagnostics of every grid block to rank 0, which streams
them to ``analysis.nc.partial``. Every ``run.checkpoint_every`` cycles, and when SIGTERM/SIGUSR1
arrives, the full state goes to a restart file; ``resume=True`` continues from the newest one
and reproduces the uninterrupted run bit for bit (all randomness is keyed by member and cycle).
A non-finite or exploding state stops the run with a :class:`DivergenceError`.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import metrics
from ..config import Config
from ..dynamics import lorenz96
from ..errors import DivergenceError, UserError
from ..io import analysis_file, restart
from ..parallel.comm import collective_error, run_on_root
from ..parallel.transpose import Transposer
from .base import CycleContext, Diagnostics
from .registry import method_class
from .signals import StopRequest

DIVERGENCE_LIMIT = 1.0e4  # |x| beyond this is an explosion (Lorenz-96 states stay within ~30)
FLUSH_EVERY = 64          # cycles buffered on rank 0 between writes to analysis.nc.partial
FAIL_HOOK = "GENENKF_FAIL_AT_CYCLE"  # "rank:cycle": raise there (tests of the abort path)
# Config sections whose values change the numbers of an assimilation run (restart fingerprint).
_STATE_SECTIONS = ("model", "osse", "filter", "nudging", "generative", "network", "diffusion")


@dataclass
class NatureInput:
    """Truth and observations of one forcing, replicated on every rank: ``(cycles, nx)``."""

    forcing: float
    truth: np.ndarray
    obs: np.ndarray
    mask: np.ndarray
    source: str  # the nature file, or "generated from the config"


@dataclass
class Outcome:
    status: str               # "complete", "stopped" (signal, restart written) or "skipped"
    path: Path
    summary: dict | None = None
    cycle: int = 0            # last cycle done
    restart: Path | None = None
    signal_name: str = ""


def assimilate_forcing(cfg: Config, method_name: str, nature: NatureInput, path: Path, comm,
                       log, *, resume: bool = False, model_path: str | None = None,
                       progress: bool = True, stop: StopRequest | None = None) -> Outcome:
    """Run (or resume) the assimilation of one nature run into ``path``; collective."""
    t_start = time.perf_counter()
    stop = stop or StopRequest()
    method = method_class(method_name)(cfg, model_path)
    nx, cycles = cfg.model.nx, cfg.osse.cycles
    transposer = Transposer(comm, method.members(), nx, method.halo_radius(), nature.mask)
    ctx = CycleContext(cfg, comm, transposer, nature.mask, cfg.osse.obs_sigma ** 2, model_path)
    fingerprint = _fingerprint(cfg, method_name, nature)

    plan = run_on_root(comm, lambda: _plan(path, resume, fingerprint, method_name))
    kind, restart_file, summary = comm.bcast(plan)
    if kind == "skip":
        log.info("%s: already complete (summary.json), skipped", path)
        return Outcome("skipped", path, summary=summary, cycle=cycles)

    method.setup(ctx)
    history = np.full((method.history_length(), nx), np.nan)
    series = {name: np.full(cycles, np.nan) for name in analysis_file.SERIES}
    start, wall_before = 1, 0.0
    if kind == "resume":
        state, history, series, meta, extra = _load_restart(comm, restart_file, method, transposer,
                                                           series)
        method.load_extra_state(extra)
        start, wall_before = meta["cycle"] + 1, meta["wall_seconds"]
        log.info("%s: resuming %s after cycle %d from %s", path, method_name, meta["cycle"],
                 restart_file)
    else:
        state = method.initial_state(ctx)

    time_axis = cfg.model.dt * cfg.osse.steps_per_cycle * np.arange(1, cycles + 1)
    writer = run_on_root(comm, lambda: analysis_file.AnalysisWriter(
        path / analysis_file.ANALYSIS_FILE, nx, cycles, time_axis,
        _file_attrs(cfg, method, nature), resume=kind == "resume"))
    recorder = _Recorder(writer, nx, start) if comm.rank == 0 else None
    loop = _Loop(cfg, method, ctx, nature, path, comm, recorder, series, fingerprint,
                 wall_before, t_start)
    try:
        outcome = loop.run(state, history, start, stop, progress, log)
    except BaseException:
        if recorder is not None:
            recorder.writer.abandon(keep=bool(restart.list_restarts(path)))
        raise
    return outcome


class _Loop:
    """The cycles themselves (kept in one object so checkpoints see the whole state)."""

    def __init__(self, cfg, method, ctx, nature, path, comm, recorder, series, fingerprint,
                 wall_before, t_start):
        self.cfg, self.method, self.ctx, self.nature = cfg, method, ctx, nature
        self.path, self.comm, self.recorder, self.series = path, comm, recorder, series
        self.fingerprint, self.wall_before, self.t_start = fingerprint, wall_before, t_start
        self.timers = {"forecast": 0.0, "analysis": 0.0, "diagnostics": 0.0, "checkpoint": 0.0}
        self.fail_at = _fail_hook(comm.rank)

    def run(self, state, history, start, stop, progress, log) -> Outcome:
        cfg, comm, t = self.cfg, self.comm, self.ctx.transposer
        m, cycles, every = cfg.model, cfg.osse.cycles, cfg.run.checkpoint_every
        owned = slice(*t.grid_range)
        self.bar = _progress_bar(comm, progress, cycles, start)
        self.pending, self.pending_first = [], start
        for cycle in range(start, cycles + 1):
            if cycle == self.fail_at:
                raise RuntimeError(f"injected failure ({FAIL_HOOK}) on rank {comm.rank} at "
                                   f"cycle {cycle}")
            tick = time.perf_counter()
            state = lorenz96.integrate(state, m.forcing, m.dt, cfg.osse.steps_per_cycle)
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
            fields = _point_fields(diag, self.nature.truth[cycle - 1, owned])
            flags = comm.Allreduce(np.array([float(stop.requested), float(bad_forecast),
                                             float(_bad(state) or _bad(fields))]))
            if flags[1] or flags[2]:
                self._diverged(cycle, "forecast" if flags[1] else "analysis")
            self.pending.append(fields)
            stopping = flags[0] > 0
            checkpoint = stopping or (every and cycle % every == 0 and cycle < cycles)
            if checkpoint or len(self.pending) >= FLUSH_EVERY or cycle == cycles:
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
        summary = self._finish(log)
        return Outcome("complete", self.path, summary=summary, cycle=cycles)

    # -- pieces
    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _diverged(self, cycle: int, stage: str) -> None:
        """Every rank raises the same DivergenceError (the flags were reduced)."""
        self._close_bar()
        what = "ensemble" if self.method.state_kind == "ensemble" else "simulation"
        last = restart.latest_restart(self.path) if self.comm.rank == 0 else None
        last = self.comm.bcast(last)
        keep = f"; the last good restart is kept: {last}" if last else ""
        hint = ("is model.dt stable for model.forcing?" if stage == "forecast" else
                "try more filter.inflation, filter.rtps or filter.members")
        raise collective_error(DivergenceError(
            f"filter divergence at cycle {cycle}: method {self.method.name}, variable "
            f"{stage} {what} is not finite or exceeds |x| = {DIVERGENCE_LIMIT:g} ({hint}){keep}"))

    def _collect(self) -> None:
        """Gather the pending cycles' point fields to rank 0 (one Gatherv) and record them."""
        n = len(self.pending)
        if n == 0:
            return
        stacked = np.concatenate(self.pending)  # (3 n, npts_local): mean, var, crps per cycle
        gathered = self.ctx.transposer.gather_points(stacked)
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
        t = self.ctx.transposer
        full = t.gather_members(state) if self.method.state_kind == "ensemble" else state
        extra = self.method.extra_state()
        written = None
        if self.comm.rank == 0:
            self.recorder.flush(sync=True)
            arrays = {"state": full, "obs_history": history,
                      **{name: self.series[name][:cycle] for name in analysis_file.SERIES},
                      **{f"extra_{key}": value for key, value in extra.items()}}
            meta = {"method": self.method.name, "fingerprint": self.fingerprint,
                    "state_kind": self.method.state_kind, "output_position": cycle,
                    "wall_seconds": self.wall_before + time.perf_counter() - self.t_start,
                    "ranks": self.comm.size, "forcing_nature": self.nature.forcing}
            written = restart.write_restart(self.path, cycle, arrays, meta)
        self.timers["checkpoint"] += time.perf_counter() - tick
        return self.comm.bcast(written)

    def _finish(self, log) -> dict:
        cfg, comm = self.cfg, self.comm
        moved = comm.allreduce(self.ctx.transposer.sent_bytes)  # all ranks, this segment
        summary = None
        if comm.rank == 0:
            self.recorder.flush(sync=False)
            self.recorder.writer.close()
            wall = self.wall_before + time.perf_counter() - self.t_start
            summary = build_summary(cfg, self.method, self.nature, self.series, comm.size, wall)
            summary["fingerprint"] = self.fingerprint  # what --resume checks before skipping
            analysis_file.write_summary(self.path / analysis_file.SUMMARY_FILE, summary)
            restart.clear_restarts(self.path)  # complete: the restarts are no longer needed
            log.debug("%s: timings (rank 0) %s; the transposes moved %d bytes between ranks",
                      self.path, ", ".join(f"{k} {v:.2f} s" for k, v in self.timers.items()),
                      moved)
        return comm.bcast(summary)


class _Recorder:
    """Rank 0's buffer of recorded cycles, written to the partial analysis file in blocks."""

    def __init__(self, writer, nx: int, first_cycle: int):
        self.writer, self.nx = writer, nx
        self.first = first_cycle
        self.fields: dict[str, list] = {name: [] for name in analysis_file.FIELDS}
        self.series: dict[str, list] = {name: [] for name in analysis_file.SERIES}

    def add(self, cycle: int, fields: dict, series: dict) -> None:
        assert cycle == self.first + len(self.series["rmse"])
        for name, value in fields.items():
            self.fields[name].append(value)
        for name, value in series.items():
            self.series[name].append(value)
        if len(self.series["rmse"]) >= FLUSH_EVERY:
            self.flush(sync=False)

    def flush(self, sync: bool) -> None:
        n = len(self.series["rmse"])
        if n:
            self.writer.write(self.first, {k: np.stack(v) for k, v in self.fields.items()},
                              {k: np.asarray(v) for k, v in self.series.items()})
            self.first += n
            for store in (self.fields, self.series):
                for values in store.values():
                    values.clear()
        if sync:
            self.writer.sync()


def build_summary(cfg: Config, method, nature: NatureInput, series: dict, ranks: int,
                  wall_seconds: float) -> dict:
    """summary.json (CONTRACT section 5): time means after the burn-in, plus the settings."""
    after = slice(cfg.osse.burn_in, cfg.osse.cycles)
    rmse = float(np.mean(series["rmse"][after]))
    spread = float(np.mean(series["spread"][after]))
    return {
        "method": method.name,
        "forcing_nature": nature.forcing,
        "forcing_model": cfg.model.forcing,
        "members": method.members(),
        "cycles": cfg.osse.cycles,
        "burn_in": cfg.osse.burn_in,
        "rmse": rmse,
        "spread": spread,
        "spread_ratio": spread / rmse if rmse > 0 else None,
        "crps": float(np.mean(series["crps"][after])),
        "ranks": ranks,
        "wall_seconds": wall_seconds,
        "nx": cfg.model.nx,
        "obs_interval": cfg.osse.obs_interval,
        "obs_sigma": cfg.osse.obs_sigma,
        "steps_per_cycle": cfg.osse.steps_per_cycle,
        "seed": cfg.osse.seed,
        "nature": nature.source,
        "settings": method.settings(),
    }


# ---------------------------------------------------------------------------------------------
# helpers


def _bad(array: np.ndarray) -> bool:
    return bool(array.size) and not (np.all(np.isfinite(array))
                                     and np.max(np.abs(array)) <= DIVERGENCE_LIMIT)


def _point_fields(diag: Diagnostics, truth: np.ndarray) -> np.ndarray:
    """``(3, npts_local)``: analysis mean, ensemble variance, CRPS at this rank's points."""
    if diag.ensemble is None:
        mean = np.asarray(diag.mean, dtype=np.float64)
        return np.stack([mean, np.zeros_like(mean), np.abs(mean - truth)])
    ens = diag.ensemble
    mean = ens.mean(axis=0) if diag.mean is None else np.asarray(diag.mean, dtype=np.float64)
    var = ens.var(axis=0, ddof=1) if ens.shape[0] > 1 else np.zeros(ens.shape[1])
    return np.stack([mean, var, metrics.crps_ensemble(ens, truth, average=False)])


def _fingerprint(cfg: Config, method_name: str, nature: NatureInput) -> str:
    """Identity of what a restart continues: the settings that change the numbers + the data."""
    sections = cfg.to_dict()
    h = hashlib.sha256(json.dumps({"method": method_name,
                                   **{s: sections[s] for s in _STATE_SECTIONS}},
                                  sort_keys=True).encode())
    for array in (nature.truth, nature.obs, nature.mask):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:16]


def _plan(path: Path, resume: bool, fingerprint: str, method_name: str):
    """Rank 0: ``("skip", None, summary)``, ``("resume", restart, None)`` or ``("fresh", ...)``;
    prepares the directory for a fresh run (no stale summary, output or restarts)."""
    summary_path = path / analysis_file.SUMMARY_FILE
    if resume and summary_path.is_file() and (path / analysis_file.ANALYSIS_FILE).is_file():
        summary = json.loads(summary_path.read_text())
        if summary.get("method") == method_name:
            if summary.get("fingerprint") != fingerprint:
                raise UserError(f"cannot resume: {path} holds a complete {method_name} run with "
                                "other settings or data; rerun without --resume to replace it, "
                                "or choose another --out")
            return "skip", None, summary
    latest = restart.latest_restart(path) if resume else None
    if latest is not None:
        _, meta = restart.read_restart(latest)
        if meta.get("fingerprint") != fingerprint or meta.get("method") != method_name:
            raise UserError(f"cannot resume from {latest}: it was written by method "
                            f"{meta.get('method')!r} with other settings or data; rerun with the "
                            "original config and inputs, or without --resume to start again")
        return "resume", latest, None
    analysis_file.prepare_fresh_dir(path)
    restart.clear_restarts(path)
    return "fresh", None, None


def _load_restart(comm, restart_file, method, transposer: Transposer, series):
    loaded = run_on_root(comm, lambda: restart.read_restart(restart_file))
    arrays, meta = loaded if comm.rank == 0 else ({}, None)
    meta = comm.bcast(meta)
    names = comm.bcast(sorted(arrays) if comm.rank == 0 else None)
    full = {name: comm.Bcast(arrays.get(name)) for name in names}
    state = full["state"]
    if method.state_kind == "ensemble":
        if state.shape != (transposer.members, transposer.nx):
            raise collective_error(UserError(
                f"restart file {restart_file} holds an ensemble of shape {state.shape}, expected "
                f"({transposer.members}, {transposer.nx})"))
        state = transposer.scatter_members(state)
    cycle = meta["cycle"]
    for name in analysis_file.SERIES:
        series[name][:cycle] = full[name]
    extra = {name[len("extra_"):]: value for name, value in full.items()
             if name.startswith("extra_")}
    return state, full["obs_history"], series, meta, extra


def _file_attrs(cfg: Config, method, nature: NatureInput) -> dict:
    return {"method": method.name, "forcing_nature": nature.forcing,
            "forcing_model": cfg.model.forcing, "members": method.members(),
            "dt": cfg.model.dt, "steps_per_cycle": cfg.osse.steps_per_cycle,
            "obs_interval": cfg.osse.obs_interval, "obs_sigma": cfg.osse.obs_sigma,
            "seed": cfg.osse.seed, "burn_in": cfg.osse.burn_in,
            "settings": json.dumps(method.settings(), sort_keys=True)}


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
