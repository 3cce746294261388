"""TR-average responses, the method of Wang et al. (2019).

Per run, each voxel's time series is (optionally cleaned of chosen confounds,
then) z-scored over time; a trial's response is the mean of the volumes
acquired nearest to ``onset + L * TR`` for each lag ``L`` of ``response_trs``
(default 3 and 4: 6 and 8 s after onset at TR 2 s, around the HRF peak).

Timing rule (:func:`response_volumes`): volume ``k`` stands for the time
``t_k = k * TR + StartTime`` (``StartTime`` from the preprocessed BOLD's
sidecar, the slice-timing reference fMRIPrep wrote; 0 without one). For lag
``L`` the chosen volume is the ``k`` whose ``t_k`` is nearest to
``onset + L * TR``; a target exactly halfway between two volumes (within
1e-6 TR) takes the later one. With ``StartTime = 0`` and onsets on the TR grid
this is the paper's "onset volume + L"; an onset a few ms before a TR boundary
(45.999 s at TR 2) takes the volumes 6 and 8 s after it, not 4 and 6 s as
``floor(onset / TR) + L`` would. Trials with a negative onset, or whose chosen
volumes fall outside the run, are left out with one warning per run.
Repeats of an image are averaged; single trials are kept for the noise ceiling.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..bids.preprocessed import PreprocessedRun
from ..core.images import load_volume
from ..core.masks import mask_array
from ..errors import InputDataError, UsageError
from .base import ZSCORE_BLOCK_BYTES, Responses, column_block, zscore_block
from .images import average_repeats, response_bytes
from .zscoring import ZSCORING, zscore_over_trials

try:  # ISA-L's inflate is faster than zlib's and as exact; optional
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a dependency, but the standard library does the same job
    import zlib as _zlib

log = logging.getLogger(__name__)


def describe_grid(shape, affine) -> str:
    """``shape (10, 10, 8), voxels 2x2x2 mm, origin (-10, -10, -8) mm`` for error messages."""
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(0))
    return (
        f"shape {tuple(int(n) for n in shape[:3])}, voxels {'x'.join(f'{z:.3g}' for z in zooms)} mm, "
        f"origin ({', '.join(f'{o:.4g}' for o in np.asarray(affine)[:3, 3])}) mm"
    )


def same_grid(img, shape, affine) -> bool:
    """Same shape and affine (to 1e-3 mm, like the runs' check; nilearn's ``check_same_fov`` is of this kind)."""
    return img.shape[:3] == tuple(shape) and np.allclose(img.affine, affine, atol=1e-3)


def _load_mask(path, shape: tuple[int, ...], bold_path, affine=None) -> np.ndarray:
    img = load_volume(path)
    if img.shape[:3] != shape:
        raise InputDataError(f"{path}: mask shape {img.shape[:3]} does not match BOLD {bold_path} shape {shape}")
    if affine is not None and not same_grid(img, shape, affine):
        raise InputDataError(
            f"{path}: brain mask grid ({describe_grid(img.shape, img.affine)}) differs from the "
            f"grid of {bold_path} ({describe_grid(shape, affine)})"
        )
    return np.asarray(img.dataobj) > 0


def combined_mask(runs: Sequence[PreprocessedRun], user_mask=None) -> nib.Nifti1Image:
    """Voxels inside every run's brain mask (and ``user_mask``), as a uint8 NIfTI.

    Shapes and affines are checked against each run's BOLD.
    """
    first = load_volume(runs[0].bold)
    if first.ndim != 4:
        raise InputDataError(f"{runs[0].bold}: expected a 4-D BOLD series, got shape {first.shape}")
    shape, affine = first.shape[:3], first.affine
    mask = np.ones(shape, bool)
    for prun in runs:
        hdr = load_volume(prun.bold)
        if hdr.shape[:3] != shape or not np.allclose(hdr.affine, affine, atol=1e-3):
            raise InputDataError(
                f"{prun.bold}: grid {hdr.shape[:3]} differs from {runs[0].bold} {shape}; all runs must be in one space"
            )
        if prun.mask is not None:
            mask &= _load_mask(prun.mask, shape, prun.bold, affine)
    if user_mask is not None:
        umask = load_volume(user_mask) if not isinstance(user_mask, nib.Nifti1Image) else user_mask
        if umask.shape[:3] != shape:
            raise InputDataError(f"{user_mask}: --mask shape {umask.shape[:3]} does not match the BOLD grid {shape}")
        if not same_grid(umask, shape, affine):
            raise InputDataError(
                f"{user_mask}: --mask grid ({describe_grid(umask.shape, umask.affine)}) differs from "
                f"the grid of {runs[0].bold} ({describe_grid(shape, affine)}); give --resample-mask "
                "to resample it (nearest neighbour) onto the BOLD grid"
            )
        mask &= np.asarray(umask.dataobj) > 0
    if not mask.any():
        raise InputDataError(f"{runs[0].bold}: the brain masks (and --mask) leave no voxel")
    return nib.Nifti1Image(mask.astype(np.uint8), affine)


def _confound_matrix(prun: PreprocessedRun, names: Sequence[str], n_vols: int) -> np.ndarray:
    table = pd.read_csv(prun.confounds, sep="\t", na_values=["n/a"])
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise InputDataError(f"{prun.confounds}: confound column(s) {missing} not found")
    if len(table) != n_vols:
        raise InputDataError(f"{prun.confounds}: {len(table)} rows but {prun.bold} has {n_vols} volumes")
    # fMRIPrep writes n/a for the first volume of derivative regressors (e.g. framewise_displacement)
    return table[list(names)].fillna(0.0).to_numpy(float)


def warn_left_out(prun: PreprocessedRun, n_vols: int, negative: np.ndarray, outside: np.ndarray, what: str) -> None:
    """One warning for a run's trials left out: negative onsets, and trials whose ``what`` fall outside the run."""
    n_neg, n_out = int(np.sum(negative)), int(np.sum(outside))
    if not n_neg and not n_out:
        return
    parts = []
    if n_neg:
        parts.append(f"{n_neg} with a negative onset")
    if n_out:
        parts.append(f"{n_out} whose {what} fall outside the run's {n_vols} volumes")
    log.warning(
        "%s: %d trial(s) left out (%s); BOLD %s", prun.raw.events, n_neg + n_out, ", ".join(parts), prun.bold.name
    )


def start_times(runs: Sequence[PreprocessedRun]) -> float | list[float]:
    """The runs' ``StartTime`` for provenance: one number when they agree, else one per run."""
    values = sorted({float(p.start_time) for p in runs})
    return values[0] if len(values) == 1 else [float(p.start_time) for p in runs]


def default_read_threads() -> int:
    """Runs read at once when not told: ``min(4, CPUs this process may use)``.

    Inflating a ``.nii.gz`` is the cost of reading a run; zlib (and ISA-L)
    release the GIL while they inflate, so threads overlap it on several cores.
    More than a few threads gain little and each holds one decompressed run.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


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
        except _zlib.error as exc:
            raise InputDataError(f"{path}: gzip data is damaged ({exc})") from exc
        if not d.eof:
            raise InputDataError(f"{path}: gzip stream is truncated")
        pos = len(comp) - len(d.unused_data)
    del view
    out = parts[0] if len(parts) == 1 else b"".join(parts)
    if len(out) < expected:
        raise InputDataError(f"{path}: {len(out)} bytes after decompression, the header needs {expected}")
    return out


def read_masked(path, mask: np.ndarray, flat_index: np.ndarray | None = None) -> np.ndarray:
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
    simple = (
        hasattr(proxy, "offset")
        and getattr(proxy, "order", "F") == "F"
        and np.dtype(proxy.dtype).kind in "biuf"
        and str(path).endswith(".gz")
    )
    if simple:
        dtype = np.dtype(proxy.dtype)
        offset = int(proxy.offset)
        buf = _inflate(path, offset + n_vox3 * n_vols * dtype.itemsize)
        stored = np.frombuffer(buf, dtype=dtype, count=n_vox3 * n_vols, offset=offset)
    else:  # uncompressed (memory-mapped by nibabel) or an unusual layout: nibabel's unscaled reader
        stored = np.asarray(proxy.get_unscaled()).reshape(-1, order="F")
    # Fortran order: volume t is stored[t * n_vox3:(t + 1) * n_vox3], contiguous
    series = np.take(stored.reshape(n_vols, n_vox3), flat_index, axis=1).astype(np.float32, copy=False)
    del stored
    slope, inter = _scaling(proxy)
    if slope != 1.0:
        series *= np.float32(slope)
    if inter != 0.0:
        series += np.float32(inter)
    return series


def _scaling(proxy) -> tuple[float, float]:
    """The header's slope and intercept (1, 0 when the file is not scaled, as nibabel reads it)."""
    slope = float(np.asarray(getattr(proxy, "slope", 1.0)))
    inter = float(np.asarray(getattr(proxy, "inter", 0.0)))
    if not np.isfinite(slope) or slope == 0:
        slope = 1.0
    if not np.isfinite(inter):
        inter = 0.0
    return slope, inter


def fortran_index(mask: np.ndarray) -> np.ndarray:
    """The voxels of a 3-D ``mask`` in C order, as flat indices into the Fortran-ordered grid NIfTI stores."""
    return np.ravel_multi_index(np.nonzero(mask), mask.shape, order="F").astype(np.intp)


def load_run(
    prun: PreprocessedRun,
    mask: np.ndarray,
    confounds: Sequence[str] | None = None,
    *,
    flat_index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One run's BOLD inside ``mask`` and its chosen confounds.

    Returns ``series`` (n_vols, n_voxels) float32 (read by :func:`read_masked`:
    no 4-D float copy) and the confound matrix (n_vols, n_confounds), or None
    when no confounds are asked for.
    """
    series = read_masked(prun.bold, mask, flat_index)
    conf = None
    if confounds:
        if prun.confounds is None:
            raise InputDataError(f"{prun.bold}: --confounds given but no confounds file for {prun.raw.label}")
        conf = _confound_matrix(prun, confounds, series.shape[0])
    return series, conf


def no_signal_error(prun: PreprocessedRun, n_vols: int, n_voxels: int) -> InputDataError:
    """The error for a run in which no voxel of the mask varies (all zeros: an empty or zeroed file): named here,
    since every voxel would otherwise be dropped for it and the message would name the first run instead."""
    return InputDataError(
        f"{prun.bold}: every one of the {n_voxels} voxels in the mask is constant (or not finite) over the run's "
        f"{n_vols} volumes, e.g. all zeros: an empty or zeroed run; replace it or leave the run out "
        "(--bids-filter-file)"
    )


def run_read_bytes(prun: PreprocessedRun, n_voxels: int) -> int:
    """Bytes one run holds while it is read and z-scored (the reader threads' unit of memory).

    The compressed file, its stored bytes, the masked series as stored and as
    float32, and :func:`clean_and_zscore`'s float32 volumes written out (at most
    the series again) and its cache-sized float64 blocks (two).
    """
    img = load_volume(prun.bold)
    n_vols = int(img.shape[3]) if len(img.shape) == 4 else 1
    itemsize = np.dtype(img.get_data_dtype()).itemsize
    stored = int(np.prod(img.shape)) * itemsize
    compressed = Path(prun.bold).stat().st_size if str(prun.bold).endswith(".gz") else 0
    return compressed + stored + n_vols * n_voxels * (itemsize + 4 + 4) + 2 * ZSCORE_BLOCK_BYTES


def reader_threads(n_threads: int | None, per_run: int, mem_bytes: int | None, resident: int = 0, where=None) -> int:
    """How many runs to read at once: ``n_threads`` (default :func:`default_read_threads`), capped by memory.

    With ``mem_bytes`` (the ``--mem-gb`` ceiling) the result arrays held for
    the whole participant (``resident``) plus one ``per_run`` per thread must
    fit; when even one thread does not, :class:`~bids_taskenc.errors.UsageError`
    says how much is needed.
    """
    n = default_read_threads() if n_threads is None else int(n_threads)
    if n < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads!r}")
    if mem_bytes is None:
        return n
    room = int(mem_bytes) - int(resident)
    if room < per_run:
        prefix = f"{where}: " if where is not None else ""
        raise UsageError(
            f"{prefix}the responses need at least {(resident + per_run) / 1e9:.2f} GB (results "
            f"{resident / 1e9:.2f} GB + one run being read {per_run / 1e9:.2f} GB), more than the "
            f"memory ceiling of {mem_bytes / 1e9:.2f} GB (--mem); raise it or give a smaller --mask"
        )
    return max(1, min(n, room // per_run))


def confound_basis(confounds: np.ndarray | None, n_vols: int) -> np.ndarray | None:
    """Orthonormal basis (float64, ``(n_vols, r)``) of the confounds with an intercept; None without confounds.

    Its rank is decided as ``np.linalg.lstsq`` does (singular values above
    ``eps * max(shape)`` times the largest), so collinear confounds are fine.
    """
    if confounds is None or not confounds.shape[1]:
        return None
    confounds = np.asarray(confounds, np.float64)
    design = np.column_stack([np.ones(n_vols), confounds - confounds.mean(0)])
    u, sv, _ = np.linalg.svd(design, full_matrices=False)
    return u[:, sv > np.finfo(np.float64).eps * max(design.shape) * sv[0]]


def clean_and_zscore(series: np.ndarray, confounds: np.ndarray | None = None, rows=None) -> np.ndarray:
    """Regress out ``confounds`` (with an intercept), then z-score each column over time.

    Parameters
    ----------
    series : ndarray, shape (n_vols, n_voxels)
        Left as it is.
    confounds : ndarray, shape (n_vols, n_confounds), optional
    rows : index into the volumes, optional
        Return only these volumes of the z-scored series (e.g. an int array
        ``(n_trials, n_lags)``); the regression, mean and SD still use all volumes.

    Returns
    -------
    ndarray, shape (n_vols, n_voxels) (or ``rows``' shape + (n_voxels,)), float32;
    columns with zero variance (or not finite anywhere) are NaN.

    The work is float64 on a cache-sized block of voxels at a time (centre,
    subtract the projection on the confounds' orthonormal basis, z-score by
    :func:`~bids_taskenc.responses.base.zscore_block`), so no float64 copy of
    the whole series is made and only ``rows`` are written out.
    """
    n_vols, n_vox = series.shape
    basis = confound_basis(confounds, n_vols)
    lead = (n_vols,) if rows is None else np.shape(np.arange(n_vols)[rows])
    z = np.empty(lead + (n_vox,), np.float32)
    step = column_block(n_vols)
    with np.errstate(invalid="ignore"):
        for a in range(0, n_vox, step):
            b = min(n_vox, a + step)
            x = series[:, a:b].astype(np.float64)
            x -= x.mean(0)  # so the constant-voxel tolerance is relative to the signal, not the BOLD offset
            if basis is not None:
                x -= basis @ (basis.T @ x)
            zscore_block(x, rows, out=z[..., a:b])
    return z


def response_volumes(
    onsets: np.ndarray, tr: float, n_vols: int, lags: Sequence[int], start_time: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The volumes that make each trial's response, and which trials have them all.

    Parameters
    ----------
    onsets : array of shape (n_trials,)
        Trial onsets in seconds from the start of the run.
    tr : float
        Repetition time (s).
    n_vols : int
        Volumes in the run.
    lags : sequence of int
        Lags in TRs; for each, the volume acquired nearest to ``onset + lag * tr``.
    start_time : float
        Time (s) volume 0 stands for (the sidecar's ``StartTime``); volume
        ``k`` stands for ``k * tr + start_time``.

    Returns
    -------
    vols : ndarray of int, shape (n_trials, n_lags)
        Chosen volume indices (may be out of range where ``inside`` is False).
    negative : ndarray of bool, shape (n_trials,)
        Onset below 0.
    outside : ndarray of bool, shape (n_trials,)
        Some chosen volume is below 0 or above ``n_vols - 1``.
    """
    onsets = np.asarray(onsets, dtype=np.float64)
    lags = np.asarray(lags, dtype=np.float64)
    target = onsets[:, None] + lags[None, :] * tr  # seconds from the run's start
    # nearest volume; halfway (within 1e-6 TR, float noise) goes to the later one
    vols = np.floor((target - start_time) / tr + 0.5 + 1e-6).astype(np.int64)
    negative = ~(onsets >= 0)  # NaN onsets count as unusable too
    outside = (vols < 0).any(1) | (vols > n_vols - 1).any(1)
    return vols, negative, outside


def plan_run_reads(runs: Sequence[PreprocessedRun], trials: pd.DataFrame, select) -> list[tuple]:
    """Per run with usable trials: ``(prun, its trial rows, n_vols, extra)`` from the header alone.

    ``select(prun, run_trials, n_vols)`` returns ``(kept rows, extra)`` (it
    warns about the trials it leaves out) or None to skip the run. Knowing every
    run's trial count before reading lets the runs be read in parallel straight
    into one preallocated array.
    """
    plan = []
    for prun in runs:
        run_trials = trials[trials["run_key"] == prun.raw.label]
        if run_trials.empty:
            continue
        shape = load_volume(prun.bold).shape
        if len(shape) != 4:
            raise InputDataError(f"{prun.bold}: expected a 4-D BOLD series, got shape {shape}")
        chosen = select(prun, run_trials, int(shape[3]))
        if chosen is not None and len(chosen[0]):
            plan.append((prun, chosen[0], int(shape[3]), chosen[1]))
    return plan


def read_runs_into(
    plan: list[tuple],
    n_voxels: int,
    compute,
    *,
    n_threads: int | None = None,
    mem_gb: float | None = None,
    n_images: int | None = None,
    where=None,
    progress: bool = False,
) -> np.ndarray:
    """Fill one ``(n_trials, n_voxels)`` float32 array, run by run, with ``compute(item) -> (rows, n_voxels)``.

    Runs are read by a pool of threads (``n_threads``, default
    :func:`default_read_threads`; fewer when ``mem_gb`` is the ceiling, see
    :func:`reader_threads`), so at most that many runs are decompressed at once;
    each run's rows go straight into their slice, so the result is the same,
    bit for bit, whatever the number of threads. ``progress`` shows a bar of
    the runs read (stderr).
    """
    sizes = [len(item[1]) for item in plan]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n_trials = int(starts[-1])
    # the runs share one grid; the largest file (and longest run) stands for all (one header read, not one per run)
    per_run = (
        run_read_bytes(max(plan, key=lambda item: (item[2], Path(item[0].bold).stat().st_size))[0], n_voxels)
        if plan
        else 0
    )
    resident = response_bytes(n_trials, n_images if n_images is not None else n_trials, n_voxels)
    n = reader_threads(n_threads, per_run, None if mem_gb is None else mem_gb * 1e9, resident, where)
    n = min(n, max(1, len(plan)))
    out = np.empty((n_trials, n_voxels), np.float32)

    bar = tqdm(total=len(plan), desc="runs read", unit="run", disable=not progress)

    def one(i: int) -> None:
        block = compute(plan[i])
        out[starts[i] : starts[i + 1]] = block
        bar.update(1)

    log.debug("reading %d runs with %d thread(s)", len(plan), n)
    with bar:
        if n == 1:
            for i in range(len(plan)):
                one(i)
        else:
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="bids_taskenc-read") as pool:
                for fut in [pool.submit(one, i) for i in range(len(plan))]:
                    fut.result()  # the first failure is raised (the others still finish)
    return out


def read_trial_responses(
    runs: Sequence[PreprocessedRun],
    trials: pd.DataFrame,
    select,
    compute,
    n_voxels: int,
    *,
    n_threads: int | None = None,
    mem_gb: float | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, pd.DataFrame]:
    """The trial responses of every run (``(n_trials, n_voxels)`` float32) and the trials they are of.

    ``select(prun, run_trials, n_vols)`` chooses a run's usable trials (see
    :func:`plan_run_reads`); ``compute(item)`` turns one planned run into its
    ``(rows, n_voxels)`` responses. The response models (``travg``, ``lsa``)
    differ only in these two functions.
    """
    plan = plan_run_reads(runs, trials, select)
    if not plan:
        raise InputDataError("no trial of the selected runs falls inside its run")
    used = pd.concat([item[1] for item in plan], ignore_index=True)
    trial_data = read_runs_into(
        plan,
        n_voxels,
        compute,
        n_threads=n_threads,
        mem_gb=mem_gb,
        n_images=int(used["image_id"].nunique()),
        where=runs[0].bold,
        progress=progress,
    )
    return trial_data, used


def tr_average_responses(
    runs: Sequence[PreprocessedRun],
    trials: pd.DataFrame,
    *,
    response_trs: Sequence[int] = (3, 4),
    confounds: Sequence[str] | None = None,
    user_mask=None,
    n_threads: int | None = None,
    mem_gb: float | None = None,
    progress: bool = False,
    zscore: str = "run",
) -> Responses:
    """Build :class:`Responses` from preprocessed runs and their trials.

    Parameters
    ----------
    runs : PreprocessedRun list
        One participant's runs, all on one voxel grid.
    trials : DataFrame
        The ``Trials`` rows of these runs (``run_key`` links them).
    response_trs : sequence of int
        Lags ``L`` in TRs; the volumes acquired nearest to ``onset + L * TR``
        are averaged (see :func:`response_volumes`).
    confounds : sequence of str, optional
        fMRIPrep confound columns to regress out before z-scoring.
    user_mask : path or NIfTI, optional
        Further restricts the voxels.
    n_threads : int, optional
        Runs read at once (default :func:`default_read_threads`).
    mem_gb : float, optional
        Memory ceiling (GB = 1e9 bytes) for the responses: fewer reader threads
        when the runs would not fit, an error when even one does not.
    progress : bool
        Show a bar of the runs read.
    zscore : {'run', 'trials'}
        Z-score each voxel's series over the run, or each lag's volumes over the run's trials
        (:mod:`~bids_taskenc.responses.zscoring`).
    """
    if zscore not in ZSCORING:
        raise ValueError(f"zscore must be one of {', '.join(ZSCORING)}, got {zscore!r}")
    if not len(response_trs) or min(response_trs) < 0:
        raise ValueError("response_trs must be non-negative volume offsets")
    mask_img = combined_mask(runs, user_mask)
    mask = mask_array(mask_img)
    flat_index = fortran_index(mask)
    offsets = np.asarray(response_trs, int)

    def select(prun, run_trials, n_vols):
        vols, negative, outside = response_volumes(
            run_trials["onset"].to_numpy(float), prun.raw.repetition_time, n_vols, offsets, prun.start_time
        )
        fits = ~negative & ~outside
        warn_left_out(
            prun,
            n_vols,
            negative,
            outside & ~negative,
            f"response volumes (nearest to onset + {list(map(int, offsets))} TR)",
        )
        return run_trials[fits], vols[fits]

    def compute(item):
        prun, _rows, n_vols, vols = item
        series, conf = load_run(prun, mask, confounds, flat_index=flat_index)
        if series.shape[0] != n_vols:
            raise InputDataError(f"{prun.bold}: {series.shape[0]} volumes read, the header says {n_vols}")
        z = clean_and_zscore(series, conf, rows=vols)  # (n_trials_run, n_lags, n_vox), only the volumes used
        del series
        if zscore == "trials":
            z = zscore_over_trials(z)
        block = z.mean(1)  # (n_trials_run, n_vox)
        if block.size and not np.isfinite(block).any():
            raise no_signal_error(prun, n_vols, block.shape[1])
        return block

    trial_data, used = read_trial_responses(
        runs, trials, select, compute, int(mask.sum()), n_threads=n_threads, mem_gb=mem_gb, progress=progress
    )
    return average_repeats(
        trial_data,
        used,
        mask_img,
        {
            "ResponseModel": "travg",
            "ResponseTRs": [int(o) for o in offsets],
            "VolumeChoice": "per lag L, the volume acquired nearest to onset + L*TR (volume k at k*TR + StartTime; "
            "halfway: the later one)",
            "StartTime": start_times(runs),
            "Confounds": list(confounds or []),
            "NRuns": len(runs),
            "ZScoring": zscore,
            "Units": "z-scored BOLD (per run, per voxel)"
            if zscore == "run"
            else "z-scored BOLD (per run, voxel and lag, over the run's trials)",
        },
        where=runs[0].bold,
        overwrite=True,
    )
