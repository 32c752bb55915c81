"""Torch checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (state_dicts, config,
architecture, normalisation, RNG states as tensors). Loading uses ``torch.load(...,
weights_only=True)``, whose restricted unpickler refuses anything else (e.g. an instance of an
arbitrary class, whose ``__reduce__`` could run code): such a file raises :class:`UserError`
naming it, and nothing in it is executed.
"""
from __future__ import annotations

import functools
import hashlib
import os
import warnings
from pathlib import Path

import torch

from ..errors import UserError
from .atomic import atomic_path

LATEST = "latest.pt"


def step_name(step: int) -> str:
    return f"step_{step:08d}.pt"


def save_checkpoint(path: str | Path, ckpt: dict) -> None:
    """``torch.save`` to a temporary name in the same directory, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(ckpt, fh)
            fh.flush()
            os.fsync(fh.fileno())


def save_step_and_latest(directory: str | Path, step: int, ckpt: dict) -> Path:
    """Write ``step_<8 digits>.pt`` and ``latest.pt`` (each atomically); return the step file."""
    directory = Path(directory)
    path = directory / step_name(step)
    save_checkpoint(path, ckpt)
    save_checkpoint(directory / LATEST, ckpt)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict on CPU; UserError (naming the file) when missing, corrupt or unsafe."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles before refusing
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (unsafe content), RuntimeError (corrupt zip), ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"checkpoint {path}: refused to load with weights_only=True "
                        f"(unsafe or corrupt content: {first[:160]})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise UserError(f"checkpoint {path}: not a genenkf checkpoint (no 'model' entry)")
    return ckpt


def content_hash(path: str | Path) -> str:
    """SHA-256 of the file's bytes (hex): what identifies a model whatever its file name.
    Cached per (path, size, modification time), so a campaign of many runs reads it once."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise UserError(f"checkpoint {path} does not exist") from None
    return _hash(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _hash(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
