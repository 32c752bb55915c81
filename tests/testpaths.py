"""Paths the tests share (a module of its own: `conftest` names collide between test folders)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
