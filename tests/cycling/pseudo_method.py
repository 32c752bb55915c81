"""A pseudo-ensemble method for tests: members = simulation + N(0, 1), member m's noise from
``rng.stream(seed, GAUSSIAN_PSEUDO, m, cycle)``. Run as a script it registers the method and
runs the CLI (for mpiexec)."""
import sys

import numpy as np

from genenkf_hpc import rng
from genenkf_hpc.cycling.base import PseudoEnsembleMethod
from genenkf_hpc.cycling.registry import register


class NoisyPseudo(PseudoEnsembleMethod):
    name = "test_pseudo"

    def sample_members(self, member_ids, cycle, state, obs_history):
        assert obs_history.shape == (self.history_length(), state.size)
        noise = np.array([rng.stream(self.cfg.osse.seed, rng.Purpose.GAUSSIAN_PSEUDO, m, cycle)
                          .standard_normal(state.size) for m in member_ids]).reshape(-1, state.size)
        return state + noise


def install() -> None:
    register("test_pseudo", NoisyPseudo)


if __name__ == "__main__":
    install()
    from genenkf_hpc.cli import main

    sys.exit(main(sys.argv[1:]))
