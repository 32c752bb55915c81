#!/usr/bin/env python3
"""Regenerate the example job scripts in jobs/slurm/ and jobs/pbs/ from
genenkf_hpc/scheduler/examples.py (tests/scheduler/test_examples.py checks they are current).

    .venv/bin/python tools/render_job_examples.py
"""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genenkf_hpc.io.atomic import write_text  # noqa: E402
from genenkf_hpc.scheduler import render  # noqa: E402
from genenkf_hpc.scheduler.examples import example_specs  # noqa: E402


def main() -> int:
    for rel, spec in example_specs().items():
        path = REPO / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, render(spec))
        os.chmod(path, 0o755)
        print(rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
