"""parallel/ddp.py: rendezvous logic, the device of each rank, the process group."""
import pytest
import torch

from genenkf_hpc.errors import UserError
from genenkf_hpc.parallel import ddp
from genenkf_hpc.parallel.comm import SerialComm
from genenkf_hpc.parallel.ddp import agree_rendezvous, first_host, setup
from genenkf_hpc.parallel.environment import LaunchEnvironment


def test_first_host():
    assert first_host("gpu[03-05,09],cpu1") == "gpu03"
    assert first_host("node7") == "node7"
    assert first_host("a-b[1,2]") == "a-b1"


def test_rendezvous_sources():
    torchrun = LaunchEnvironment("torchrun", 1, 1, 2)
    env = {"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "1234"}
    assert agree_rendezvous(torchrun, None, env) == ("10.0.0.1", 1234)
    slurm = LaunchEnvironment("slurm", 0, 0, 8)
    env = {"SLURM_JOB_ID": "4242", "SLURM_NODELIST": "cn[010-013]"}
    assert agree_rendezvous(slurm, None, env) == ("cn010", 20000 + 4242)
    # No MPI communicator to agree over (size 1): the single-node defaults.
    addr, port = agree_rendezvous(LaunchEnvironment("openmpi", 0, 0, 2), SerialComm(), {})
    assert (addr, port) == ("127.0.0.1", 29511)


def test_single_process_setup_has_no_group():
    ds = setup(LaunchEnvironment("single", 0, 0, 1), "cpu")
    assert not ds.active and ds.is_main and ds.device.type == "cpu"


# --- devices (issue 12, defects 1 and 2) ------------------------------------------------------

@pytest.fixture
def two_gpus(monkeypatch):
    """A node with 2 GPUs as torch would see it; records which device is made current."""
    current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda dev: current.append(torch.device(dev)))
    return current


def test_use_device_gives_each_local_rank_its_gpu(two_gpus):
    assert ddp.use_device("auto", 1) == torch.device("cuda:1")
    assert ddp.use_device("cuda", 0) == torch.device("cuda:0")
    assert ddp.use_device("cpu", 1) == torch.device("cpu")
    assert two_gpus == [torch.device("cuda:1"), torch.device("cuda:0")]
    with pytest.raises(UserError, match="wants GPU 3 .* only 2 GPU"):
        ddp.use_device("auto", 3, "train.device")


def test_use_device_errors_name_the_key():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert ddp.use_device("auto", 1) == torch.device("cpu")
    with pytest.raises(UserError, match="generative.device='cuda': no CUDA GPU"):
        ddp.use_device("cuda", 0, "generative.device")
    with pytest.raises(UserError, match="train.device='gpu': expected auto, cpu, cuda"):
        ddp.use_device("gpu", 0, "train.device")


def test_generative_enkf_samples_on_the_gpu_of_its_local_rank(two_gpus, monkeypatch):
    """Every rank of `mpiexec -n 2 genenkf assimilate` used GPU 0 (`auto` -> plain "cuda")."""
    import genenkf_hpc.diffusion.bundle as bundle
    from genenkf_hpc import osse
    from genenkf_hpc.config import load_config
    from genenkf_hpc.cycling.base import CycleContext
    from genenkf_hpc.cycling.generative import GenerativeEnKF

    from testpaths import CONFIGS, REPO

    for name, value in {"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
                        "OMPI_COMM_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    asked = []
    real = bundle.bundle_from_checkpoint  # records the device asked for, builds on the CPU
    monkeypatch.setattr(bundle, "bundle_from_checkpoint", lambda ckpt, device="cpu", *a, **k:
                        asked.append(device) or real(ckpt, "cpu", *a, **k))
    cfg = load_config(CONFIGS / "paper.toml", ['generative.device="auto"'])
    ctx = CycleContext(cfg, SerialComm(), None, osse.obs_mask(40, 2), 1.0, None,
                       forcing_nature=10.0)
    GenerativeEnKF(cfg, str(REPO / "models" / "l96_paper_prior.pt")).setup(ctx)
    assert asked == ["cuda:1"] and two_gpus == [torch.device("cuda:1")]


def test_torchrun_with_one_process_forms_a_process_group(monkeypatch):
    """So one GPU under torchrun runs the multi-GPU code path (NCCL group, DDP wrapper)."""
    import socket

    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    ds = setup(LaunchEnvironment("torchrun", 0, 0, 1), "cpu", timeout_s=60)
    try:
        assert ds.active and ds.backend == "gloo" and dist.get_world_size() == 1
        assert ddp.all_reduce_values([1.5, torch.tensor(2.0)], ds) == [1.5, 2.0]
    finally:
        ddp.teardown(ds)
    assert not dist.is_initialized()
