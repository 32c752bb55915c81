"""`genenkf bench sample|train` return their measurements with the settings used."""
from argparse import Namespace

import torch

from genenkf_hpc.config import load_config
from genenkf_hpc.parallel.comm import SerialComm
from genenkf_hpc.workflows.bench_diffusion import bench_sample, bench_train

from mpi_utils import REPO

torch.set_num_threads(1)


def test_bench_sample_and_train():
    cfg = load_config(REPO / "configs" / "tiny.toml")
    args = Namespace(nx=None, members=4, steps=2, repeat=1, device="cpu", checkpoint=None,
                     batch=4)
    s = bench_sample(args, cfg, SerialComm())
    assert s["bench"] == "sample" and s["members"] == 4 and s["steps"] == 2
    assert s["members_per_s"] > 0 and s["nx"] == 16 and s["ranks"] == 1
    t = bench_train(args, cfg, SerialComm())
    assert t["bench"] == "train" and t["global_batch"] == 4 and t["samples_per_s_per_rank"] > 0
