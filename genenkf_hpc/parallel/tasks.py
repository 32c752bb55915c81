"""Independent tasks spread over the ranks (the campaign's runs), balanced by estimated cost.

:func:`longest_first` is the LPT rule (Graham 1969): take the tasks from the most to the least
expensive and give each to the rank with the least work so far; its makespan is at most 4/3 of
the optimum, and the expensive runs (the Generative EnKF's) never end up queued behind each
other on one rank while another idles. The assignment is pure arithmetic on the costs, so every
rank computes the same one without communicating; :func:`run_spread` runs this rank's share and
gathers every result on every rank.
"""
from __future__ import annotations

from typing import Callable, Sequence


def longest_first(costs: Sequence[float], ranks: int) -> list[list[int]]:
    """Task indices per rank, each rank's list in the order to run (most expensive first).
    Ties go to the lower task index and the lower rank, so the result is deterministic."""
    if ranks < 1:
        raise ValueError(f"ranks={ranks}: must be >= 1")
    order = sorted(range(len(costs)), key=lambda i: (-float(costs[i]), i))
    load = [0.0] * ranks
    out: list[list[int]] = [[] for _ in range(ranks)]
    for i in order:
        r = min(range(ranks), key=lambda j: (load[j], j))
        out[r].append(i)
        load[r] += max(float(costs[i]), 0.0)
    return out


def run_spread(comm, tasks: Sequence, fn: Callable, costs: Sequence[float],
               progress: Callable | None = None) -> list:
    """``fn(task)`` for this rank's share of ``tasks`` (:func:`longest_first` on ``costs``);
    every rank returns all the results, in task order (collective: one allgather).
    ``progress(done, total, cost_done, cost_total)`` is called after each of this rank's
    tasks."""
    mine = longest_first(costs, comm.size)[comm.rank]
    total = sum(max(float(costs[i]), 0.0) for i in mine)
    done, spent = {}, 0.0
    for i in mine:
        done[i] = fn(tasks[i])
        spent += max(float(costs[i]), 0.0)
        if progress is not None:
            progress(len(done), len(mine), spent, total)
    merged: dict[int, object] = {}
    for part in comm.allgather(done):
        merged.update(part)
    return [merged[i] for i in range(len(tasks))]
