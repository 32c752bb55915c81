"""One-command GPU acceptance of genenkf_hpc: run by ``tools/gpu_check.sh`` (docs/benchmarks.md).

On a machine with CUDA GPUs, in at most 5 minutes, it runs this checkout's code and prints one
JSON object per line:

- ``environment``: GPU names, torch, CUDA, cuDNN and NCCL versions, TF32 settings;
- ``train``: ``torchrun --nproc_per_node <GPUs> -m genenkf_hpc train`` with NCCL, fp32 and
  bf16, 50 steps each (under torchrun even one process forms the NCCL group, so one GPU is
  enough to exercise the multi-GPU code path);
- ``assimilate``: ``genenkf assimilate --method genenkf`` (the shipped model, the paper's
  Generative EnKF settings, F_nature = 10) for 50 cycles on CUDA and on the CPU, in float32 and
  float64: the largest difference of the analysis means and the RMSE of both;
- ``bench_sample`` / ``bench_train``: ``genenkf bench sample|train`` on CUDA (members/s,
  network evaluations/s, samples/s).

Every line has ``ok`` (the criterion is in the line) and ``seconds``; the outputs and logs of
every step stay under ``--out``. Exit status: 0 all ok, 1 a check failed, 2 no CUDA (one
``error:`` line) or bad arguments.

``GENENKF_GPU_CHECK_DEVICE=cpu`` runs the same steps on the CPU (gloo, 2 processes) at tiny
sizes: a smoke test of this script for machines without a GPU; its figures mean nothing.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "configs" / "paper.toml"
TINY = REPO / "configs" / "tiny.toml"
MODEL = REPO / "models" / "l96_paper_prior.pt"
DEVICE_VAR = "GENENKF_GPU_CHECK_DEVICE"
BUDGET_S = 300.0  # the whole check
TAIL = 1500       # characters of a failed step's stderr kept in its JSON line


class Sizes:
    """What each step runs: GPU sizes, or tiny ones for the CPU smoke test."""

    def __init__(self, smoke: bool):
        self.smoke = smoke
        # training: the paper's network on a small dataset (the data only has to exist)
        self.data = [str(TINY if smoke else PAPER)] + (
            [] if smoke else ["dataset.trajectories=20", "dataset.steps=200",
                              "dataset.shard_trajectories=10"])
        self.train = [str(TINY if smoke else PAPER), "train.log_every=1", "train.val_every=0",
                      f"train.steps={3 if smoke else 50}",
                      f"train.checkpoint_every={3 if smoke else 50}",
                      f"train.batch_size={4 if smoke else 64}", "run.progress=false"]
        self.cycles = 4 if smoke else 50
        self.members = 8 if smoke else 32
        self.bench_sample = ["--members", str(self.members), "--steps", "2" if smoke else "10",
                             "--repeat", "1" if smoke else "3"]
        self.bench_train = ["-c", str(TINY if smoke else PAPER), "--batch", "4" if smoke else
                            "64", "--steps", "2" if smoke else "20"]


def genenkf_settings() -> list[str]:
    """The Generative EnKF settings of the paper campaign (configs/paper.toml's
    campaign.method_overrides for genenkf), so this check runs what the results ran."""
    sys.path.insert(0, str(REPO))
    from genenkf_hpc.config import load_config
    from genenkf_hpc.workflows.campaign_entries import campaign_entries

    return next(e.overrides for e in campaign_entries(load_config(PAPER))
                if e.label == "genenkf")


class Check:
    """Runs the steps, prints their JSON lines, keeps the time budget."""

    def __init__(self, out: Path, device: str, gpus: int, sizes: Sizes):
        self.out, self.device, self.gpus, self.sizes = out, device, gpus, sizes
        self.t0 = time.monotonic()
        self.failed = 0
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
        for var in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
            self.env.pop(var, None)  # torchrun --standalone chooses its own
        if sizes.smoke:
            self.env.setdefault("OMP_NUM_THREADS", "1")

    def left(self) -> float:
        return BUDGET_S - (time.monotonic() - self.t0)

    def emit(self, record: dict) -> None:
        self.failed += not record.get("ok", False)
        print(json.dumps(record, sort_keys=False), flush=True)

    def run(self, name: str, argv: list[str], limit: float) -> tuple[int, str, str, float]:
        """``argv`` as a subprocess (output kept in <out>/<name>.log); (rc, stdout, stderr, s)."""
        limit = min(limit, self.left())
        t0 = time.monotonic()
        if limit < 5:
            return 124, "", f"the time budget of {BUDGET_S:.0f} s is used up", 0.0
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=self.env,
                                  cwd=REPO, timeout=limit)
            rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc = 124
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            stderr = (exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or "")
            stderr += f"\n(stopped after {limit:.0f} s)"
        (self.out / f"{name}.log").write_text(
            f"$ {' '.join(map(str, argv))}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n")
        return rc, stdout, stderr, time.monotonic() - t0

    def genenkf(self, *args) -> list[str]:
        return [sys.executable, "-m", "genenkf_hpc", *map(str, args)]

    # --- the steps -----------------------------------------------------------------------------
    def train(self) -> None:
        data = self.out / "data"
        rc, _, err, secs = self.run("dataset", self.genenkf(
            "dataset", "-c", *self.sizes.data[:1], "--out", data, *self.sizes.data[1:]), 60)
        if rc != 0:
            self.emit({"check": "dataset", "ok": False, "seconds": secs, "error": err[-TAIL:]})
            return
        nproc = self.gpus if self.device == "cuda" else 2
        backend = "nccl" if self.device == "cuda" else "gloo"
        final = {}
        for precision in ("fp32", "bf16"):
            out = self.out / f"train_{precision}"
            argv = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", str(nproc), "-m", "genenkf_hpc", "train", "-c",
                    self.sizes.train[0], "--data", str(data), "--out", str(out),
                    "--eval-states", "0", *self.sizes.train[1:],
                    f"train.device={self.device}", f"train.precision={precision}"]
            rc, _, err, secs = self.run(f"train_{precision}", argv, 120)
            record = {"check": "train", "precision": precision, "launcher": "torchrun",
                      "nproc_per_node": nproc, "seconds": round(secs, 2)}
            if rc != 0:
                self.emit({**record, "ok": False, "error": err[-TAIL:]})
                continue
            summary = json.loads((out / "summary.json").read_text())
            with open(out / "loss.csv") as fh:
                loss = [float(row["loss"]) for row in csv.DictReader(fh)]
            final[precision] = summary["final_loss"]
            record.update(backend=summary.get("backend"), ranks=summary["ranks"],
                          device=summary["device"], bf16=summary.get("bf16"),
                          steps=summary["steps"], final_loss=summary["final_loss"],
                          samples_per_s_per_rank=summary["samples_per_s_per_rank"],
                          train_wall_seconds=summary["wall_seconds"])
            finite = all(math.isfinite(v) for v in loss) and len(loss) == summary["steps"]
            if precision == "bf16" and "fp32" in final:
                record["final_loss_rel_diff_vs_fp32"] = abs(final["bf16"] - final["fp32"]) \
                    / abs(final["fp32"])
            close = record.get("final_loss_rel_diff_vs_fp32", 0.0) <= 0.25
            record["criterion"] = (f"exit 0, {summary['steps']} finite losses, backend "
                                   f"{backend}, {nproc} ranks"
                                   + (", final loss within 25% of fp32" if precision == "bf16"
                                      else ""))
            record["ok"] = finite and summary.get("backend") == backend \
                and summary["ranks"] == nproc and close
            self.emit(record)

    def assimilate(self) -> None:
        settings = genenkf_settings()
        for precision in ("float32", "float64"):
            results = {}
            record = {"check": "assimilate", "method": "genenkf", "precision": precision,
                      "cycles": self.sizes.cycles, "forcing_nature": 10.0}
            secs_total = 0.0
            for device in dict.fromkeys([self.device, "cpu"]):
                out = self.out / f"assimilate_{precision}_{device}"
                rc, _, err, secs = self.run(out.name, self.genenkf(
                    "assimilate", "-c", PAPER, "--method", "genenkf", "--model", MODEL,
                    "--out", out, "osse.forcings=[10.0]", f"osse.cycles={self.sizes.cycles}",
                    f"osse.burn_in={self.sizes.cycles // 5}", "run.progress=false",
                    f"generative.members={self.sizes.members}", *settings,
                    f"generative.device={device}", f"generative.precision={precision}"), 90)
                secs_total += secs
                if rc != 0:
                    break
                results[device] = out
            record["seconds"] = round(secs_total, 2)
            if len(results) < len({self.device, "cpu"}):
                self.emit({**record, "ok": False, "error": err[-TAIL:]})
                continue
            from genenkf_hpc.io.analysis_file import read_analysis

            dev, cpu = results[self.device], results["cpu"]
            a, b = read_analysis(dev / "analysis.nc"), read_analysis(cpu / "analysis.nc")
            diff = float(abs(a["analysis_mean"] - b["analysis_mean"]).max())
            rmse = {d: json.loads((p / "summary.json").read_text())["rmse"]
                    for d, p in (("device", dev), ("cpu", cpu))}
            record.update(device=self.device, max_abs_diff_analysis_mean=diff,
                          rmse_device=rmse["device"], rmse_cpu=rmse["cpu"])
            if precision == "float64":
                record["criterion"] = "max |difference| <= 1e-6"
                record["ok"] = diff <= 1e-6
            else:
                record["criterion"] = "time-mean RMSEs within 10%"
                record["ok"] = abs(rmse["device"] - rmse["cpu"]) <= 0.1 * rmse["cpu"]
            self.emit(record)

    def bench(self) -> None:
        settings = genenkf_settings()
        runs = [("bench_sample", ["sample", "-c", PAPER, "--checkpoint", MODEL, "--device",
                                  self.device, *self.sizes.bench_sample, *settings])]
        for precision in ("fp32", "bf16"):
            runs.append((f"bench_train_{precision}", ["train", *self.sizes.bench_train,
                                                      "--device", self.device,
                                                      f"train.precision={precision}"]))
        for name, args in runs:
            rc, out, err, secs = self.run(name, self.genenkf("bench", *args), 90)
            record = {"check": name.rsplit("_", 1)[0] if "train" in name else name,
                      "seconds": round(secs, 2)}
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if rc != 0 or not lines:
                self.emit({**record, "ok": False, "error": err[-TAIL:]})
                continue
            result = json.loads(lines[-1])
            rate = result.get("members_per_s") or result.get("samples_per_s") or 0.0
            self.emit({**record, "ok": rate > 0 and result.get("device", "").startswith(
                self.device), "criterion": "exit 0, a positive rate on the device", **result})


def environment(device: str) -> tuple[dict, int]:
    import torch

    record = {"check": "environment", "host": socket.gethostname(), "device": device,
              "torch": torch.__version__, "cuda": torch.version.cuda,
              "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    try:
        record["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                                          text=True, cwd=REPO, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cuda":
        record.update(gpus=gpus, gpu_names=[torch.cuda.get_device_name(i) for i in range(gpus)],
                      cudnn=torch.backends.cudnn.version(),
                      nccl=".".join(map(str, torch.cuda.nccl.version())),
                      tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                      tf32_cudnn=torch.backends.cudnn.allow_tf32)
    record["ok"] = True
    return record, gpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/gpu_check.sh", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="where the steps write (default runs/gpu_check-<time>)")
    args = parser.parse_args(argv)
    device = os.environ.get(DEVICE_VAR, "cuda")
    if device not in ("cuda", "cpu"):
        print(f"error: {DEVICE_VAR}={device!r}: expected cuda (default) or cpu", file=sys.stderr)
        return 2
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        print(f"error: no CUDA GPU is visible (torch {torch.__version__}, built for CUDA "
              f"{torch.version.cuda}): run this on a GPU node, or set {DEVICE_VAR}=cpu for a "
              "CPU smoke test of the script", file=sys.stderr)
        return 2
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or REPO / "runs" / f"gpu_check-{stamp}").resolve()
    if out.exists() and not out.is_dir():
        print(f"error: --out {out}: exists and is not a directory", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    record, gpus = environment(device)
    check = Check(out, device, gpus, Sizes(smoke=device == "cpu"))
    check.emit({**record, "out": str(out)})
    check.train()
    check.assimilate()
    check.bench()
    total = time.monotonic() - check.t0
    check.emit({"check": "summary", "ok": check.failed == 0, "failed": check.failed,
                "seconds": round(total, 1), "budget_seconds": BUDGET_S})
    return 0 if check.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
