"""What the bench scripts share: progress lines with the elapsed time, the load average.

The scripts run as `python bench/NAME.py`, so this folder is on sys.path: `from benchlib
import say, load_average`."""

from __future__ import annotations

import os
import threading
import time

_print_lock = threading.Lock()  # progress from worker threads stays one line each


def say(quiet: bool, t0: float, text: str) -> None:
    """`[  123 s] text` (seconds since t0, time.monotonic()), unless quiet."""
    if not quiet:
        with _print_lock:
            print(f"[{time.monotonic() - t0:6.0f} s] {text}", flush=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the table's caption (the machine is shared)."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())
