"""Every collective of training and of `bench train` gets tensors on the process group's device
(issue 12, defect 1: NCCL refuses CPU tensors, so DDP on GPUs died at its first step).

A CPU machine cannot run NCCL, so a stand-in for ``torch.distributed`` rejects any tensor that
is not on the model's device. The model lives on the "meta" device (shapes without data): the
training step runs up to its first reduction, which must arrive on "meta" too; there the
stand-in stops the run (a meta tensor has no values to continue with).
"""
import logging
from argparse import Namespace

import pytest
import torch
import torch.distributed as dist

from genenkf_hpc.cli import main
from genenkf_hpc.config import load_config
from genenkf_hpc.diffusion.unet import UNetArgs
from genenkf_hpc.io.hdf5 import read_metadata
from genenkf_hpc.io.rundir import RunContext
from genenkf_hpc.parallel import ddp
from genenkf_hpc.parallel.comm import SerialComm
from genenkf_hpc.parallel.environment import LaunchEnvironment

from testpaths import CONFIGS

TINY = str(CONFIGS / "tiny.toml")
META = torch.device("meta")


class WrongDevice(AssertionError):
    pass


class ReachedReduction(Exception):
    """The run got to a reduction with its tensor on the right device."""


class DeviceCheckingGroup:
    """``torch.distributed`` as seen by genenkf_hpc.parallel.ddp, for a group on ``device``."""

    ReduceOp = dist.ReduceOp

    def __init__(self, device: torch.device):
        self.device = device
        self.calls: list[tuple[str, torch.device | None]] = []

    def _check(self, name: str, device) -> None:
        self.calls.append((name, device))
        if device is None or torch.device(device) != self.device:
            raise WrongDevice(f"{name}: tensor on {device}, the group's device is {self.device}")

    def all_reduce(self, tensor, op=None, group=None):
        self._check("all_reduce", tensor.device)
        raise ReachedReduction

    def broadcast(self, tensor, src=0, group=None):
        self._check("broadcast", tensor.device)

    def broadcast_object_list(self, objects, src=0, group=None, device=None):
        self._check("broadcast_object_list", device)

    def barrier(self, group=None, device_ids=None):
        self.calls.append(("barrier", None))

    def is_initialized(self):
        return True

    def destroy_process_group(self, group=None):
        pass


@pytest.fixture
def group(monkeypatch):
    fake = DeviceCheckingGroup(META)
    monkeypatch.setattr(ddp, "dist", fake)
    # DDP's own gradient all-reduce is torch's business (it follows the module's device)
    monkeypatch.setattr(ddp, "wrap", lambda model, ds: model)
    return fake


def meta_setup(world_size=2):
    return ddp.DistributedSetup(0, world_size, 0, META, "fake")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("collectives") / "data"
    assert main(["dataset", "-c", TINY, "--out", str(out)]) == 0
    return out


def test_helpers_send_tensors_on_the_group_device(group):
    ds = meta_setup()
    with pytest.raises(ReachedReduction):
        ddp.all_reduce_sum(torch.ones(2, dtype=torch.float64), ds)
    with pytest.raises(ReachedReduction):
        ddp.all_reduce_values([1.0, torch.tensor(2.0)], ds)
    with pytest.raises(NotImplementedError):  # broadcast returned: the meta copy has no data
        ddp.broadcast_tensor(torch.ones(3), ds)
    ddp.broadcast_object("run/dir", ds)
    assert [name for name, _ in group.calls] == ["all_reduce", "all_reduce", "broadcast",
                                                 "broadcast_object_list"]


def test_training_step_reduces_on_the_model_device(group, data_dir, tmp_path):
    from genenkf_hpc.workflows.train import Trainer

    cfg = load_config(TINY, ["train.steps=3", "run.progress=false"])
    meta = read_metadata(data_dir)
    arch = UNetArgs(nx=cfg.model.nx, base_width=cfg.network.base_width,
                    multipliers=tuple(cfg.network.multipliers), groups=cfg.network.groups,
                    attention=cfg.network.attention, seq_len=cfg.network.seq_len)
    ctx = RunContext(path=tmp_path, comm=SerialComm(), env=LaunchEnvironment("torchrun", 0, 0, 2),
                     log=logging.getLogger("test"), cfg=cfg)
    args = Namespace(data=str(data_dir), resume=False, stop_at=None, eval_states=0,
                     eval_members=2)
    trainer = Trainer(args, cfg, ctx, meta, arch, meta_setup())
    assert next(trainer.net.parameters()).device == META
    with pytest.raises(ReachedReduction):
        trainer.train()
    assert group.calls[-1] == ("all_reduce", META)


def test_bench_train_reduces_on_the_model_device(group):
    from genenkf_hpc.workflows.bench_diffusion import _bench_train

    cfg = load_config(TINY)
    args = Namespace(nx=None, batch=4, steps=1, device=None)
    with pytest.raises(ReachedReduction):
        _bench_train(args, cfg, meta_setup(), LaunchEnvironment("torchrun", 0, 0, 2))
    assert group.calls == [("all_reduce", META)]
