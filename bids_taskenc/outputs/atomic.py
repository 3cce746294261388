"""Atomic writers: write to a temporary name beside the target, then rename.

A run killed half-way never leaves a truncated derivative behind; readers
(and reruns) see either the old file or the complete new one.

This module is the one home of the app's atomic writes (``features/``, which
may import nothing of ours, has its own copy in ``features/_atomic.py``).
Files get the mode a plain ``open()`` gives under the process umask (0644
under umask 022), not ``mkstemp``'s private 0600, so collaborators and web
servers can read the derivatives. A failed write (a full disk, a read-only
folder) names the file it was writing.
"""

from __future__ import annotations

import errno
import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd


def reserve_temp(folder: str | Path, prefix: str, suffix: str = "") -> Path:
    """Create an empty, new file ``folder/<prefix><random><suffix>`` with the umask's mode.

    Like :func:`tempfile.mkstemp` (exclusive creation, never an existing file or
    link) but with mode ``0666 & ~umask``, the mode ``open()`` would give.
    """
    folder = Path(folder)
    for _ in range(100):
        tmp = folder / f"{prefix}{uuid.uuid4().hex[:12]}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder))


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` with ``path`` as its file name when it names none ("[Errno 28] No space left on device")."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    The temporary name keeps the target's extensions (``.nii.gz`` etc.) so
    libraries that dispatch on the suffix still work. An :class:`OSError`
    without a file name (``ENOSPC`` from a write) is re-raised naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = "." + path.name.split(".", 1)[-1] if "." in path.name else ""
        tmp = reserve_temp(path.parent, f".{path.name}.", suffix)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        named = _named(exc, path)
        if named is exc:
            raise
        raise named from exc
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def _default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | Path, data: dict) -> Path:
    """Write ``data`` as indented JSON (numpy scalars/arrays and paths allowed)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_default) + "\n")
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    """Save one array as ``.npy`` (never pickled: object arrays are refused)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)
    return Path(path)


def write_tsv(path: str | Path, table: pd.DataFrame) -> Path:
    """Write a TSV with ``n/a`` for missing values (BIDS convention)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
    return Path(path)


def write_image(path: str | Path, img) -> Path:
    """Save a nibabel image (NIfTI or GIFTI) atomically."""
    import nibabel as nib

    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return Path(path)
