"""One run's BOLD inside a mask, read at the speed of inflation, and its confounds.

:func:`read_masked` inflates a ``.nii.gz`` in one C call per gzip member (ISA-L's ``isal_zlib`` when installed,
else zlib; both release the GIL), gathers the mask's voxels from the stored bytes (int16 for BOLD5000) and only
then converts them to float32 and applies the header's scaling: no float copy of the whole 4-D series is made
(docs/architecture.md, "Runs are read at the speed of inflation"). Every response model that reads BOLD reads it
through :func:`load_run`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from ..bids.preprocessed import PreprocessedRun
from ..core.images import load_volume
from ..errors import InputDataError

try:  # ISA-L's inflate is faster than zlib's and as exact; optional
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a dependency, but the standard library does the same job
    import zlib as _zlib  # type: ignore[no-redef]

#: What either inflater raises on damaged data (isal's stub annotates ``error`` as an instance, not a class).
_InflateError = cast("type[Exception]", _zlib.error)

log = logging.getLogger(__name__)


def _inflate(path: Path, expected: int) -> bytes:
    """The decompressed bytes of a gzip file (every member, as ``gzip`` reads it), in one C call per member.

    ISA-L's zlib (package ``isal``) when installed, else the standard library's; both release the GIL.
    """
    with open(path, "rb") as fh:
        comp = fh.read()
    view, parts, pos = memoryview(comp), [], 0
    while pos < len(comp):
        if not bytes(view[pos:]).strip(b"\0"):  # trailing zero padding, which gzip allows
            break
        d = _zlib.decompressobj(31)
        try:
            parts.append(d.decompress(view[pos:]))
        except _InflateError as exc:
            raise InputDataError(f"{path}: gzip data is damaged ({exc})") from exc
        if not d.eof:
            raise InputDataError(f"{path}: gzip stream is truncated")
        pos = len(comp) - len(d.unused_data)
    del view
    out = parts[0] if len(parts) == 1 else b"".join(parts)
    if len(out) < expected:
        raise InputDataError(f"{path}: {len(out)} bytes after decompression, the header needs {expected}")
    return out


def fortran_index(mask: np.ndarray) -> np.ndarray:
    """The voxels of a 3-D ``mask`` in C order, as flat indices into the Fortran-ordered grid NIfTI stores."""
    return np.ravel_multi_index(np.nonzero(mask), mask.shape, order="F").astype(np.intp)


def _stored_values(path: Path, proxy: Any, n_elements: int) -> np.ndarray:
    """The 4-D array as stored (e.g. int16), flat in the file's (Fortran) order, unscaled."""
    simple = (
        hasattr(proxy, "offset")
        and getattr(proxy, "order", "F") == "F"
        and np.dtype(proxy.dtype).kind in "biuf"
        and str(path).endswith(".gz")
    )
    if simple:
        dtype = np.dtype(proxy.dtype)
        offset = int(proxy.offset)
        buf = _inflate(path, offset + n_elements * dtype.itemsize)
        return np.frombuffer(buf, dtype=dtype, count=n_elements, offset=offset)
    # uncompressed (memory-mapped by nibabel) or an unusual layout: nibabel's unscaled reader
    return np.asarray(proxy.get_unscaled()).reshape(-1, order="F")


def read_masked(path: str | Path, mask: np.ndarray, flat_index: np.ndarray | None = None) -> np.ndarray:
    """The voxels of ``mask`` of a 4-D NIfTI, as float32 ``(n_vols, n_voxels)`` (voxels in the mask's C order).

    The file is decompressed once into memory as stored (e.g. int16), the mask's
    voxels are gathered from it, and only then are they converted to float32 and
    the header's scaling (``scl_slope``, ``scl_inter``) applied, in float32. No
    float32 or float64 copy of the whole 4-D array is made: the peak is the
    compressed file, its stored bytes and the masked series. ``flat_index`` (the
    mask's voxels as Fortran-order flat indices, :func:`fortran_index`) may be
    given to skip computing it per run.
    """
    path = Path(path)
    img = load_volume(path)
    proxy = img.dataobj
    shape = tuple(int(n) for n in img.shape)
    if len(shape) != 4:
        raise InputDataError(f"{path}: expected a 4-D BOLD series, got shape {shape}")
    if shape[:3] != tuple(mask.shape):
        raise InputDataError(f"{path}: grid {shape[:3]} differs from the mask's {tuple(mask.shape)}")
    if flat_index is None:
        flat_index = fortran_index(mask)
    n_vox3, n_vols = int(np.prod(shape[:3])), shape[3]
    stored = _stored_values(path, proxy, n_vox3 * n_vols)
    # Fortran order: volume t is stored[t * n_vox3:(t + 1) * n_vox3], contiguous
    series = np.take(stored.reshape(n_vols, n_vox3), flat_index, axis=1).astype(np.float32, copy=False)
    del stored
    slope, inter = _scaling(proxy)
    if slope != 1.0:
        series *= np.float32(slope)
    if inter != 0.0:
        series += np.float32(inter)
    return series


def _scaling(proxy: Any) -> tuple[float, float]:
    """The header's slope and intercept (1, 0 when the file is not scaled, as nibabel reads it)."""
    slope = float(np.asarray(getattr(proxy, "slope", 1.0)))
    inter = float(np.asarray(getattr(proxy, "inter", 0.0)))
    if not np.isfinite(slope) or slope == 0:
        slope = 1.0
    if not np.isfinite(inter):
        inter = 0.0
    return slope, inter


def _confound_matrix(prun: PreprocessedRun, confounds: Path, names: Sequence[str], n_vols: int) -> np.ndarray:
    """The chosen columns of a run's confounds file, ``(n_vols, len(names))`` float64 (n/a as 0)."""
    table = pd.read_csv(confounds, sep="\t", na_values=["n/a"])
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise InputDataError(f"{confounds}: confound column(s) {missing} not found")
    if len(table) != n_vols:
        raise InputDataError(f"{confounds}: {len(table)} rows but {prun.bold} has {n_vols} volumes")
    # fMRIPrep writes n/a for the first volume of derivative regressors (e.g. framewise_displacement)
    return table[list(names)].fillna(0.0).to_numpy(float)


def load_run(
    prun: PreprocessedRun,
    mask: np.ndarray,
    confounds: Sequence[str] | None = None,
    *,
    flat_index: np.ndarray | None = None,
    n_volumes: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One run's BOLD inside ``mask`` and its chosen confounds.

    Returns ``series`` (n_vols, n_voxels) float32 (read by :func:`read_masked`:
    no 4-D float copy) and the confound matrix (n_vols, n_confounds), or None
    when no confounds are asked for. ``n_volumes``: the count the run's header gave when the run was planned;
    a file that reads to another count is an :class:`InputDataError` naming it.
    """
    series = read_masked(prun.bold, mask, flat_index)
    conf = None
    if confounds:
        if prun.confounds is None:
            raise InputDataError(f"{prun.bold}: --confounds given but no confounds file for {prun.raw.label}")
        conf = _confound_matrix(prun, prun.confounds, confounds, series.shape[0])
    if n_volumes is not None and series.shape[0] != n_volumes:
        raise InputDataError(f"{prun.bold}: {series.shape[0]} volumes read, the header says {n_volumes}")
    return series, conf


def no_signal_error(prun: PreprocessedRun, n_vols: int, n_voxels: int) -> InputDataError:
    """The error for a run in which no voxel of the mask varies (all zeros: an empty or zeroed file): named here,
    since every voxel would otherwise be dropped for it and the message would name the first run instead."""
    return InputDataError(
        f"{prun.bold}: every one of the {n_voxels} voxels in the mask is constant (or not finite) over the run's "
        f"{n_vols} volumes, e.g. all zeros: an empty or zeroed run; replace it or leave the run out "
        "(--bids-filter-file)"
    )
