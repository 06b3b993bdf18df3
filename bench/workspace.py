"""A temporary working directory for one benchmark run, removed however the run ends.

SIGTERM is turned into SystemExit so that ``finally`` blocks (stopping servers,
removing the directory) run on a kill too, as they do on Ctrl-C.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn


def _terminate(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


@contextmanager
def workspace(keep: bool, prefix: str) -> Iterator[Path]:
    """A new temporary directory, kept (and named) with ``keep``, else removed at the end."""
    signal.signal(signal.SIGTERM, _terminate)
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield directory
    finally:
        if keep:
            print(f"# kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
