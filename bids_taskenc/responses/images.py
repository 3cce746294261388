"""Single-trial responses -> one response per image: the step every response model shares.

``travg``, ``lsa`` and ``betas`` each produce one row of responses per trial;
:func:`average_repeats` drops the voxels that are not finite for some trial
(constant voxels come out NaN from the per-run / per-session z-scoring),
averages the repeats of each image, and keeps the single trials for the noise
ceiling.
"""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pandas as pd

from ..core.masks import mask_array
from ..errors import InputDataError
from .base import Responses

log = logging.getLogger(__name__)

#: Size of the float64 block of sums :func:`average_repeats` holds at once.
AVERAGE_BLOCK_BYTES = 256 * 2**20


def response_bytes(n_trials: int, n_images: int, n_voxels: int) -> int:
    """Bytes a participant's responses hold: float32 trial and image rows, plus one block of float64 sums."""
    return 4 * (n_trials + n_images) * n_voxels + min(AVERAGE_BLOCK_BYTES, 8 * n_images * n_voxels)


def image_means(trial_data: np.ndarray, image_index: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of the trials of each image, ``(n_images, n_voxels)`` float32 (sums in float64).

    An image shown once is its trial; the float64 sums of repeated images are
    made a block of voxels at a time: the same numbers as one ``(n_images,
    n_voxels)`` float64 array and ``np.add.at`` (8 GB for BOLD5000's 4,916 images
    at 200,000 voxels, and slow), without holding it. The work cache rebuilds
    ``Responses.data`` with it instead of storing it beside ``trial_data``.
    """
    counts = np.asarray(counts)
    image_index = np.asarray(image_index)
    n_images, n_voxels = len(counts), trial_data.shape[1]
    # each trial's showing number for its image (0 for the first, in trial order)
    order = np.argsort(image_index, kind="stable")
    ranked = image_index[order]
    showing = np.empty(len(image_index), np.int64)
    showing[order] = np.arange(len(ranked)) - np.searchsorted(ranked, ranked, side="left")
    data = np.empty((n_images, n_voxels), np.float32)
    first = np.flatnonzero(showing == 0)
    # an image shown once: its mean is its trial (x / 1 in float64 is x); copied a block of voxels at a time
    step = max(1, AVERAGE_BLOCK_BYTES // (4 * max(1, n_images)))
    for a in range(0, n_voxels, step):
        data[image_index[first], a : a + step] = trial_data[first, a : a + step]
    repeated = np.flatnonzero(counts > 1)
    if repeated.size:
        # float64 sums of the repeated images' trials, showing 0, then 1, ...: each image's trials added in
        # trial order, as np.add.at adds them (the same sums, bit for bit), one vectorised pass per showing
        slot = np.full(n_images, -1, np.int64)
        slot[repeated] = np.arange(repeated.size)
        passes = [
            rows[slot[image_index[rows]] >= 0]
            for rows in (np.flatnonzero(showing == k) for k in range(int(counts.max())))
        ]
        step = max(1, AVERAGE_BLOCK_BYTES // (8 * repeated.size))
        for a in range(0, n_voxels, step):
            sums = np.zeros((repeated.size, min(step, n_voxels - a)), np.float64)
            for rows in passes:
                sums[slot[image_index[rows]]] += trial_data[rows, a : a + step]
            data[repeated, a : a + step] = sums / counts[repeated, None]
    return data


def keep_columns_in_place(a: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``a[:, keep]`` written over ``a``'s own buffer (C-contiguous ``a``), as a view of its start.

    Row ``i``'s kept values go to ``[i*k, (i+1)*k)`` of the flat buffer, which
    ends before row ``i + 1`` begins, so rows are compacted in order with one
    row's copy at a time instead of a second whole array. ``a`` is overwritten.
    """
    if not a.flags.c_contiguous:
        raise ValueError("keep_columns_in_place needs a C-contiguous array")
    n = a.shape[0]
    idx = np.flatnonzero(keep)
    k = idx.size
    flat = a.reshape(-1)
    for i in range(n):
        flat[i * k : (i + 1) * k] = a[i, idx]  # the fancy index copies row i before it is overwritten
    return flat[: n * k].reshape(n, k)


def drop_invalid_voxels(
    trial_data: np.ndarray, mask_img: nib.Nifti1Image, *, overwrite: bool = False
) -> tuple[np.ndarray, nib.Nifti1Image, int]:
    """Drop voxels (columns) with any non-finite trial value; shrink the mask to match.

    Returns ``(trial_data, mask_img, n_dropped)``. With ``overwrite`` (and a
    C-contiguous ``trial_data``) the kept columns are compacted inside
    ``trial_data``'s buffer (which is then overwritten) instead of copied.
    """
    mask = mask_array(mask_img)
    if trial_data.shape[1] != int(mask.sum()):
        raise ValueError(f"trial_data has {trial_data.shape[1]} voxels but the mask {int(mask.sum())}")
    invalid = np.zeros(trial_data.shape[1], bool)
    step = max(1, 2**26 // max(1, trial_data.shape[1]))  # rows at a time: a bounded boolean temporary
    for a in range(0, trial_data.shape[0], step):
        invalid |= ~np.isfinite(trial_data[a : a + step]).all(0)
    n_dropped = int(invalid.sum())
    if n_dropped:
        log.info("dropped %d of %d voxels that are constant or not finite in some run", n_dropped, invalid.size)
        mask_flat = mask.ravel().copy()
        idx = np.flatnonzero(mask_flat)
        mask_flat[idx[invalid]] = False
        mask_img = nib.Nifti1Image(mask_flat.reshape(mask.shape).astype(np.uint8), mask_img.affine)
        if overwrite and trial_data.flags.c_contiguous and trial_data.flags.writeable:
            trial_data = keep_columns_in_place(trial_data, ~invalid)
        else:
            trial_data = trial_data[:, ~invalid]
    return trial_data, mask_img, n_dropped


def average_repeats(
    trial_data: np.ndarray,
    trials_df: pd.DataFrame,
    mask_img: nib.Nifti1Image,
    provenance: dict | None = None,
    *,
    where=None,
    overwrite: bool = False,
) -> Responses:
    """Build :class:`Responses` from single-trial responses.

    Parameters
    ----------
    trial_data : ndarray, shape (n_trials, n_voxels)
        One row per trial, columns are the nonzero voxels of ``mask_img`` in C order.
    trials_df : DataFrame
        The ``Trials`` rows, aligned with ``trial_data`` (needs ``image_id`` and ``session``).
    mask_img : NIfTI
        3-D mask with ``n_voxels`` nonzero voxels.
    provenance : dict
        Model name and settings; voxel, trial and image counts are added
        (``NVoxels``, ``NVoxelsDropped``, ``NTrials``, ``NImages``, ``NRepeatedImages``).
    where : str or path, optional
        The input file named in errors (e.g. the first run's BOLD).
    overwrite : bool
        ``trial_data`` may be overwritten: dropped voxels are removed inside its
        buffer (:func:`drop_invalid_voxels`) instead of by a second whole copy.

    Voxels not finite in some trial are dropped (counted in ``NVoxelsDropped``).
    Images are ordered by their first showing; ``image_sessions`` is the session of that showing.
    """
    trial_data = np.asarray(trial_data)
    used = trials_df.reset_index(drop=True)
    if len(used) != trial_data.shape[0]:
        raise ValueError(f"{len(used)} trials but {trial_data.shape[0]} rows of trial data")
    prefix = f"{where}: " if where is not None else ""
    if not len(used):
        raise InputDataError(f"{prefix}no trial to build responses from")
    trial_data, mask_img, n_dropped = drop_invalid_voxels(trial_data, mask_img, overwrite=overwrite)
    if trial_data.shape[1] == 0:
        raise InputDataError(f"{prefix}no voxel left after dropping constant or non-finite voxels")

    image_ids, image_index = np.unique(used["image_id"].astype(str).to_numpy(), return_inverse=True)
    # order images by first showing, so rows follow the experiment
    first = np.full(len(image_ids), len(used))
    np.minimum.at(first, image_index, np.arange(len(used)))
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    image_index = rank[image_index]
    image_ids = image_ids[order]
    counts = np.bincount(image_index, minlength=len(image_ids))
    data = image_means(trial_data, image_index, counts)
    sessions = used.groupby(image_index)["session"].first().reindex(range(len(image_ids))).to_numpy()

    prov = dict(provenance or {})
    prov.update(
        {
            "NVoxels": int(trial_data.shape[1]),
            "NVoxelsDropped": n_dropped,
            "NTrials": int(len(used)),
            "NImages": int(len(image_ids)),
            "NRepeatedImages": int((counts > 1).sum()),
        }
    )
    return Responses(
        data=data,
        image_ids=[str(i) for i in image_ids],
        mask_img=mask_img,
        n_presentations=counts,
        trial_data=trial_data.astype(np.float32, copy=False),
        trial_image_index=image_index,
        trials=used,
        image_sessions=sessions,
        provenance=prov,
    )
