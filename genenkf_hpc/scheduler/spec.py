"""The job description: every parameter of a rendered job script, validated in one place.

``make_job(**params)`` is the only way in: unknown parameters are refused with the valid ones
listed (as submitit does), and every value a user can give is checked here, so the renderers
(``slurm.py``, ``pbs.py``) can assume a well-formed :class:`JobSpec`. Values that end up in a
shell command are still quoted by the renderers; values that end up in ``#SBATCH``/``#PBS``
directives, which the scheduler parses without a shell, are restricted to a safe character set
instead. Pure: no file system access.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ..config import parse_override
from ..cycling.registry import method_names
from ..errors import UserError

SCHEDULERS = ("slurm", "pbs")
STAGES = ("nature", "dataset", "train", "assimilate", "campaign")
# How each stage runs: "serial" (one process), "mpi" (ranks via srun/mpiexec + mpi4py) or
# "ddp" (torch DistributedDataParallel, one process per GPU or per CPU slot).
STAGE_KIND = {"nature": "serial", "dataset": "mpi", "train": "ddp", "assimilate": "mpi",
              "campaign": "mpi"}
LAUNCHERS = {"slurm": ("srun", "torchrun"), "pbs": ("mpiexec", "torchrun")}

_TIME = re.compile(r"^(\d{1,4}):([0-5]\d):([0-5]\d)$")
_MEM = re.compile(r"^[1-9]\d{0,8}[KMGT]$")
# Names the schedulers parse themselves (no shell): letters, digits and a few separators.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,@+-]{0,127}$")
_JOB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.+-]{0,63}$")
_MODULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+/@:-]{0,127}$")
_WORD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# Paths inside directives (log directory): no spaces, quotes or shell/scheduler metacharacters.
_DIRECTIVE_PATH = re.compile(r"^[A-Za-z0-9_./@%+,:=-]{1,1024}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class JobSpec:
    """One job: which stage, where it writes, the resources it asks for and how it starts.

    Paths are kept as given (relative ones are relative to the job's working directory:
    ``workdir`` when set, else the submission directory). ``tasks_per_node`` counts processes
    per node for every launcher (for ``train`` on GPUs: one per GPU).
    """

    scheduler: str
    stage: str
    config: str
    out: str
    nodes: int = 1
    tasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    time: str = "01:00:00"
    mem: str = ""
    partition: str = ""
    account: str = ""
    qos: str = ""
    job_name: str = ""
    log_dir: str = ""
    workdir: str = ""
    method: str = ""
    data: str = ""
    model: str = ""
    nature: str = ""
    python: str = "python3"
    venv: str = ""
    mpiexec: str = "mpiexec"
    modules: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    launcher: str = ""
    srun_mpi: str = ""
    signal_seconds: int | None = None
    requeue: bool = False
    allow_run_as_root: bool = False

    @property
    def kind(self) -> str:
        return STAGE_KIND[self.stage]

    @property
    def name(self) -> str:
        return self.job_name or f"genenkf-{self.stage}"

    @property
    def ntasks(self) -> int:
        return self.nodes * self.tasks_per_node

    @property
    def walltime_seconds(self) -> int:
        h, m, s = (int(g) for g in _TIME.match(self.time).groups())
        return 3600 * h + 60 * m + s

    @property
    def signal_lead(self) -> int:
        """Seconds before the walltime at which Slurm warns the job (0: no warning).

        Default: two minutes, or a tenth of a short walltime, time enough to write a checkpoint.
        """
        if self.signal_seconds is not None:
            return self.signal_seconds
        return min(120, self.walltime_seconds // 10)


PARAMETERS = tuple(f.name for f in dataclasses.fields(JobSpec))


def make_job(**params) -> JobSpec:
    """A validated :class:`JobSpec`; raises UserError naming the first bad parameter."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise UserError("Unavailable parameter(s): " + ", ".join(unknown)
                        + ". Valid parameters are: " + ", ".join(PARAMETERS))
    missing = [p for p in ("scheduler", "stage", "config", "out") if p not in params]
    if missing:
        raise UserError("missing job parameter(s): " + ", ".join(missing))
    for key in ("modules", "overrides"):
        if key in params:
            if isinstance(params[key], str) or not hasattr(params[key], "__iter__"):
                raise UserError(f"job parameter {key}={params[key]!r}: expected a list")
            params[key] = tuple(params[key])
    if not params.get("launcher") and params.get("stage") == "train":
        params["launcher"] = LAUNCHERS.get(params.get("scheduler"), ("",))[0]
    spec = JobSpec(**params)
    validate(spec)
    return spec


def validate(spec: JobSpec) -> None:
    _choice("scheduler", spec.scheduler, SCHEDULERS)
    for key in ("requeue", "allow_run_as_root"):
        if not isinstance(getattr(spec, key), bool):
            raise UserError(f"job parameter {key}={getattr(spec, key)!r}: expected true or false")
    _choice("stage", spec.stage, STAGES)
    _int("nodes", spec.nodes, 1, 100_000)
    _int("tasks-per-node", spec.tasks_per_node, 1, 1024)
    _int("gpus-per-node", spec.gpus_per_node, 0, 64)
    _int("cpus-per-task", spec.cpus_per_task, 1, 1024)
    if spec.signal_seconds is not None:
        _int("signal-seconds", spec.signal_seconds, 0, 86_400)
    m = _TIME.match(spec.time) if isinstance(spec.time, str) else None
    if not m:
        raise UserError(f"--time {spec.time!r}: expected HH:MM:SS (e.g. 02:30:00)")
    if spec.walltime_seconds == 0:
        raise UserError(f"--time {spec.time}: must be longer than zero")
    if spec.signal_lead and spec.signal_lead >= spec.walltime_seconds:
        raise UserError(f"--signal-seconds {spec.signal_seconds}: must be shorter than --time "
                        f"{spec.time} ({spec.walltime_seconds} s)")
    if spec.mem and not _MEM.match(spec.mem):
        raise UserError(f"--mem {spec.mem!r}: expected a size such as 4G, 500M (units K M G T)")
    for key in ("partition", "account", "qos"):
        value = getattr(spec, key)
        if value and not _NAME.match(value):
            raise UserError(f"--{key} {value!r}: only letters, digits and _ . , @ + - allowed")
    if spec.job_name and not _JOB_NAME.match(spec.job_name):
        raise UserError(f"--job-name {spec.job_name!r}: start with a letter; letters, digits "
                        "and _ . + - only, at most 64 characters")
    for module in spec.modules:
        if not _MODULE.match(module):
            raise UserError(f"--module {module!r}: not a module name (letters, digits, _ . + / "
                            "@ : -)")
    if spec.srun_mpi and not _WORD.match(spec.srun_mpi):
        raise UserError(f"--srun-mpi {spec.srun_mpi!r}: expected a plugin name such as pmix")
    for key in ("config", "out", "python", "mpiexec"):
        _path(key, getattr(spec, key), required=True)
    for key in ("workdir", "data", "model", "nature", "venv"):
        _path(key, getattr(spec, key), required=False)
    if spec.log_dir and not _DIRECTIVE_PATH.match(spec.log_dir):
        raise UserError(f"--log-dir {spec.log_dir!r}: the scheduler reads this path itself; "
                        "use letters, digits and _ . / @ % + , : = - only (no spaces)")
    for item in spec.overrides:
        if _CONTROL.search(item):
            raise UserError(f"override {item!r}: control characters are not allowed")
        parse_override(item)  # raises UserError unless section.key=value
    _check_stage(spec)
    _check_scheduler(spec)


def _check_stage(spec: JobSpec) -> None:
    stage = spec.stage
    if spec.kind == "serial" and spec.ntasks != 1:
        raise UserError(f"--stage {stage} runs as one process: leave --nodes and "
                        "--tasks-per-node at 1")
    if stage == "assimilate":
        if not spec.method:
            raise UserError("--stage assimilate needs --method (one of "
                            + ", ".join(method_names()) + ")")
        _choice("method", spec.method, method_names())
    elif spec.method:
        raise UserError(f"--method applies to --stage assimilate, not {stage}")
    if spec.data and stage != "train":
        raise UserError(f"--data applies to --stage train, not {stage}")
    if spec.nature and stage not in ("assimilate", "campaign"):
        raise UserError(f"--nature applies to --stage assimilate or campaign, not {stage}")
    if spec.model and stage not in ("assimilate", "campaign"):
        raise UserError(f"--model applies to --stage assimilate or campaign, not {stage}")
    if stage == "train":
        _choice("launcher", spec.launcher, LAUNCHERS[spec.scheduler])
        if spec.gpus_per_node and spec.tasks_per_node != spec.gpus_per_node:
            raise UserError(f"--stage train runs one process per GPU: --tasks-per-node "
                            f"{spec.tasks_per_node} must equal --gpus-per-node "
                            f"{spec.gpus_per_node}")
        if spec.scheduler == "pbs" and spec.launcher == "torchrun" and spec.nodes != 1:
            raise UserError("--launcher torchrun on PBS runs on one node; use --launcher "
                            f"mpiexec for --nodes {spec.nodes}")
    elif spec.launcher:
        raise UserError(f"--launcher applies to --stage train, not {stage}")


def _check_scheduler(spec: JobSpec) -> None:
    if spec.scheduler == "pbs":
        if spec.qos:
            raise UserError("--qos is a Slurm option; PBS has none (use --partition for the "
                            "queue)")
        if spec.srun_mpi:
            raise UserError("--srun-mpi is a Slurm option")


def _choice(key: str, value, choices) -> None:
    if value not in choices:
        raise UserError(f"--{key} {value!r}: expected one of " + ", ".join(choices))


def _int(key: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"--{key} {value!r}: expected an integer")
    if not lo <= value <= hi:
        raise UserError(f"--{key} {value}: must be between {lo} and {hi}")


def _path(key: str, value, required: bool) -> None:
    if not isinstance(value, str):
        raise UserError(f"--{key} {value!r}: expected a path")
    if required and not value:
        raise UserError(f"--{key}: must not be empty")
    if _CONTROL.search(value):
        raise UserError(f"--{key} {value!r}: control characters (newline, tab, ...) are not "
                        "allowed in paths")
