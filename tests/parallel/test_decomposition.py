"""Block decompositions: every item owned exactly once, contiguous, balanced, any rank count."""
import numpy as np
import pytest

from genenkf_hpc.parallel.decomposition import (Blocks, block_counts, block_range, block_starts,
                                                owner)
from genenkf_hpc.parallel.transpose import halo_columns


@pytest.mark.parametrize("n", [0, 1, 2, 7, 16, 18, 40, 1001])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 64])
def test_blocks_partition_items(n, size):
    counts = block_counts(n, size)
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    assert np.all(np.diff(counts) <= 0)  # larger blocks first
    covered = np.concatenate([np.arange(*block_range(n, size, r)) for r in range(size)])
    assert np.array_equal(covered, np.arange(n))  # contiguous, in rank order, no overlap
    if n:
        own = owner(np.arange(n), n, size)
        for r in range(size):
            start, stop = block_range(n, size, r)
            assert np.all(own[start:stop] == r)


def test_more_ranks_than_items_gives_empty_blocks():
    assert block_counts(3, 5).tolist() == [1, 1, 1, 0, 0]
    assert block_range(3, 5, 4) == (3, 3)
    assert Blocks(3, 5).indices(4).size == 0
    assert block_starts(7, 3).tolist() == [0, 3, 5, 7]


def test_bad_arguments():
    with pytest.raises(ValueError):
        block_counts(3, 0)
    with pytest.raises(ValueError):
        block_range(3, 2, 2)
    with pytest.raises(ValueError):
        owner([3], 3, 2)


def test_halo_columns_periodic_and_masked():
    assert halo_columns(0, 3, 10, 2.0).tolist() == [0, 1, 2, 3, 4, 8, 9]
    mask = np.zeros(10, dtype=bool)
    mask[::2] = True
    assert halo_columns(0, 3, 10, 2.5, mask).tolist() == [0, 1, 2, 4, 8]
    assert halo_columns(2, 2, 10, 3.0).size == 0
    assert halo_columns(4, 6, 10, 50.0).tolist() == list(range(10))  # radius covers the ring
