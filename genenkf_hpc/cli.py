"""``genenkf COMMAND [-c CONFIG.toml] [--out DIR] [section.key=value ...]``.

Thin: parses arguments, loads the config, configures logging, opens the run directory and hands
over to the command's workflow module. Exit status: 0 success, 2 bad input (one ``error:`` line
on stderr, no traceback), 1 anything else. Under MPI an exception on any rank aborts the job.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
import traceback

from . import __version__, logs
from .errors import UserError

# name -> (workflow module, one-line help); modules are imported only when their command runs,
# so `genenkf --help` stays fast and commands without torch never import it.
COMMANDS: dict[str, tuple[str, str]] = {
    "nature": ("nature", "nature runs (truth) and noisy observations -> nature.nc"),
    "dataset": ("dataset", "training trajectories for the diffusion model -> HDF5 shards"),
    "train": ("train", "train the observation-conditioned diffusion model (DDP-ready)"),
    "assimilate": ("assimilate", "cycle a DA method -> analysis.nc, summary.json"),
    "campaign": ("campaign", "compare methods over F_nature -> results.csv/md, figures"),
    "report": ("report", "tables and figures from finished run directories"),
    "bench": ("bench", "benchmarks: letkf, forecast, sample, train (JSON lines)"),
    "jobs": ("jobs", "render or submit Slurm/PBS job scripts for the pipeline"),
    "demo": ("demo", "small end-to-end run: nature, LETKF, training, Generative EnKF"),
}


# `section.key=value` arguments are config overrides wherever they appear on the line; they are
# split off before argparse so commands may have positional arguments of their own.
_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*=")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as a UserError (one line, exit 2)."""

    def error(self, message):
        raise UserError(f"{self.prog}: {message}")


def _workflow(command: str):
    return importlib.import_module(f"genenkf_hpc.workflows.{COMMANDS[command][0]}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="genenkf", description="Generative EnKF: diffusion-model "
                     "pseudo-ensembles + parallel LETKF for Lorenz-96 OSSEs.")
    parser.add_argument("--version", action="version", version=f"genenkf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name != command:
            continue  # only the chosen command's module is imported
        module = _workflow(name)
        if getattr(module, "USES_CONFIG", True):
            p.add_argument("-c", "--config", help="TOML config (default: built-in defaults)")
            p.add_argument("--out", help="run directory (default: runs/<command>-<time>)")
            p.epilog = ("Any number of section.key=value arguments override config keys "
                        "(value parsed as TOML, else a string), e.g. filter.members=16.")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), None)
    rank = 0
    ctx = None
    comm = None
    try:
        from .parallel.environment import read_environment

        env = read_environment()
        rank = env.rank
        parser = build_parser(command)
        overrides = [a for a in argv if _OVERRIDE.match(a)]
        args = parser.parse_args([a for a in argv if not _OVERRIDE.match(a)])
        args.overrides = overrides
        if args.command is None:
            parser.print_help()
            return 0
        log = logs.configure(rank, verbose=args.verbose)
        module = _workflow(args.command)
        from .parallel.comm import world

        comm = world()
        from .blas import set_threads
        from .parallel.environment import threads_per_process

        set_threads(threads_per_process())  # ranks sharing a node: no oversubscribed BLAS pools
        if getattr(module, "USES_CONFIG", True):
            from .config import load_config
            from .io.rundir import open_run

            # A command may embed its own default config (demo runs configs/demo.toml).
            cfg = load_config(args.config or getattr(module, "DEFAULT_CONFIG", None),
                              args.overrides)
            ctx = open_run(args.command, args.out, cfg, comm, env, log)
            status = module.run(args, cfg, ctx)
        else:
            if overrides and not getattr(module, "TAKES_OVERRIDES", False):
                raise UserError(f"{args.command} takes no config overrides: {overrides[0]}")
            status = module.run(args)
        return int(status or 0)
    except UserError as exc:
        from .parallel.comm import is_collective

        return _fail(f"error: {exc}", 2, rank, ctx, comm,
                     is_collective(exc, comm.size if comm is not None else 1))
    except KeyboardInterrupt:
        return _fail("error: interrupted", 130, rank, ctx, comm)
    except Exception:  # a bug: keep the traceback
        return _fail(traceback.format_exc().rstrip(), 1, rank, ctx, comm)


def _fail(message: str, code: int, rank: int, ctx, comm, collective: bool = False) -> int:
    from .io.rundir import record_failure

    if (ctx is None or collective) and rank != 0:
        # Before the run starts every rank fails alike, and an error marked `collective` was
        # raised by every rank at the same point: rank 0 says it once, nobody needs an abort.
        return code
    print(message, file=sys.stderr, flush=True)
    if ctx is not None and ctx.is_main:
        record_failure(ctx.path, message)
    if ctx is not None and comm is not None and comm.size > 1 and not collective:
        # The other ranks may be blocked in a collective: end the whole job now, no hang.
        comm.abort(code)
    return code


def entry_point() -> None:
    sys.exit(main())
