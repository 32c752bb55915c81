"""Random streams: tied to (seed, purpose, keys), distinct for distinct key tuples."""
import numpy as np

from genenkf_hpc import rng


def draw(*args):
    return rng.stream(*args).standard_normal(4)


def test_same_keys_same_stream():
    np.testing.assert_array_equal(draw(3, rng.Purpose.BENCH, 1, 2), draw(3, rng.Purpose.BENCH, 1, 2))


def test_trailing_zero_key_is_another_stream():
    """SeedSequence pads entropy with zeros: (s, P, m, 0) must not equal (s, P, m)."""
    assert not np.allclose(draw(0, rng.Purpose.DIFFUSION_SAMPLING, 5, 0),
                           draw(0, rng.Purpose.DIFFUSION_SAMPLING, 5))
    assert not np.allclose(draw(0, rng.Purpose.DATASET_SPLIT),
                           draw(0, rng.Purpose.DATASET_SPLIT, 0))
    assert rng.torch_seed(1, rng.Purpose.TRAINING, 0) != rng.torch_seed(1, rng.Purpose.TRAINING)


def test_purposes_and_keys_separate_streams():
    base = draw(0, rng.Purpose.OBSERVATION_NOISE, 1, 2)
    for other in (draw(0, rng.Purpose.ENSEMBLE_INITIAL, 1, 2), draw(0, rng.Purpose.OBSERVATION_NOISE, 2, 1),
                  draw(1, rng.Purpose.OBSERVATION_NOISE, 1, 2)):
        assert not np.allclose(base, other)
