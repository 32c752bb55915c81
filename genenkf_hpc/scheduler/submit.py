"""Submission: ``sbatch --parsable`` / ``qsub`` with ``afterok`` dependencies.

The command lines are built by pure functions (:func:`submit_argv`, :func:`parse_job_id`);
:func:`submit_jobs` runs them (no shell) and, if one submission fails, cancels the jobs it
already submitted so no half pipeline is left waiting in the queue.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess

from ..errors import UserError
from .pipeline import PlannedJob

SUBMIT = {"slurm": "sbatch", "pbs": "qsub"}
CANCEL = {"slurm": "scancel", "pbs": "qdel"}
_SLURM_ID = re.compile(r"^(\d+)(;\S+)?$")
_PBS_ID = re.compile(r"^\d+(\[\d*\])?(\.[A-Za-z0-9_.-]+)?$")


def submit_argv(scheduler: str, script: str, after_ids: list[str]) -> list[str]:
    if scheduler == "slurm":
        argv = ["sbatch", "--parsable"]
        if after_ids:
            argv.append("--dependency=afterok:" + ":".join(after_ids))
    else:
        argv = ["qsub"]
        if after_ids:
            argv += ["-W", "depend=afterok:" + ":".join(after_ids)]
    return [*argv, script]


def parse_job_id(scheduler: str, stdout: str) -> str | None:
    """``sbatch --parsable`` prints ``ID`` or ``ID;CLUSTER``, ``qsub`` prints ``ID.SERVER``."""
    lines = [line.strip() for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        return None
    text = lines[-1]
    if scheduler == "slurm":
        m = _SLURM_ID.match(text)
        return m.group(1) if m else None
    return text if _PBS_ID.match(text) else None


def dry_run_lines(scheduler: str, jobs: list[PlannedJob]) -> list[str]:
    """The submissions as shell lines, job ids kept in variables (``--dry-run``)."""
    lines = []
    for job in jobs:
        argv = submit_argv(scheduler, job.script, [f"${{{dep}_id}}" for dep in job.after])
        words = [f'"{a}"' if "$" in a else shlex.quote(a) for a in argv]
        lines.append(f"{job.stage}_id=$({' '.join(words)})")
    return lines


def submit_jobs(scheduler: str, jobs: list[PlannedJob],
                run=subprocess.run) -> list[tuple[str, str]]:
    """Submit in order, each after its dependencies; ``[(stage, job_id)]``."""
    tool = SUBMIT[scheduler]
    if shutil.which(tool) is None:
        raise UserError(f"{tool} not found on PATH: `genenkf jobs submit --scheduler "
                        f"{scheduler}` needs the {scheduler} client commands (use `genenkf jobs "
                        "render` to write the scripts only)")
    ids: dict[str, str] = {}
    done: list[tuple[str, str]] = []
    for job in jobs:
        argv = submit_argv(scheduler, job.script, [ids[s] for s in job.after])
        try:
            proc = run(argv, capture_output=True, text=True, timeout=120)
            job_id = parse_job_id(scheduler, proc.stdout) if proc.returncode == 0 else None
            problem = (proc.stderr or proc.stdout).strip().splitlines()
        except (OSError, subprocess.TimeoutExpired) as exc:
            job_id, problem = None, [str(exc)]
        if job_id is None:
            _cancel(scheduler, [i for _, i in done], run)
            why = problem[-1] if problem else "no job id in its output"
            cancelled = (f"; cancelled the jobs already submitted ({', '.join(i for _, i in done)})"
                         if done else "")
            raise UserError(f"{tool} {job.script} (stage {job.stage}) failed: {why}{cancelled}")
        ids[job.stage] = job_id
        done.append((job.stage, job_id))
    return done


def _cancel(scheduler: str, ids: list[str], run) -> None:
    if not ids or shutil.which(CANCEL[scheduler]) is None:
        return
    try:
        run([CANCEL[scheduler], *ids], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pass
