"""Graceful stop: SIGTERM / SIGUSR1 ask the run to write a restart at the end of the current
cycle and exit 0 (batch systems send SIGTERM before the walltime kill or on preemption; Slurm's
``--signal=USR1@120`` sends SIGUSR1 ahead of time).

The handler only records the signal; the driver polls :attr:`StopRequest.signal` once per
cycle and agrees on it across ranks with an Allreduce, so a signal delivered to any one rank
stops all of them at the same cycle.
"""
from __future__ import annotations

import signal
import threading

STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None))
                     if s is not None)


class StopRequest:
    """Context manager installing the handlers; ``signal`` is 0 until one arrives."""

    def __init__(self):
        self.signal = 0
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal != 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else ""

    def _handle(self, signum, frame) -> None:
        self.signal = signum

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> bool:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False
