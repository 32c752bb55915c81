"""Where a run starts: fresh, from the newest restart, or skipped as already complete; and the
fingerprint (settings that change the numbers + the data) that decides whether a restart or a
finished ``summary.json`` belongs to the run asked for."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..config import Config
from ..errors import UserError
from ..io import analysis_file, restart
from ..parallel.comm import collective_error, run_on_root
from ..parallel.layout import Layout
from .base import NatureInput
from .registry import method_class


def run_fingerprint(cfg: Config, method_name: str, nature: NatureInput,
                    identity: dict | None = None) -> str:
    """Identity of what a restart continues: the settings that change the numbers (the config
    sections the method reads, ``fingerprint_sections``), the data, and the method's other
    inputs (``identity``: e.g. the model checkpoint's hash and step). A classical method's runs
    stay valid when only the Generative EnKF's settings or model change (a campaign resumed
    with a new model reruns only what depends on it)."""
    sections = cfg.to_dict()
    names = method_class(method_name).fingerprint_sections
    h = hashlib.sha256(json.dumps({"method": method_name, **{s: sections[s] for s in names},
                                   **({"identity": identity} if identity else {})},
                                  sort_keys=True).encode())
    for array in (nature.truth, nature.obs, nature.mask):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:16]


def start_plan(path: Path | None, resume: bool, fingerprint: str, method_name: str,
               identity: dict | None = None):
    """Rank 0: ``("skip", None, summary)``, ``("resume", restart, None)`` or ``("fresh", ...)``;
    prepares the directory for a fresh run (no stale summary, output or restarts)."""
    identity = identity or {}
    if path is None:
        return "fresh", None, None  # in memory: nothing to resume, nothing to clear
    summary_path = path / analysis_file.SUMMARY_FILE
    if resume and summary_path.is_file() and (path / analysis_file.ANALYSIS_FILE).is_file():
        summary = json.loads(summary_path.read_text())
        if summary.get("method") == method_name:
            if summary.get("fingerprint") != fingerprint:
                raise UserError(f"cannot resume: {path} holds a complete {method_name} run with "
                                f"{_what_differs(summary, identity)}; rerun without --resume to "
                                "replace it, or choose another --out")
            return "skip", None, summary
    latest = restart.latest_restart(path) if resume else None
    if latest is not None:
        _, meta = restart.read_restart(latest)
        if meta.get("fingerprint") != fingerprint or meta.get("method") != method_name:
            raise UserError(f"cannot resume from {latest}: it was written by method "
                            f"{meta.get('method')!r} with {_what_differs(meta, identity)}; rerun "
                            "with the original config and inputs, or without --resume to start "
                            "again")
        return "resume", latest, None
    analysis_file.prepare_fresh_dir(path)
    restart.clear_restarts(path)
    return "fresh", None, None


def _what_differs(recorded: dict, identity: dict) -> str:
    """"another model (...)" when the recorded identity (summary or restart) names other
    inputs than this run's, else the generic "other settings or data"."""
    changed = [k for k in identity if k in recorded and recorded[k] != identity[k]]
    if not changed:
        return "other settings or data"
    return "other inputs: " + ", ".join(f"{k} {recorded[k]} (this run: {identity[k]})"
                                        for k in changed)


def load_restart(comm, restart_file, method, layout: Layout, series):
    loaded = run_on_root(comm, lambda: restart.read_restart(restart_file))
    arrays, meta = loaded if comm.rank == 0 else ({}, None)
    meta = comm.bcast(meta)
    names = comm.bcast(sorted(arrays) if comm.rank == 0 else None)
    full = {name: comm.Bcast(arrays.get(name)) for name in names}
    state = full["state"]
    if method.state_kind == "ensemble" and state.shape != (layout.members, layout.nx):
        raise collective_error(UserError(
            f"restart file {restart_file} holds an ensemble of shape {state.shape}, expected "
            f"({layout.members}, {layout.nx})"), comm)
    state = layout.scatter_state(state, method.state_kind)
    cycle = meta["cycle"]
    for name in analysis_file.SERIES:
        series[name][:cycle] = full[name]
    extra = {name[len("extra_"):]: value for name, value in full.items()
             if name.startswith("extra_")}
    return state, full["obs_history"], series, meta, extra
