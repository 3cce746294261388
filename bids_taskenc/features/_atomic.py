"""Atomic file writes for ``features/`` (which may import nothing of ours).

The same rule as :mod:`bids_taskenc.outputs.atomic`, the app's one home of
atomic writes: a temporary file beside the target, created exclusively with
the mode ``open()`` gives under the umask (0644 under 022, not ``mkstemp``'s
0600: a shared cache or weights store must be readable by the group), then
renamed; an ``OSError`` without a file name (a full disk) is re-raised naming
the target.
"""

from __future__ import annotations

import errno
import os
import uuid
from contextlib import contextmanager
from pathlib import Path


def reserve_temp(folder: Path, prefix: str, suffix: str = "") -> Path:
    """A new, empty file ``folder/<prefix><random><suffix>`` (exclusive, mode 0666 & ~umask)."""
    for _ in range(100):
        tmp = Path(folder) / f"{prefix}{uuid.uuid4().hex[:12]}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder))


@contextmanager
def atomic_file(path: str | Path, *, suffix: str = ".part"):
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = reserve_temp(path.parent, f".{path.name}.", suffix)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()
