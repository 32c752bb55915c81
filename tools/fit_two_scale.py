"""Fit the single-scale forecast models of configs/two_scale.toml to an archive of its truth.

    python tools/fit_two_scale.py [-c configs/two_scale.toml] [--seed 3000] [--time 500]

The archive is a long two-scale nature run ([nature] of the config, F = the single
osse.forcings entry) from seed ``--seed`` (never a scored or tuning seed), sampled once per
cycle interval after the spin-up. Prints the effective forcing of the plain single-scale model
and the cubic parameterisation (Wilks 2005) as TOML, with how much of the one-interval model
error each leaves.
"""
from __future__ import annotations

import argparse

import numpy as np

from genenkf_hpc import osse
from genenkf_hpc.config import load_config
from genenkf_hpc.dynamics.fit import fit_polynomial, one_step_errors, residual_rms
from genenkf_hpc.dynamics.from_config import nature_clock, nature_model
from genenkf_hpc.dynamics.lorenz96 import Lorenz96


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default="configs/two_scale.toml")
    parser.add_argument("--seed", type=int, default=3000)
    parser.add_argument("--time", type=float, default=500.0, help="archive length (time units)")
    args = parser.parse_args()
    cfg = load_config(args.config)
    (forcing,) = cfg.osse.forcings
    truth_model = nature_model(cfg, forcing)
    clock = nature_clock(cfg)
    x = osse.nature_initial_state(truth_model, clock.spinup_steps, args.seed, forcing)
    interval = cfg.model.dt * cfg.osse.steps_per_cycle
    n = int(round(args.time / interval))
    X = truth_model.trajectory(x, n * clock.steps_per_cycle, clock.steps_per_cycle)
    plain = Lorenz96(cfg.model.nx, cfg.model.dt, forcing)  # the resolved part, true F
    xs, U = one_step_errors(plain, X, cfg.osse.steps_per_cycle)
    F_eff = forcing - float(np.mean(U))
    cubic = fit_polynomial(xs, U, 3)
    print(f"# archive: seed {args.seed}, {n} states every {interval:g} time units, "
          f"X mean {X.mean():.3f} std {X.std():.3f}")
    print(f"# one-interval model error of single-scale F={forcing:g}: rms "
          f"{np.sqrt(np.mean(U ** 2)):.4f}; after the constant fit "
          f"{residual_rms(xs, U, np.array([np.mean(U)])):.4f}; "
          f"after cubic fit {residual_rms(xs, U, cubic):.4f}")
    print(f"forcing = {F_eff:.4f}          # plain single-scale model: effective F")
    print("params = {" + ", ".join(f"b{i} = {b:.6g}" for i, b in enumerate(cubic))
          + f"}}   # with forcing = {forcing:g}")


if __name__ == "__main__":
    main()
