"""Independent runs over the ranks: the longest-first assignment is complete, deterministic and
within Graham's 4/3 bound of the best makespan."""
import itertools

import numpy as np
import pytest

from genenkf_hpc.parallel.comm import SerialComm
from genenkf_hpc.parallel.tasks import longest_first, run_spread


def test_longest_first_worked_example():
    # 5 -> r0, 4 -> r1, 3 -> r1 (4 < 5), 3 -> r0 (5 < 7), 3 -> r1 (7 < 8)
    assert longest_first([5, 4, 3, 3, 3], 2) == [[0, 3], [1, 2, 4]]
    assert longest_first([1, 1, 1], 1) == [[0, 1, 2]]
    assert longest_first([2.0], 3) == [[0], [], []]


def _makespan(costs, parts):
    return max(sum(costs[i] for i in p) for p in parts)


@pytest.mark.parametrize("ranks", [2, 3])
def test_every_task_once_and_within_four_thirds_of_the_optimum(ranks):
    gen = np.random.default_rng(0)
    for _ in range(40):
        costs = list(gen.uniform(0.1, 10.0, size=gen.integers(1, 8)))
        parts = longest_first(costs, ranks)
        assert sorted(i for p in parts for i in p) == list(range(len(costs)))
        for p in parts:  # each rank starts with its most expensive run
            assert [costs[i] for i in p] == sorted((costs[i] for i in p), reverse=True)
        best = min(_makespan(costs, [[i for i in range(len(costs)) if a[i] == r]
                                     for r in range(ranks)])
                   for a in itertools.product(range(ranks), repeat=len(costs)))
        assert _makespan(costs, parts) <= 4 / 3 * best + 1e-12
        assert parts == longest_first(costs, ranks)  # every rank computes the same


def test_expensive_runs_are_not_queued_on_one_rank():
    """Two 2-minute Generative EnKF runs among many cheap ones: one on each rank (a round robin
    over this task order would put both on rank 0)."""
    costs = [120, 1, 120, 1, 1, 1, 1, 1]
    parts = longest_first(costs, 2)
    assert {parts[0][0], parts[1][0]} == {0, 2}


def test_run_spread_returns_every_result_in_task_order():
    assert run_spread(SerialComm(), ["a", "bb", "ccc"], len, [1, 3, 2]) == [1, 2, 3]


def test_progress_reports_each_task_and_the_share_of_the_estimated_work():
    calls = []
    run_spread(SerialComm(), [1, 2, 3], str, [1.0, 3.0, 2.0], lambda *a: calls.append(a))
    assert calls == [(1, 3, 3.0, 6.0), (2, 3, 5.0, 6.0), (3, 3, 6.0, 6.0)]  # longest first
