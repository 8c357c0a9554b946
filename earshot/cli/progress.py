"""One line per phase of `make run` and `make train`, with the time since it began.

The Makefile exports EARSHOT_T0 (seconds since the epoch when make started), so the
phases of make, scripts/train.py, the supervisor and the terminal chat count from the
same moment; without it, from when this module was imported.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

T0_ENV = "EARSHOT_T0"
_IMPORTED = time.time()


def elapsed() -> str:
    """Minutes and seconds since the run began, as m:ss."""
    try:
        start = float(os.environ.get(T0_ENV) or _IMPORTED)
    except ValueError:
        start = _IMPORTED
    seconds = max(0, int(time.time() - start))
    return f"{seconds // 60}:{seconds % 60:02d}"


def phase(message: str, *, file: TextIO | None = None) -> None:
    """Print `earshot [m:ss] message` and flush it at once."""
    print(f"earshot [{elapsed()}] {message}", file=file or sys.stdout, flush=True)
