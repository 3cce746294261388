"""A participant's runs read into one ``(n_trials, n_voxels)`` array: planned from the headers, read by a pool of
threads, as many at once as the memory ceiling allows.

The response models that read BOLD (``travg``, ``lsa``) differ only in two functions they give
:func:`read_trial_responses`: ``select`` (which of a run's trials are usable) and ``compute`` (one planned run's
responses). Each run's rows go straight into their slice of one preallocated array, so the result is the same,
bit for bit, whatever the number of threads (docs/architecture.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..bids.preprocessed import PreprocessedRun
from ..core.images import load_volume
from ..core.resources import BYTES_PER_GB, available_cpus, pieces_that_fit, room_bytes
from ..errors import InputDataError, UsageError
from .base import ZSCORE_BLOCK_BYTES
from .images import response_bytes

log = logging.getLogger(__name__)


class PlannedRun(NamedTuple):
    """One run to read: its files, its usable trials, its volume count (from the header) and what ``select``
    added (e.g. travg's chosen volumes, ``(n_trials, n_lags)``; None for lsa)."""

    prun: PreprocessedRun
    trials: pd.DataFrame
    n_vols: int
    extra: Any


#: ``select(prun, run_trials, n_vols) -> (kept trial rows, extra)``, or None to skip the run.
Select = Callable[[PreprocessedRun, pd.DataFrame, int], "tuple[pd.DataFrame, Any] | None"]
#: ``compute(planned run) -> (n_kept_trials, n_voxels)`` float32 responses.
Compute = Callable[[PlannedRun], np.ndarray]


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
    return max(1, min(4, available_cpus()))


def run_read_bytes(prun: PreprocessedRun, n_voxels: int) -> int:
    """Bytes one run holds while it is read and z-scored (the reader threads' unit of memory).

    The compressed file, its stored bytes, the masked series as stored and as
    float32, and travg's ``clean_and_zscore``'s float32 volumes written out (at most
    the series again) and its cache-sized float64 blocks (two).
    """
    img = load_volume(prun.bold)
    n_vols = int(img.shape[3]) if len(img.shape) == 4 else 1
    itemsize = np.dtype(img.get_data_dtype()).itemsize
    stored = int(np.prod(img.shape)) * itemsize
    compressed = Path(prun.bold).stat().st_size if str(prun.bold).endswith(".gz") else 0
    return compressed + stored + n_vols * n_voxels * (itemsize + 4 + 4) + 2 * ZSCORE_BLOCK_BYTES


def reader_threads(
    n_threads: int | None, per_run: int, mem_bytes: float | None, resident: float = 0, where: object = None
) -> int:
    """How many runs to read at once: ``n_threads`` (default :func:`default_read_threads`), capped by memory.

    With ``mem_bytes`` (the ``--mem`` ceiling) the result arrays held for
    the whole participant (``resident``) plus one ``per_run`` per thread must
    fit (:func:`~bids_taskenc.core.resources.pieces_that_fit`); when even one thread does not,
    :class:`~bids_taskenc.errors.UsageError` says how much is needed.
    """
    n = default_read_threads() if n_threads is None else int(n_threads)
    if n < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads!r}")
    if mem_bytes is None:
        return n
    fitting = pieces_that_fit(room_bytes(int(mem_bytes), int(resident)), per_run, n)
    if not fitting:
        prefix = f"{where}: " if where is not None else ""
        raise UsageError(
            f"{prefix}the responses need at least {(resident + per_run) / 1e9:.2f} GB (results "
            f"{resident / 1e9:.2f} GB + one run being read {per_run / 1e9:.2f} GB), more than the "
            f"memory ceiling of {mem_bytes / 1e9:.2f} GB (--mem); raise it or give a smaller --mask"
        )
    return fitting


def plan_run_reads(runs: Sequence[PreprocessedRun], trials: pd.DataFrame, select: Select) -> list[PlannedRun]:
    """Per run with usable trials: its :class:`PlannedRun`, from the header alone.

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
            plan.append(PlannedRun(prun, chosen[0], int(shape[3]), chosen[1]))
    return plan


def _threads_for(plan: list[PlannedRun], n_voxels: int, n_trials: int, n_images: int, **limits: Any) -> int:
    """Reader threads for ``plan`` under ``limits`` (``n_threads``, ``mem_gb``, ``where``): :func:`reader_threads`
    with the results held for the participant and the largest run being read."""
    # the runs share one grid; the largest file (and longest run) stands for all (one header read, not one per run)
    largest = max(plan, key=lambda item: (item.n_vols, Path(item.prun.bold).stat().st_size)) if plan else None
    per_run = run_read_bytes(largest.prun, n_voxels) if largest is not None else 0
    resident = response_bytes(n_trials, n_images, n_voxels)
    mem_gb = limits.get("mem_gb")
    ceiling = None if mem_gb is None else mem_gb * BYTES_PER_GB
    n = reader_threads(limits.get("n_threads"), per_run, ceiling, resident, limits.get("where"))
    return min(n, max(1, len(plan)))


def read_runs_into(
    plan: list[PlannedRun],
    n_voxels: int,
    compute: Compute,
    *,
    n_threads: int | None = None,
    mem_gb: float | None = None,
    n_images: int | None = None,
    where: object = None,
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
    starts = np.concatenate([[0], np.cumsum([len(item.trials) for item in plan])]).astype(int)
    n_trials = int(starts[-1])
    n_images = n_images if n_images is not None else n_trials
    n = _threads_for(plan, n_voxels, n_trials, n_images, n_threads=n_threads, mem_gb=mem_gb, where=where)
    out = np.empty((n_trials, n_voxels), np.float32)
    bar = tqdm(total=len(plan), desc="runs read", unit="run", disable=not progress)

    def one(i: int) -> None:
        out[starts[i] : starts[i + 1]] = compute(plan[i])
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
    select: Select,
    compute: Compute,
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
    used = pd.concat([item.trials for item in plan], ignore_index=True)
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
