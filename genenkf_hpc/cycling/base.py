"""The interface of a cycled DA method, and the parallel LETKF step the methods share.

A method is a small class registered by exact name (:mod:`.registry`). The driver owns the
loop, the forecast, the diagnostics, the output and the restarts; a method owns its state's
initialisation and its analysis. Two kinds of state:

- ``"ensemble"`` (enkf, etkf, letkf): a k-member forecast ensemble; a rank holds its member
  block on its segment of the ring ``(k_g, n_d)``, forecasts it, and the analysis brings every
  member of its grid block together (transposes and/or a halo exchange) and back;
- ``"simulation"`` (noda, nudging, genenkf, gaussian_pseudo): one simulation, a rank holding
  its segment ``(n_d,)`` (the same on every member group).

Where the state lives is ``ctx.layout`` (:class:`~genenkf_hpc.parallel.layout.Layout`,
``run.domains``): on one domain (the member layout) the segment is the whole ring, member
blocks are spread over the ranks and the analysis transposes them; on domains every rank holds
a segment, the forecast exchanges the dynamics' halo and the analysis the localisation halo.
A method that cannot run on domains says why in :meth:`CyclingMethod.domain_support`.

:class:`PseudoEnsembleMethod` is the pattern of the Generative EnKF: sample a pseudo-ensemble for
this rank's member block with :meth:`~PseudoEnsembleMethod.sample_members`, run the same
member -> grid transpose and parallel LETKF as ``letkf``, assemble the analysis mean on every
rank and nudge the simulation towards it. A subclass only writes ``sample_members``.

Randomness inside a method must come from ``rng.stream(seed, purpose, member, cycle)`` (never
the rank), so ``mpiexec -n R`` reproduces one process (CONTRACT section 6).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .. import osse
from ..config import Config
from ..parallel.layout import Layout
from ..parallel.transpose import Transposer


@dataclass
class NatureInput:
    """Truth and observations of one forcing, replicated on every rank: ``(cycles, nx)``."""

    forcing: float
    truth: np.ndarray
    obs: np.ndarray
    mask: np.ndarray
    source: str  # the nature file, or "generated from the config"


@dataclass
class CycleContext:
    """What a method sees: the config, the communicator, the forecast model and the layout of
    its ensemble."""

    cfg: Config
    comm: object              # parallel.comm.SerialComm | MPIComm
    layout: Layout            # members = method.members(), halo = method.halo_radius()
    mask: np.ndarray          # (nx,) bool, observed points
    obs_var: float            # observation error variance sigma^2 (R = obs_var I)
    dynamics: object          # the forecast model (genenkf_hpc.dynamics.Dynamics)
    model_path: str | None = None  # --model FILE (diffusion checkpoint for genenkf)
    cache: dict = field(default_factory=dict)  # per-run constants (e.g. the local obs table)
    forcing_nature: float = float("nan")  # F of the nature run (what a model must fit)

    def __post_init__(self):
        if isinstance(self.layout, Transposer):  # callers from before domains
            self.layout = Layout.of_transposer(self.layout)

    @property
    def nx(self) -> int:
        return self.cfg.model.nx

    @property
    def transposer(self) -> Layout:
        """The layout under its name before domains (it has the Transposer interface)."""
        return self.layout


@dataclass(frozen=True)
class DomainSupport:
    """Whether a method runs on domains: ``refusal`` says why not ('' when it does);
    ``align``: segments in whole units of this many points (a local network's downsampling
    factor)."""

    refusal: str = ""
    align: int = 1


@dataclass
class Diagnostics:
    """What the driver records after an analysis, for this rank's grid block (owned points).

    ``ensemble``: the analysis members ``(k, npts_local)`` (mean, spread and CRPS come from it),
    or None for a single state. ``mean``: ``(npts_local,)``, the recorded analysis mean when it
    is not the ensemble mean (e.g. a single simulation)."""

    ensemble: np.ndarray | None = None
    mean: np.ndarray | None = None


class CyclingMethod:
    """Base of every method. Subclasses set ``name``/``state_kind`` and write ``analyse``."""

    name: ClassVar[str] = ""
    state_kind: ClassVar[str] = "ensemble"  # or "simulation"
    # The config sections whose values change the method's numbers (the run fingerprint that
    # --resume checks); "dataset" for anything built from the training distribution.
    fingerprint_sections: ClassVar[tuple[str, ...]] = (
        "model", "nature", "osse", "filter", "nudging", "paramest", "generative", "network",
        "diffusion", "dataset")

    def __init__(self, cfg: Config, model_path: str | None = None):
        self.cfg = cfg
        self.model_path = model_path

    # -- layout
    def members(self) -> int:
        """Ensemble size k used for the transposes (1 for a lone simulation)."""
        return self.cfg.filter.members

    def halo_radius(self) -> float:
        """Halo of the grid-major blocks: the localisation radius for a local analysis."""
        return 0.0

    def history_length(self) -> int:
        """How many past observation vectors the method wants (``obs_history`` rows)."""
        return 1

    def settings(self) -> dict:
        """The method's parameters, recorded in summary.json."""
        return {}

    def identity(self) -> dict:
        """Inputs beyond the config that change the numbers (e.g. a model checkpoint's content
        hash and step): hashed into the ``--resume`` fingerprint, recorded in summary.json and
        in restart files. Plain JSON values; may be called before :meth:`setup`."""
        return {}

    def domain_support(self) -> DomainSupport:
        """Whether the method runs on domains (called before :meth:`setup`)."""
        return DomainSupport()

    def results(self) -> dict:
        """Method-specific results added to summary.json at the end of the run (e.g. an
        estimated parameter); every rank holds them."""
        return {}

    # -- life cycle
    def setup(self, ctx: CycleContext) -> None:
        """Called once before the first cycle (load a model, precompute tables)."""

    def initial_state(self, ctx: CycleContext) -> np.ndarray:
        """``(k_local, n_d)`` member block, or ``(n_d,)`` simulation segment."""
        raise NotImplementedError

    def forecast(self, ctx: CycleContext, state: np.ndarray, steps: int) -> np.ndarray:
        """The state advanced by ``steps`` forecast-model steps (from cycle c-1 to c)."""
        return ctx.layout.integrate(ctx.dynamics, state, steps)

    def analyse(self, ctx: CycleContext, state: np.ndarray, obs: np.ndarray, cycle: int,
                obs_history: np.ndarray) -> tuple[np.ndarray, Diagnostics]:
        """Analysis at ``cycle`` (1-based) of the forecast ``state`` (this rank's part) with
        ``obs (nx,)`` (NaN where unobserved; the whole ring); ``obs_history (history_length,
        nx)``, newest last (NaN rows before the first cycles). Returns the new state and this
        rank's diagnostics."""
        raise NotImplementedError

    # -- restart: anything beyond the state the method needs to continue bit for bit
    def extra_state(self) -> dict[str, np.ndarray]:
        return {}

    def load_extra_state(self, arrays: dict[str, np.ndarray]) -> None:
        pass


class EnsembleMethod(CyclingMethod):
    """A k-member ensemble of the simulation model, distributed by member blocks."""

    state_kind = "ensemble"

    def initial_state(self, ctx: CycleContext) -> np.ndarray:
        return initial_states(ctx, ctx.layout.member_ids)


class SimulationMethod(CyclingMethod):
    """One deterministic simulation, replicated on every rank.

    It starts from member 0 of the initial ensemble (F + N(0,1), spun up with the model's F),
    so the simulation methods and the ensemble methods start from comparable states."""

    state_kind = "simulation"

    def members(self) -> int:
        return 1

    def initial_state(self, ctx: CycleContext) -> np.ndarray:
        return initial_states(ctx, [0])[0]

    def simulation_diagnostics(self, ctx: CycleContext, state: np.ndarray) -> Diagnostics:
        return Diagnostics(mean=ctx.layout.owned(state))


def initial_states(ctx: CycleContext, members) -> np.ndarray:
    """Members' spun-up initial states on this rank's segment ``(len(members), n_d)``: member
    m's random state from (seed, m) (:func:`osse.random_states`), cut to the segment, spun up
    on the layout, so any decomposition starts from the one-process states bit for bit."""
    x0 = ctx.layout.segment(osse.random_states(members, ctx.dynamics, ctx.cfg.osse.seed))
    return ctx.layout.integrate(ctx.dynamics, x0, ctx.cfg.model.spinup_steps)


def local_letkf(ctx: CycleContext, grid: np.ndarray, obs: np.ndarray,
                extra: np.ndarray | None = None):
    """LETKF analysis of this rank's owned points from its grid-major block.

    ``grid (k, n_columns_local)`` is ``Transposer.to_grid`` of the background (owned + halo
    columns, ascending global order); returns ``xa (k, npts_local)``. The observation operator
    is the identity at the observed points, so ``yb`` is the background at the observed columns.

    ``extra (k, m, npts_local)``: further variables located at the owned points and not
    observed (e.g. a global parameter's ensemble, repeated at every point), analysed with the
    same local weights as the state at their point (the LETKF is linear in the analysed
    variables); then returns ``(xa, extra_a (k, m, npts_local))``.
    """
    from ..da.letkf import letkf_analysis

    t, f = ctx.layout, ctx.cfg.filter
    k = grid.shape[0]
    if t.npts == 0:
        empty = np.empty((k, 0))
        return empty if extra is None else (empty, np.empty((k, extra.shape[1], 0)))
    cols = t.local_columns
    observed = ctx.mask[cols]
    points, obs_coords = cols[t.owned_pos], cols[observed]
    xb = grid[:, t.owned_pos]
    copies = 1 if extra is None else 1 + extra.shape[1]
    if copies > 1:
        xb = np.concatenate([xb, extra.reshape(k, -1)], axis=1)
    xa = letkf_analysis(xb, grid[:, observed], obs[obs_coords], ctx.obs_var,
                        np.tile(points, copies), obs_coords, ctx.nx, f.radius, taper=f.taper,
                        inflation=f.inflation, rtps=f.rtps, rtpp=f.rtpp, solve=f.solve,
                        table=local_table(ctx, copies))
    if extra is None:
        return xa
    return xa[:, :t.npts], xa[:, t.npts:].reshape(extra.shape)


def local_table(ctx: CycleContext, copies: int = 1):
    """The local observation table of this rank's owned points (``da.localization``), repeated
    ``copies`` times for variables analysed at the same points; built once per run (the
    observing network is fixed)."""
    from ..da.localization import local_obs_table

    key = ("letkf_table", copies)
    if key not in ctx.cache:
        t, f = ctx.layout, ctx.cfg.filter
        cols = t.local_columns
        index, weight = local_obs_table(cols[t.owned_pos], cols[ctx.mask[cols]], ctx.nx,
                                        f.radius, f.taper)
        ctx.cache[key] = (np.tile(index, (copies, 1)), np.tile(weight, (copies, 1)))
    return ctx.cache[key]


class PseudoEnsembleMethod(SimulationMethod):
    """One simulation + a pseudo-ensemble sampled per rank, analysed by the parallel LETKF.

    Cycle (ALGORITHM.md section 6): the driver forecasts the simulation; then
    ``sample_members(member_ids, cycle, state, obs_history)`` gives this rank's members,
    ``to_grid`` + LETKF + the analysis mean on every rank, and :meth:`update_simulation`
    (default: x <- (1 - alpha) x + alpha mean(analysis), ``generative.alpha``).
    """

    def members(self) -> int:
        return self.cfg.generative.members

    def halo_radius(self) -> float:
        return self.cfg.filter.radius

    def sample_members(self, member_ids: np.ndarray, cycle: int, state: np.ndarray,
                       obs_history: np.ndarray) -> np.ndarray:
        """Pseudo-ensemble members ``member_ids`` on this rank's segment ``(k_local, n_d)`` (the
        simulation ``state`` is the segment too); member m's randomness from ``rng.stream(seed,
        purpose, m, cycle)``. ``member_ids`` may be empty."""
        raise NotImplementedError

    def adjust_members(self, ctx: CycleContext, block: np.ndarray,
                       state: np.ndarray) -> np.ndarray:
        """Hook between sampling and the transpose (default: the members as sampled)."""
        return block

    def adjust_grid(self, ctx: CycleContext, grid: np.ndarray, obs: np.ndarray,
                    cycle: int) -> np.ndarray:
        """Hook between the transpose and the LETKF, on this rank's grid-major block ``(k,
        n_columns_local)`` where every column holds all k members (default: unchanged)."""
        return grid

    def update_simulation(self, ctx: CycleContext, state: np.ndarray, analysis_mean: np.ndarray,
                          analysis_grid: np.ndarray) -> np.ndarray:
        """New simulation segment from the analysis mean on the segment ``(n_d,)``;
        ``analysis_grid`` is this rank's ``(k, npts_local)`` analysis block, for variants that
        need the members."""
        alpha = self.cfg.generative.alpha
        return (1.0 - alpha) * state + alpha * analysis_mean

    def analyse(self, ctx, state, obs, cycle, obs_history):
        t = ctx.layout
        block = np.asarray(self.sample_members(t.member_ids, cycle, state, obs_history),
                           dtype=np.float64)
        block = self.adjust_members(ctx, block, state)
        grid = self.adjust_grid(ctx, t.to_grid(block), obs, cycle)
        xa = local_letkf(ctx, grid, obs)
        mean = t.allgather_points(xa.mean(axis=0)[None])[0]
        new_state = self.update_simulation(ctx, state, mean, xa)
        return new_state, Diagnostics(ensemble=xa)
