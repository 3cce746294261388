"""The ``Responses`` contract: one response per image, per voxel, for one participant."""

from __future__ import annotations

from dataclasses import dataclass, field

import nibabel as nib
import numpy as np
import pandas as pd

from ..core.masks import to_image


def varying_columns(x: np.ndarray, sd: np.ndarray | None = None) -> np.ndarray:
    """Columns of ``x`` (n, v) whose SD exceeds rounding: ``sd > 1e-8 (max|x| + 1e-12)``, shape (v,).

    ``sd`` is ``x.std(0)`` when not given; columns holding NaN or inf never count as varying.
    """
    sd = x.std(0) if sd is None else sd
    with np.errstate(invalid="ignore"):
        return sd > 1e-8 * (np.abs(x).max(0) + 1e-12)


#: Bytes of one float64 block of columns in :func:`zscore_columns` and ``clean_and_zscore`` (cache-sized).
ZSCORE_BLOCK_BYTES = 1 << 21


def column_block(n_rows: int) -> int:
    """Columns per block so that a float64 ``(n_rows, block)`` array holds about :data:`ZSCORE_BLOCK_BYTES`."""
    return max(1, ZSCORE_BLOCK_BYTES // (8 * max(1, int(n_rows))))


def zscore_block(x: np.ndarray, rows=None, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`zscore_columns` of one float64 block ``x`` (n, b), which it overwrites (centred).

    Returns the z-scored ``x[rows]`` (all rows when None), written into ``out`` when given.
    """
    with np.errstate(invalid="ignore"):  # inf in a column: NaN there, and the column is dropped
        big = np.abs(x).max(0)  # of x as given: the tolerance is relative to it (varying_columns)
        x -= x.mean(0)
        sd = np.sqrt(np.einsum("ij,ij->j", x, x) / x.shape[0])
        ok = sd > 1e-8 * (big + 1e-12)  # varying_columns' rule
        picked = x if rows is None else x[rows]
        if out is None:
            out = np.empty(picked.shape, np.float64)
        np.divide(picked, np.where(ok, sd, 1.0), out=out, casting="same_kind")
    out[..., ~ok] = np.nan
    return out


def zscore_within_groups(x: np.ndarray, groups) -> np.ndarray:
    """``x`` (n, v), in place: the rows of each group z-scored per column (:func:`zscore_columns`).

    ``groups`` (n,) labels the rows (e.g. the session of each trial; None is a label of its own). A column that
    does not vary within a group, or holds a NaN there, is NaN in that group's rows. Returns ``x``.
    """
    labels = np.asarray([str(g) for g in groups])
    if labels.shape != (x.shape[0],):
        raise ValueError(f"groups must have one label per row ({x.shape[0]}), got shape {labels.shape}")
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        x[rows] = zscore_columns(x[rows], dtype=x.dtype)
    return x


def zscore_columns(x: np.ndarray, *, rows=None, dtype=None) -> np.ndarray:
    """Each column of ``x`` (n, v) z-scored (population SD); columns that do not vary are NaN.

    The tolerance is relative to ``max|x|`` (see :func:`varying_columns`): pass
    an already centred ``x`` to judge it against the signal, not its offset.

    ``rows`` (an index into the first axis, e.g. an int array of any shape)
    returns only ``z[rows]`` (mean and SD are still over all rows); ``dtype``
    is the result's (default ``x``'s floating type, at least float32). The work
    is done in float64, a cache-sized block of columns at a time, so no float64
    copy of the whole ``x`` is made and ``x`` is left as it is.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {x.shape}")
    n, v = x.shape
    dtype = np.dtype(dtype if dtype is not None else np.result_type(x.dtype, np.float32))
    lead = (n,) if rows is None else np.shape(np.arange(n)[rows])
    z = np.empty(lead + (v,), dtype)
    step = column_block(n)
    for a in range(0, v, step):
        b = min(v, a + step)
        zscore_block(x[:, a:b].astype(np.float64), rows, out=z[..., a:b])
    return z


@dataclass
class Responses:
    """One participant's image responses.

    Attributes
    ----------
    data : ndarray, shape (n_images, n_voxels), float32
        Response to each unique image (repeats averaged), in the unit of the
        response model (``travg``: z-scored BOLD, i.e. standard deviations of
        the voxel's run time series).
    image_ids : list of str, length n_images
        Stimulus file names, the keys features are looked up by.
    mask_img : nibabel.Nifti1Image
        3-D mask with ``n_voxels`` nonzero voxels, in C order; any
        ``(n_voxels,)`` vector goes back to a volume with :meth:`unmask`.
    n_presentations : ndarray, shape (n_images,), int
        How many trials were averaged into each row of ``data``.
    trial_data : ndarray, shape (n_trials, n_voxels), float32
        Single-trial responses, for the noise ceiling and reliability.
    trial_image_index : ndarray, shape (n_trials,), int
        Row of ``data`` (image) each trial belongs to.
    trials : DataFrame
        The ``Trials`` rows that were used, aligned with ``trial_data``.
    image_sessions : ndarray, shape (n_images,), object
        Session of each image's first showing (for leave-one-session-out CV).
    provenance : dict
        Model name and settings, voxel counts, dropped voxels, for sidecars.
    n_averaged : ndarray, shape (n_images,), int, or None
        How many trials each row of ``data`` averages when that is not ``n_presentations`` (one showing kept:
        :func:`~bids_taskenc.responses.repeats.select_showings`); None: all of them.
    """

    data: np.ndarray
    image_ids: list[str]
    mask_img: nib.Nifti1Image
    n_presentations: np.ndarray
    trial_data: np.ndarray
    trial_image_index: np.ndarray
    trials: pd.DataFrame
    image_sessions: np.ndarray
    provenance: dict = field(default_factory=dict)
    n_averaged: np.ndarray | None = None

    @property
    def n_voxels(self) -> int:
        return self.data.shape[1]

    def unmask(self, values: np.ndarray, fill: float = 0.0) -> nib.Nifti1Image:
        """``(n_voxels,)`` vector -> 3-D float32 NIfTI in the mask's space."""
        return to_image(values, self.mask_img, fill)
