"""Atomic writers: write to a temporary name beside the target, then rename.

A run killed half-way never leaves a truncated derivative behind; readers
(and reruns) see either the old file or the complete new one.

The rule itself (temporary name, umask mode, rename, a failed write naming
its file) lives in :mod:`bids_taskenc.core.atomic`, which the engines may
import too; this module builds the derivative writers (JSON, text, TSV, npy,
images) on it and re-exports :func:`atomic_path` and :func:`reserve_temp`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.atomic import atomic_path as atomic_path
from ..core.atomic import reserve_temp as reserve_temp


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
