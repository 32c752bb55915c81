"""``genenkf demo``: a small end-to-end run with the embedded demo config (CONTRACT section 4)."""
from __future__ import annotations

from pathlib import Path

from ..config import Config
from . import nature

HELP = "small end-to-end run: nature, LETKF, training, Generative EnKF"
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.toml"


def add_arguments(parser) -> None:
    pass


def run(args, cfg: Config, ctx) -> int:
    class NatureArgs:
        chunk = 256

    nature.run(NatureArgs, cfg, ctx)
    return 0
