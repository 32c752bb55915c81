"""Pseudo-ensemble methods: the Generative EnKF and its Gaussian ablation.

Both keep one simulation of the (possibly biased) model and, every cycle, draw a k-member
pseudo-ensemble for this rank's member block, which the parallel LETKF of
:class:`~.base.PseudoEnsembleMethod` analyses; the simulation is then nudged towards the analysis
(ALGORITHM.md section 6).

- ``genenkf``: members from the observation-conditioned diffusion model (Asahi et al. 2023),
  by DDIM/DDPM from noise, by DDIB or by stochastic (SDEdit) encoding of the simulation state,
  with classifier-free guidance. In posterior mode (the paper's) the members are conditioned
  on the observations up to the analysis time, so the LETKF uses the current one a second
  time; in prior mode only on earlier ones, and the LETKF assimilates the current one once.
- ``gaussian_pseudo``: members x_sim + scale L z with L L^T the climatological covariance of the
  training distribution (F = model.forcing trajectories, the [dataset] settings): what a
  pseudo-ensemble without the diffusion model achieves.
"""
from __future__ import annotations

import numpy as np

from .. import logs, rng
from ..errors import UserError
from .base import CycleContext, DomainSupport, PseudoEnsembleMethod


# Upper bound of one cycle's innovation estimate of the pseudo-inflation: where the members
# barely spread, the estimate divides by almost nothing and one cycle could otherwise throw the
# running value far off.
MAX_PSEUDO_INFLATION = 50.0


def _blend_members(block: np.ndarray, state: np.ndarray, alpha: float) -> np.ndarray:
    """The variant without ``use_ensemble_mean``: each member is first blended with the
    simulation, x_m <- (1 - alpha) x_sim + alpha x_m."""
    return (1.0 - alpha) * state[None, :] + alpha * block


class GenerativeEnKF(PseudoEnsembleMethod):
    """Generative EnKF: diffusion-model pseudo-ensemble + LETKF + nudging."""

    name = "genenkf"

    def obs_lag(self) -> int:
        """1 in prior mode: the members see the observations before the analysis time only."""
        from ..diffusion.compatibility import experiment_obs_lag

        return experiment_obs_lag(self.cfg)

    def history_length(self) -> int:
        """The network's observation history (the checkpoint's, once loaded by setup), plus the
        current observation the prior mode leaves out."""
        bundle = getattr(self, "bundle", None)
        seq_len = bundle.seq_len if bundle is not None else max(1, self.cfg.network.seq_len)
        return seq_len + self.obs_lag()

    def settings(self) -> dict:
        g = self.cfg.generative
        return {"checkpoint": self._checkpoint_path(), "sampler": g.sampler,
                "sampling_steps": g.sampling_steps, "eta": g.eta, "guidance": g.guidance,
                "mode": g.mode, "encoding": g.encoding, "strength": g.strength,
                "alpha": g.alpha, "pseudo_inflation": g.inflation,
                "adaptive_inflation": g.adaptive_inflation,
                "use_ensemble_mean": g.use_ensemble_mean, "recentre": g.recentre,
                "inversion_refine": g.inversion_refine, "clip": g.clip,
                "precision": g.precision, "fixed_batch": g.fixed_batch,
                "radius": self.cfg.filter.radius, "taper": self.cfg.filter.taper,
                "inflation": self.cfg.filter.inflation, "rtps": self.cfg.filter.rtps,
                "network_evaluations_per_cycle": self.network_evaluations()}

    def _checkpoint_path(self) -> str:
        return self.model_path or self.cfg.generative.checkpoint

    def _checkpoint(self) -> tuple[dict, str]:
        """The checkpoint dict and its content hash, read once per method object."""
        if getattr(self, "_loaded", None) is None:
            from ..io.checkpoint import content_hash, load_checkpoint

            path = self._checkpoint_path()
            if not path:
                raise UserError("--method genenkf needs a trained model: pass --model FILE or "
                                "set generative.checkpoint (a `genenkf train` checkpoint)")
            self._loaded = (load_checkpoint(path), content_hash(path))
        return self._loaded

    def identity(self) -> dict:
        """The model's content hash and training step: --resume refuses another model."""
        ckpt, sha256 = self._checkpoint()
        return {"model_sha256": sha256, "model_step": int(ckpt.get("step", 0))}

    def results(self) -> dict:
        """summary.json: the model's identity, the mismatches accepted on purpose and the
        pseudo-ensemble inflation used (after burn-in; adaptive or fixed)."""
        used = self.inflation_series[self.cfg.osse.burn_in:]
        used = used[np.isfinite(used)]
        inflation = {"mean": float(np.mean(used)) if used.size else float("nan"),
                     "std": float(np.std(used)) if used.size else float("nan"),
                     "final": float(self.pseudo_inflation),
                     "initial": self.cfg.generative.inflation,
                     "adaptive": self.cfg.generative.adaptive_inflation}
        return {**self.identity(), "accepted_mismatches": [
            m.to_dict() for m in getattr(self, "accepted_mismatches", [])],
            "pseudo_inflation": inflation}

    def extra_state(self) -> dict[str, np.ndarray]:
        """The running pseudo-inflation (and its record): resume == uninterrupted."""
        return {"pseudo_inflation": np.array([self.pseudo_inflation]),
                "pseudo_inflation_series": self.inflation_series}

    def load_extra_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.pseudo_inflation = float(arrays["pseudo_inflation"][0])
        self.inflation_series = np.array(arrays["pseudo_inflation_series"], dtype=np.float64)

    def _load(self):
        """The sampling model, on this rank's device (built once: the layout asks for it
        before setup)."""
        if getattr(self, "bundle", None) is None:
            from ..diffusion.bundle import bundle_from_checkpoint
            from ..parallel.ddp import use_device
            from ..parallel.environment import read_environment

            g = self.cfg.generative
            ckpt, _ = self._checkpoint()
            # each rank of a multi-GPU job samples on its own GPU (its local rank)
            device = use_device(g.device, read_environment().local_rank, "generative.device")
            self.bundle = bundle_from_checkpoint(ckpt, str(device), g.precision,
                                                 name=self._checkpoint_path())
        return self.bundle

    def domain_support(self) -> DomainSupport:
        """A local network samples on domains (tiles aligned to its downsampling factor)."""
        from ..diffusion.networks import check_grid

        bundle = self._load()
        field = bundle.receptive_field
        if field is None:  # its grid is one of the model-experiment checks of setup
            return DomainSupport(f"model {self._checkpoint_path()} is a whole-ring network "
                                 "(network.kind=unet); only a local network (network.kind="
                                 "local) samples on domains")
        check_grid(field, bundle.nx, self.cfg.model.nx, self._checkpoint_path())
        return DomainSupport(align=int(field["downsampling"]))

    def setup(self, ctx: CycleContext) -> None:
        import torch

        from ..diffusion import compatibility
        from ..diffusion.bundle import on_grid
        from ..diffusion.networks import check_grid
        from ..parallel.comm import collective_error
        from ..parallel.environment import threads_per_process

        g, path = self.cfg.generative, self._checkpoint_path()
        torch.set_num_threads(threads_per_process())
        ckpt, _ = self._checkpoint()
        experiment = compatibility.Experiment(self.cfg, ctx.mask, ctx.forcing_nature)
        try:  # every rank of ctx.comm checks the same things: one collective error
            self.accepted_mismatches = compatibility.check(ckpt, experiment, g.allow_mismatch,
                                                           path)
            bundle = self._load()
            if bundle.receptive_field is not None:  # a whole ring's nx is in the table above
                check_grid(bundle.receptive_field, bundle.nx, ctx.nx, path)
        except UserError as exc:
            raise collective_error(exc, ctx.comm) from None
        for m in self.accepted_mismatches if ctx.comm.rank == 0 else ():
            logs.get_logger().warning("model %s used despite a mismatch (%s): %s", path,
                                      compatibility.ALLOW_KEY, m.text)
        if bundle.receptive_field is not None:
            self.bundle = on_grid(bundle, ctx.nx)
        self.segment = sampling_segment(ctx.layout, self.bundle)
        self.mask = ctx.mask
        self.pseudo_inflation = float(g.inflation)  # cycle 1's; adaptive: learnt from there
        self.inflation_series = np.full(self.cfg.osse.cycles, np.nan)

    def network_evaluations(self) -> int:
        """Network passes per cycle per member batch (guidance doubles the batch, not passes)."""
        g = self.cfg.generative
        from ..diffusion.sampling import strided_times

        timesteps = self.cfg.diffusion.timesteps
        if hasattr(self, "bundle"):
            timesteps = self.bundle.schedule.timesteps
        ddpm = g.sampler == "ddpm" or g.sampling_steps >= timesteps
        steps = timesteps if ddpm else g.sampling_steps
        encoded = g.encoding != "noise"
        n = len(strided_times(timesteps, steps, g.strength if encoded else 1.0))
        inversion = n * (1 + g.inversion_refine) if g.encoding == "ddib" else 0
        return n + inversion

    def sample_members(self, member_ids, cycle, state, obs_history):
        from ..diffusion.bundle import sample_pseudo_ensemble

        g = self.cfg.generative
        seen = obs_history[:len(obs_history) - self.obs_lag()]  # prior mode: not y_t
        rows = seen[~np.all(np.isnan(seen), axis=1)]  # NaN rows before the first cycles
        block = sample_pseudo_ensemble(
            self.bundle, rows, self.mask, member_ids, cycle, self.cfg.osse.seed,
            sampler=g.sampler, steps=g.sampling_steps, eta=g.eta, guidance=g.guidance,
            start_state=state, encoding=g.encoding, strength=g.strength,
            inversion_refine=g.inversion_refine, clip=g.clip or None, segment=self.segment,
            batch_members=g.batch_members, batch_rows=g.fixed_batch)
        if not g.use_ensemble_mean:
            block = _blend_members(block, state, g.alpha)
        return block

    def adjust_members(self, ctx, block, state):
        """``generative.recentre``: keep the pseudo-ensemble's anomalies (the diffusion model's
        uncertainty) around the simulation forecast instead of its own mean. In posterior mode
        the anomalies were conditioned on the current observation too, so the LETKF still
        uses it twice through them."""
        if self.cfg.generative.recentre:
            block = block - ctx.layout.member_sum(block) / self.members() + state[None, :]
        return block

    def adjust_grid(self, ctx, grid, obs, cycle):
        """The pseudo-ensemble's inflation (its anomalies times the square root): the network's
        members are under-dispersed and the design knobs did not fix it (docs/results.md).
        Fixed at ``generative.inflation``, or, with ``generative.adaptive_inflation`` = w,
        learnt from the innovations: after each analysis the running value moves a fraction w
        towards this cycle's estimate (:func:`~genenkf_hpc.da.inflation.innovation_inflation`
        of the raw members, bounded to [1, MAX_PSEUDO_INFLATION]). Cycle t uses the value
        learnt up to t - 1, so y_t does not also set the spread it is weighed against."""
        from ..da.inflation import inflate, innovation_inflation, innovation_terms
        from ..parallel.reduction import exact_sum

        g, rho = self.cfg.generative, self.pseudo_inflation
        self.inflation_series[cycle - 1] = rho
        if g.adaptive_inflation > 0:
            columns, observed = observed_owned_points(ctx)
            terms = innovation_terms(grid[:, columns], obs[observed])
            # the owned points of all ranks partition the ring: each point counted once, and
            # the same sums on any rank count
            d2, var, count = exact_sum(ctx.comm, np.vstack([terms, np.ones(terms.shape[1])]))
            estimate = innovation_inflation(d2, var, count, ctx.obs_var)
            if np.isfinite(estimate):
                estimate = min(max(estimate, 1.0), MAX_PSEUDO_INFLATION)
                self.pseudo_inflation = (1.0 - g.adaptive_inflation) * rho + \
                    g.adaptive_inflation * estimate
        return grid if rho == 1.0 else inflate(grid, rho)

    def update_simulation(self, ctx, state, analysis_mean, analysis_grid):
        if not self.cfg.generative.use_ensemble_mean:
            return analysis_mean  # the members were blended with the simulation already
        return super().update_simulation(ctx, state, analysis_mean, analysis_grid)


def observed_owned_points(ctx):
    """This rank's observed owned points: their positions in its grid block's columns and
    their global indices. Built once per run (the observing network is fixed)."""
    if "observed_owned" not in ctx.cache:
        t = ctx.layout
        owned = t.local_columns[t.owned_pos]
        observed = ctx.mask[owned]
        ctx.cache["observed_owned"] = (t.owned_pos[observed], owned[observed])
    return ctx.cache["observed_owned"]


def sampling_segment(layout, bundle):
    """Where this rank samples: None on one domain or without a layout (the whole ring), else
    its segment with a tile halo of the network's receptive field, filled from the neighbouring
    domains."""
    if layout is None or layout.domains == 1:
        return None
    from ..diffusion.tiled import Segment, tile_halo_width

    halo = tile_halo_width(bundle.receptive_field)
    exchange = layout.tile_halo(halo)
    return Segment(layout.nx, *layout.segment_range, halo, lambda x: exchange.padded(x, halo))


def climatological_covariance(cfg) -> np.ndarray:
    """Covariance ``(nx, nx)`` of the training distribution: up to 64 of the dataset's runs
    (its source model, spun up, states every 5 cycles) — the same distribution `genenkf
    dataset` samples, regenerated here so no file is needed."""
    from ..workflows.dataset import simulate_trajectories, training_runs

    model, every, spinup = training_runs(cfg)
    d = cfg.dataset
    states = simulate_trajectories(range(min(d.trajectories, 64)), model, spinup,
                                   min(d.steps, 500) // 5, d.seed, every * 5)
    return np.cov(states.reshape(-1, model.nx), rowvar=False)


class GaussianPseudo(PseudoEnsembleMethod):
    """Ablation: Gaussian pseudo-ensemble with the climatological covariance, centred on the
    simulation state, spread scaled by ``generative.gaussian_scale``."""

    name = "gaussian_pseudo"

    def domain_support(self) -> DomainSupport:
        return DomainSupport("gaussian_pseudo draws from a dense (nx, nx) covariance")

    def settings(self) -> dict:
        return {"scale": self.cfg.generative.gaussian_scale, "alpha": self.cfg.generative.alpha,
                "radius": self.cfg.filter.radius, "taper": self.cfg.filter.taper,
                "inflation": self.cfg.filter.inflation, "rtps": self.cfg.filter.rtps}

    def setup(self, ctx: CycleContext) -> None:
        cov = climatological_covariance(self.cfg)
        # Symmetric square root: robust where the covariance is near-singular.
        w, v = np.linalg.eigh(cov)
        self.sqrt_cov = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T

    def sample_members(self, member_ids, cycle, state, obs_history):
        nx = state.shape[0]
        z = np.stack([rng.stream(self.cfg.osse.seed, rng.Purpose.GAUSSIAN_PSEUDO, int(m),
                                 cycle).standard_normal(nx) for m in member_ids]) \
            if len(member_ids) else np.empty((0, nx))
        return state[None, :] + self.cfg.generative.gaussian_scale * z @ self.sqrt_cov
