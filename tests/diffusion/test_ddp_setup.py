"""parallel/ddp.py: pure rendezvous logic (no process group needed)."""
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
