"""`genenkf dataset` + `genenkf train`: rank-count independence, DDP == one process, resume ==
uninterrupted, graceful stop on SIGTERM, checkpoints that refuse unsafe content."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from genenkf_hpc.cli import main
from genenkf_hpc.diffusion.bundle import load_bundle, sample_pseudo_ensemble
from genenkf_hpc.errors import UserError
from genenkf_hpc.io.checkpoint import load_checkpoint
from genenkf_hpc.io.hdf5 import read_metadata

from mpi_utils import REPO, mpi_env, run_mpi

torch.set_num_threads(1)
TINY = str(REPO / "configs" / "tiny.toml")
# The sizes these tests rely on, pinned so edits of tiny.toml cannot change them.
DATA = ["model.nx=16", "dataset.trajectories=6", "dataset.steps=40", "dataset.spinup_steps=100",
        "dataset.shard_trajectories=2", "dataset.val_fraction=0.2", "dataset.test_fraction=0.2",
        "osse.obs_interval=2"]
NET = ["network.base_width=8", "network.multipliers=[1,2]", "network.groups=4",
       "network.seq_len=1", "diffusion.timesteps=50", "generative.sampling_steps=5",
       "train.steps=4", "train.batch_size=4", "train.grad_accum=1", "train.log_every=1",
       "train.checkpoint_every=2", "train.val_every=0", "train.val_samples=2", "run.progress=false"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "data"
    assert main(["dataset", "-c", TINY, "--out", str(out), *DATA]) == 0
    return out


def train(out, data_dir, *extra):
    return main(["train", "-c", TINY, "--data", str(data_dir), "--out", str(out),
                 "--eval-states", "0", *DATA, *NET, *extra])


def weights(run_dir, key="model"):
    return torch.load(Path(run_dir) / "checkpoints" / "latest.pt", weights_only=True)[key]


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def test_dataset_layout_and_split(data_dir):
    meta = read_metadata(data_dir)
    splits = meta["splits"]
    ids = sorted(splits["train"] + splits["val"] + splits["test"])
    assert ids == list(range(6)) and len(splits["val"]) == 1 and len(splits["test"]) == 1
    with h5py.File(data_dir / "shard_00000.h5") as fh:
        assert fh["states"].shape == (2, 40, 16)
        assert fh["states"].compression == "gzip" and fh["states"].chunks is not None
    assert meta["normalisation"]["lo"] < meta["normalisation"]["mean"] < meta["normalisation"]["hi"]


@pytest.mark.mpi
def test_dataset_does_not_depend_on_rank_count(data_dir, tmp_path):
    out = tmp_path / "mpi"
    res = run_mpi(3, ["dataset", "-c", TINY, "--out", str(out), *DATA], timeout=120)
    assert res.returncode == 0, res.stderr
    a, b = read_metadata(data_dir), read_metadata(out)
    assert a["splits"] == b["splits"] and a["shards"] == b["shards"]
    assert a["normalisation"]["lo"] == b["normalisation"]["lo"]
    for shard in a["shards"]:
        with h5py.File(data_dir / shard["file"]) as fa, h5py.File(out / shard["file"]) as fb:
            np.testing.assert_array_equal(fa["states"][...], fb["states"][...])


@pytest.mark.slow
@pytest.mark.mpi
def test_two_process_ddp_matches_one_process(data_dir, tmp_path):
    """Same global batch and seed: 1 process (2 micro-batches), torchrun -n 2, mpiexec -n 2."""
    steps = ["train.steps=3", "--eval-states", "0"]
    assert train(tmp_path / "one", data_dir, "train.steps=3", "train.grad_accum=2") == 0
    args = ["train", "-c", TINY, "--data", str(data_dir), *DATA, *NET, *steps]
    env = mpi_env()
    env.pop("MASTER_ADDR", None), env.pop("MASTER_PORT", None)
    tr = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                         "--nproc_per_node", "2", "-m", "genenkf_hpc", *args, "--out",
                         str(tmp_path / "torchrun")], env=env, capture_output=True, text=True,
                        timeout=300, cwd=REPO)
    assert tr.returncode == 0, tr.stderr[-3000:]
    res = run_mpi(2, [*args, "--out", str(tmp_path / "mpi")], timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    ref = torch.load(tmp_path / "one" / "checkpoints" / "latest.pt", weights_only=True)
    for name in ("torchrun", "mpi"):
        ck = torch.load(tmp_path / name / "checkpoints" / "latest.pt", weights_only=True)
        assert ck["step"] == 3 and ck["world_size"] == 2
        assert max_diff(ck["model"], ref["model"]) < 1e-5, name
        assert max_diff(ck["ema"], ref["ema"]) < 1e-5, name
        torch.testing.assert_close(ck["loss_history"], ref["loss_history"], rtol=1e-6, atol=1e-7,
                                   equal_nan=True)


def test_resume_equals_uninterrupted(data_dir, tmp_path):
    extra = ["train.steps=6", "train.checkpoint_every=4", "train.warmup_steps=2"]
    assert train(tmp_path / "full", data_dir, *extra) == 0
    assert train(tmp_path / "split", data_dir, *extra, "--stop-at", "3") == 0
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")["step"] == 3
    assert len((tmp_path / "split" / "loss.csv").read_text().splitlines()) == 1 + 3
    assert train(tmp_path / "split", data_dir, *extra, "--resume") == 0
    assert (tmp_path / "split" / "loss.csv").read_text() == \
        (tmp_path / "full" / "loss.csv").read_text()
    for key in ("model", "ema"):
        assert max_diff(weights(tmp_path / "split", key), weights(tmp_path / "full", key)) == 0
    opt_a = weights(tmp_path / "split", "optimizer")["state"]
    opt_b = weights(tmp_path / "full", "optimizer")["state"]
    assert all(torch.equal(opt_a[k]["exp_avg"], opt_b[k]["exp_avg"]) for k in opt_a)
    names = sorted(p.name for p in (tmp_path / "full" / "checkpoints").iterdir())
    assert names == ["latest.pt", "step_00000004.pt", "step_00000006.pt"]


def test_checkpoint_contents_and_sampling(data_dir, tmp_path):
    assert main(["train", "-c", TINY, "--data", str(data_dir), "--out", str(tmp_path),
                 "--eval-states", "2", "--eval-members", "3", *DATA, *NET]) == 0
    ck = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    for key in ("model", "ema", "optimizer", "step", "config", "normalisation", "rng", "arch",
                "diffusion", "obs"):
        assert key in ck
    assert ck["config"]["train"]["steps"] == 4 and isinstance(ck["rng"]["torch"], torch.Tensor)
    assert (tmp_path / "loss.png").stat().st_size > 1000
    assert (tmp_path / "eval.json").exists() and (tmp_path / "summary.json").exists()
    bundle = load_bundle(tmp_path / "checkpoints" / "latest.pt")
    obs = np.where(np.arange(16) % 2 == 0, 3.0, np.nan)
    ens = sample_pseudo_ensemble(bundle, obs, ~np.isnan(obs), [0, 1], 1, 0, steps=3)
    assert ens.shape == (2, 16) and np.all(np.isfinite(ens))


class Evil:
    """Unpickling this would create the marker file (a stand-in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_unsafe_checkpoint_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": Evil(marker)}, path)
    for loader in (load_checkpoint, load_bundle):
        with pytest.raises(UserError, match="evil.pt"):
            loader(path)
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_user_errors(data_dir, tmp_path, capsys):
    assert main(["train", "-c", TINY, "--out", str(tmp_path / "a"), *NET]) == 2
    assert "--data" in capsys.readouterr().err
    assert train(tmp_path / "b", data_dir, "model.nx=12") == 2
    assert "model.nx=12" in capsys.readouterr().err
    assert train(tmp_path / "c", data_dir, "network.multipliers=[1,1,1,1,1,1]") == 2
    assert "not divisible by 2^(levels-1)=32" in capsys.readouterr().err
    assert train(tmp_path / "d", data_dir, "--resume") == 2
    assert "latest.pt does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_writes_checkpoint_and_exits_zero(data_dir, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "genenkf_hpc", "train", "-c", TINY, "--data",
                             str(data_dir), "--out", str(out), *DATA, *NET, "train.steps=100000",
                             "train.checkpoint_every=2", "train.log_every=1"], env=env,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / "checkpoints" / "step_00000002.pt").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1]
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM" in err and "--resume" in err
    ck = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert 2 <= ck["step"] < 100000
    assert (out / "checkpoints" / f"step_{ck['step']:08d}.pt").exists()
    assert len((out / "loss.csv").read_text().splitlines()) == 1 + ck["step"]


def losses(run_dir) -> np.ndarray:
    """Loss per optimizer step (train.log_every=1)."""
    ck = torch.load(Path(run_dir) / "checkpoints" / "latest.pt", weights_only=True)
    return ck["loss_history"][:, 1].numpy()


def torchrun(n, out, data_dir, *extra):
    env = mpi_env()
    env.pop("MASTER_ADDR", None), env.pop("MASTER_PORT", None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", str(n), "-m", "genenkf_hpc", "train", "-c", TINY,
                           "--data", str(data_dir), "--out", str(out), "--eval-states", "0",
                           *DATA, *NET, *extra], env=env, capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_bf16_autocast_on_cpu_is_finite_and_close_to_fp32(data_dir, tmp_path):
    assert train(tmp_path / "fp32", data_dir, "train.precision=fp32") == 0
    assert train(tmp_path / "bf16", data_dir, "train.precision=bf16") == 0
    fp32, bf16 = losses(tmp_path / "fp32"), losses(tmp_path / "bf16")
    assert len(bf16) == 4 and np.all(np.isfinite(bf16))
    np.testing.assert_allclose(bf16, fp32, rtol=0.05)
    assert not np.array_equal(bf16, fp32)  # autocast really ran in bf16
    summary = json.loads((tmp_path / "bf16" / "summary.json").read_text())
    assert summary["bf16"] is True and summary["backend"] is None


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("ranks, launcher", [(2, "torchrun"), (3, "mpiexec")])
def test_ddp_with_a_batch_the_ranks_do_not_divide_equals_one_process(data_dir, tmp_path, ranks,
                                                                     launcher):
    """A global batch of 7 over 2 ranks (4 + 3) and 3 ranks (3 + 2 + 2): same loss per step
    and weights as one process, with the process group's backend recorded."""
    batch = ["train.batch_size=7", "train.steps=3"]
    assert train(tmp_path / "one", data_dir, *batch) == 0
    if launcher == "torchrun":
        proc = torchrun(ranks, tmp_path / "many", data_dir, *batch)
    else:
        proc = run_mpi(ranks, ["train", "-c", TINY, "--data", data_dir, "--out",
                               tmp_path / "many", "--eval-states", "0", *DATA, *NET, *batch],
                       timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(losses(tmp_path / "many"), losses(tmp_path / "one"), rtol=1e-6)
    # Adam divides each step by the gradient's own magnitude, which amplifies the float32
    # round-off of the gradient sums (summed over 2 or 3 shards instead of one) in weights whose
    # gradient is near zero: measured up to 2e-5 after 3 steps; a wrong batch split moves them
    # by the learning rate (1e-3)
    assert max_diff(weights(tmp_path / "many"), weights(tmp_path / "one")) < 1e-4
    summary = json.loads((tmp_path / "many" / "summary.json").read_text())
    assert summary["ranks"] == ranks and summary["backend"] == "gloo"


@pytest.mark.slow
@pytest.mark.mpi
def test_bf16_ddp_under_torchrun(data_dir, tmp_path):
    assert train(tmp_path / "fp32", data_dir, "train.precision=fp32") == 0
    proc = torchrun(2, tmp_path / "bf16", data_dir, "train.precision=bf16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    bf16 = losses(tmp_path / "bf16")
    assert len(bf16) == 4 and np.all(np.isfinite(bf16))
    np.testing.assert_allclose(bf16, losses(tmp_path / "fp32"), rtol=0.05)
    summary = json.loads((tmp_path / "bf16" / "summary.json").read_text())
    assert summary["bf16"] is True and summary["ranks"] == 2
