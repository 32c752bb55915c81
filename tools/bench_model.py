#!/usr/bin/env python3
"""Scaling model of one DA cycle (forecast + transposes or halo exchanges + LETKF), extrapolated.

    .venv/bin/python tools/bench_model.py --from docs/benchmarks/results.csv     # the table
    .venv/bin/python tools/bench_model.py --nx 1e9 --members 64 --local-obs 9 \
        --nodes 1000 --cores-per-node 128 --bandwidth 25e9 --latency 1.5e-6

Per-core rates come from measurements (``--from``: the single-rank rows ``letkf_strong`` and
``forecast_strong`` of ``tools/bench_suite.py``'s results.csv) or ``--letkf-gflops`` /
``--forecast-rate``; the LETKF's flop count per grid point is ``da.bench.letkf_flops_per_point``
and its rate in flop/s is taken as independent of (k, p). Network: ``--bandwidth`` bytes/s
injected per node, ``--latency`` seconds per message; an ``Alltoallv`` of P ranks costs each
rank ``(P - 1) latency`` (pairwise exchange) plus the busiest node's bytes / bandwidth.

Layouts (docs/parallel.md has the transposes and their byte counts):
- ``1d-block``: what genenkf runs: k members over P ranks in contiguous blocks, N grid points
  over P ranks; ranks placed on nodes in blocks (``srun`` / ``mpiexec`` default), so the
  member-owning ranks (the first min(k, P)) share the first nodes;
- ``1d-cyclic``: the same with the ranks spread round-robin over nodes (``srun
  --distribution=cyclic``, ``mpiexec --map-by node``): the member owners on different nodes;
- ``2d``: P = k x S ranks (``run.domains = S`` with k member groups of one member): every
  member's forecast split into S subdomains (halo exchanges), transposes only inside each
  subdomain's group of k ranks;
- ``domains``: P domains, one member group (``run.domains = P``): every rank holds all k
  members of its N / P points; the forecast exchanges the dynamics' halo (``--dyn-halo``
  points, float64, every RK4 stage) with its 2 neighbours and the LETKF the observations within
  the radius (``--halo``); no transpose (docs/parallel.md, "Layouts").
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from genenkf_hpc.da.bench import letkf_flops_per_point  # noqa: E402
from genenkf_hpc.da.letkf import observation_function_flops  # noqa: E402

LAYOUTS = ("1d-block", "1d-cyclic", "2d", "domains")


@dataclass(frozen=True)
class Machine:
    """A cluster: nodes, cores and ranks per node, network, per-core rates."""

    nodes: int
    cores_per_node: int
    ranks_per_node: int
    bandwidth: float  # bytes/s injected (and received) per node
    latency: float  # s per message
    letkf_flops: float  # flop/s of one core in the LETKF kernel
    forecast_rate: float  # grid-point RK4 steps/s of one core (numpy, one thread per rank)

    @property
    def ranks(self) -> int:
        return self.nodes * self.ranks_per_node

    @property
    def threads(self) -> int:
        return max(1, self.cores_per_node // self.ranks_per_node)


@dataclass(frozen=True)
class Problem:
    nx: int
    members: int
    local_obs: int  # p, local observations per grid point
    halo: int = 8  # observed columns within the radius on both sides (2 floor(r) / interval)
    steps: int = 1  # RK4 steps per cycle
    dyn_halo: int = 3  # ghost points of one tendency evaluation (Lorenz-96: 2 left + 1 right)
    spectral_upper: float = 4.5  # bound on the local B spectrum (bench letkf: ~4.5)

    @property
    def flops_per_point(self) -> int:
        k, p = self.members, self.local_obs
        return min(letkf_flops_per_point(k, p, "ensemble"),
                   letkf_flops_per_point(k, p, "observation",
                                         observation_function_flops(p, self.spectral_upper)))


def cycle(prob: Problem, mach: Machine, layout: str) -> dict:
    """Seconds and bytes of one cycle on the busiest rank / node (pure)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: one of {', '.join(LAYOUTS)}")
    n, k, P, q = prob.nx, prob.members, mach.ranks, mach.ranks_per_node
    pts = math.ceil(n / P)  # grid points per rank (analysis)
    analysis = pts * prob.flops_per_point / (mach.letkf_flops * mach.threads)
    if layout == "domains":
        forecast = k * pts * prob.steps / mach.forecast_rate
        # per step 4 RK4 stages, per cycle one analysis halo; 2 neighbours each time
        rank_bytes = 8 * k * (4 * prob.steps * prob.dyn_halo + prob.halo)
        node_bytes = q * rank_bytes
        messages = 2 * (4 * prob.steps + 1)
        exchange = messages * mach.latency + node_bytes / mach.bandwidth
        total = forecast + analysis + exchange
        return {"layout": layout, "ranks": P, "forecast_s": forecast, "analysis_s": analysis,
                "transposes_s": exchange, "latency_s": messages * mach.latency,
                "bandwidth_s": node_bytes / mach.bandwidth, "rank_bytes": rank_bytes,
                "node_bytes": node_bytes, "cycle_s": total,
                "bound": max(("forecast", forecast), ("analysis", analysis),
                             ("halo exchanges", exchange), key=lambda x: x[1])[0]}
    if layout == "2d":
        if P < k:
            raise ValueError(f"2d layout needs ranks >= members ({P} < {k})")
        P = k * (P // k)  # k groups of S = P // k ranks (any remainder idles)
        pts = math.ceil(n / P)
        analysis = pts * prob.flops_per_point / (mach.letkf_flops * mach.threads)
        sub = math.ceil(n / (P // k))  # grid points of one member's subdomain on one rank
        forecast = sub * prob.steps / mach.forecast_rate
        # each rank sends its subdomain slice to the k - 1 other ranks of its group
        rank_bytes = 8 * (sub + prob.halo) * (k - 1) / k
        node_bytes = q * rank_bytes
        messages = k - 1
    else:
        kmax = math.ceil(k / P)  # members per member-owning rank
        forecast = kmax * n * prob.steps / mach.forecast_rate
        owners = min(k, P)
        busiest = min(owners, q) if layout == "1d-block" else math.ceil(owners / mach.nodes)
        sent = 8 * kmax * (n + P * prob.halo)  # a member owner sends its rows of every column
        received = 8 * k * (pts + prob.halo)  # a grid owner receives all k members
        rank_bytes = max(sent, received)
        node_bytes = max(busiest * sent, q * received)
        messages = P - 1
    transpose = 2 * (messages * mach.latency + node_bytes / mach.bandwidth)
    total = forecast + analysis + transpose
    return {"layout": layout, "ranks": P, "forecast_s": forecast, "analysis_s": analysis,
            "transposes_s": transpose, "latency_s": 2 * messages * mach.latency,
            "bandwidth_s": 2 * node_bytes / mach.bandwidth, "rank_bytes": 2 * rank_bytes,
            "node_bytes": 2 * node_bytes, "cycle_s": total,
            "bound": max(("forecast", forecast), ("analysis", analysis),
                         ("transposes", transpose), key=lambda x: x[1])[0]}


def sampling(prob: Problem, mach: Machine, evaluations: int, rate: float, tile_halo: int,
             itemsize: int = 4) -> dict:
    """The Generative EnKF's pseudo-ensemble on the ``domains`` layout (pure): every rank
    denoises k members on its N / P points plus a tile halo on each side, ``evaluations``
    network passes per member, at ``rate`` point-member evaluations per second per core (all
    the rank's threads); each pass refreshes the tile halo from the 2 neighbours."""
    pts = math.ceil(prob.nx / mach.ranks)
    compute = prob.members * evaluations * (pts + 2 * tile_halo) / (rate * mach.threads)
    rank_bytes = evaluations * prob.members * 2 * tile_halo * itemsize
    node_bytes = mach.ranks_per_node * rank_bytes
    exchange = 2 * evaluations * mach.latency + node_bytes / mach.bandwidth
    return {"sampling_s": compute, "tile_overhead": 2 * tile_halo / pts,
            "exchange_s": exchange, "node_bytes": node_bytes, "total_s": compute + exchange}


def latency_crossover(prob: Problem, mach: Machine) -> float:
    """Ranks at which the 1-D transposes' latency 2 (P - 1) alpha equals the analysis
    time N F / (P a): P ~ sqrt(N F / (2 alpha a))."""
    return math.sqrt(prob.nx * prob.flops_per_point
                     / (2 * mach.latency * mach.letkf_flops * mach.threads))


def bandwidth_ratio_2d(prob: Problem, mach: Machine) -> float:
    """2-D layout: transpose bandwidth time / analysis time = 16 k C a / (F B) (the N and
    the node count cancel): above 1 the transposes are the bottleneck."""
    c, a = mach.cores_per_node, mach.letkf_flops
    return 16 * prob.members * c * a / (prob.flops_per_point * mach.bandwidth)


def rates_from_csv(path: Path, local_obs: int = 9) -> tuple[float, float]:
    """(LETKF flop/s per core, forecast grid-point steps/s per core) from the single-rank,
    single-threaded rows of a bench_suite results.csv; ``local_obs``: p of that LETKF run
    (the suite's default radius 4 with the box taper: 9)."""
    rows = list(csv.DictReader(open(path, newline="")))

    def one(sweep):
        hit = [r for r in rows if r["sweep"] == sweep and r["ranks"] == "1" and r["throughput"]]
        if not hit:
            sys.exit(f"{path}: no single-rank {sweep} row")
        return hit[0]

    letkf = one("letkf_strong")
    flops = float(letkf["flops_per_point"]) if letkf.get("flops_per_point") else \
        Problem(0, int(letkf["members"]), local_obs).flops_per_point
    return float(letkf["throughput"]) * flops, float(one("forecast_strong")["throughput"])


def _fmt(x) -> str:
    if isinstance(x, float) or (isinstance(x, int) and abs(x) >= 1e6):
        return f"{x:.3g}"
    return str(x)


def table(prob: Problem, mach: Machine, layouts=LAYOUTS) -> str:
    cols = ("layout", "ranks", "forecast_s", "analysis_s", "transposes_s", "latency_s",
            "bandwidth_s", "node_bytes", "cycle_s", "bound")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for layout in layouts:
        try:
            r = cycle(prob, mach, layout)
        except ValueError as exc:
            lines.append(f"| {layout} | {exc} |")
            continue
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="csv", help="bench_suite results.csv with the per-core rates")
    p.add_argument("--letkf-gflops", type=float, help="LETKF GFLOP/s per core")
    p.add_argument("--forecast-rate", type=float, help="forecast grid-point steps/s per core")
    p.add_argument("--measured-local-obs", type=int, default=9,
                   help="--from: local observations of the measured LETKF (default 9)")
    p.add_argument("--nx", type=float, default=1e9)
    p.add_argument("--members", type=int, default=64)
    p.add_argument("--local-obs", type=int, nargs="+", default=[9, 500])
    p.add_argument("--halo", type=int, default=8)
    p.add_argument("--dyn-halo", type=int, default=3, help="ghost points of the dynamics")
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--cores-per-node", type=int, default=128)
    p.add_argument("--ranks-per-node", type=int, nargs="+", default=[128, 1])
    p.add_argument("--sample-rate", type=float, help="point-member network evaluations per "
                   "second per core (genenkf bench sample): adds the Generative EnKF's sampling")
    p.add_argument("--evaluations", type=int, default=3, help="network passes per member")
    p.add_argument("--tile-halo", type=int, default=20, help="tile halo of the local network")
    p.add_argument("--bandwidth", type=float, default=25e9, help="bytes/s per node")
    p.add_argument("--latency", type=float, default=1.5e-6, help="s per message")
    args = p.parse_args(argv)
    if args.csv:
        flops, fc = rates_from_csv(Path(args.csv), args.measured_local_obs)
    else:
        if args.letkf_gflops is None or args.forecast_rate is None:
            p.error("give --from RESULTS.csv or both --letkf-gflops and --forecast-rate")
        flops, fc = args.letkf_gflops * 1e9, args.forecast_rate
    print(f"per core: LETKF {flops / 1e9:.3g} GFLOP/s, forecast {fc:.3g} grid-point steps/s; "
          f"network {args.bandwidth / 1e9:g} GB/s per node, {args.latency * 1e6:g} us per "
          f"message; {args.nodes} nodes x {args.cores_per_node} cores\n")
    for p_loc in args.local_obs:
        prob = Problem(int(args.nx), args.members, p_loc, args.halo, dyn_halo=args.dyn_halo)
        for q in args.ranks_per_node:
            mach = Machine(args.nodes, args.cores_per_node, q, args.bandwidth, args.latency,
                           flops, fc)
            print(f"N = {prob.nx:.3g}, k = {prob.members}, p = {p_loc} "
                  f"({prob.flops_per_point} flop/point), {q} rank(s) per node x "
                  f"{mach.threads} thread(s), P = {mach.ranks}:\n")
            print(table(prob, mach))
            print(f"\n1-D latency crossover: P ~ {latency_crossover(prob, mach):.3g} ranks; "
                  f"2-D bandwidth/analysis ratio {bandwidth_ratio_2d(prob, mach):.3g}\n")
            if args.sample_rate:
                g = sampling(prob, mach, args.evaluations, args.sample_rate, args.tile_halo)
                print(f"Generative EnKF sampling on domains ({args.evaluations} passes per "
                      f"member): {g['sampling_s']:.3g} s compute (tile overhead "
                      f"{g['tile_overhead']:.2%}), {g['exchange_s']:.3g} s halo exchanges "
                      f"({g['node_bytes']:.3g} bytes per node)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
