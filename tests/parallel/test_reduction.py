"""exact_sum: a sum over ranks that does not depend on how the values are split (the MPI
end-to-end check is tests/cycling/test_generative.py's adaptive inflation over 3 ranks)."""
import numpy as np

from genenkf_hpc.parallel.comm import SerialComm
from genenkf_hpc.parallel.reduction import LIMIT, RESOLUTION, exact_sum


class TwinComm(SerialComm):
    """Two ranks holding the same values."""

    size = 2

    def allgather(self, obj):
        return [obj, obj]


def test_the_sum_does_not_depend_on_the_order_of_the_values():
    scales = 10.0 ** np.linspace(-3, 3, 20_000)  # terms of very different sizes
    values = np.random.default_rng(0).standard_normal((2, 20_000)) * scales
    total = exact_sum(SerialComm(), values)
    assert total.shape == (2,)
    # a float sum's round-off changes with the order; this one does not
    for order in [np.arange(20_000)[::-1], np.random.default_rng(1).permutation(20_000)]:
        np.testing.assert_array_equal(exact_sum(SerialComm(), values[:, order]), total)
    np.testing.assert_allclose(total, values.sum(axis=1), atol=20_000 * RESOLUTION)


def test_ranks_add_exactly_and_empty_blocks_count_zero():
    values = np.random.default_rng(2).uniform(-5, 5, (3, 777))
    np.testing.assert_array_equal(exact_sum(TwinComm(), values), 2 * exact_sum(SerialComm(),
                                                                                values))
    np.testing.assert_array_equal(exact_sum(SerialComm(), np.zeros((3, 0))), np.zeros(3))


def test_non_finite_values_are_bounded():
    total = exact_sum(SerialComm(), np.array([[np.inf, 1.0], [np.nan, 1.0], [-1e40, 0.0]]))
    np.testing.assert_array_equal(total, [LIMIT + 1.0, 1.0, -LIMIT])
