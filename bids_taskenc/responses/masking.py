"""The voxels a participant's responses are of: one grid for all runs, inside every brain mask and ``--mask``.

The response models that read BOLD (``travg``, ``lsa``) share :func:`combined_mask`; the ``betas`` model checks
``--mask`` against its betas' grid with the same :func:`same_grid` rule and :func:`describe_grid` wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from ..bids.preprocessed import PreprocessedRun
from ..core.images import load_volume
from ..errors import InputDataError

#: A ``--mask``: a file, or an image already loaded (resampled onto the BOLD grid by ``--resample-mask``).
UserMask = str | Path | nib.Nifti1Image


def describe_grid(shape: Sequence[int], affine: np.ndarray) -> str:
    """``shape (10, 10, 8), voxels 2x2x2 mm, origin (-10, -10, -8) mm`` for error messages."""
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(0))
    return (
        f"shape {tuple(int(n) for n in shape[:3])}, voxels {'x'.join(f'{z:.3g}' for z in zooms)} mm, "
        f"origin ({', '.join(f'{o:.4g}' for o in np.asarray(affine)[:3, 3])}) mm"
    )


def same_grid(img: nib.Nifti1Image, shape: Sequence[int], affine: np.ndarray) -> bool:
    """Same shape and affine (to 1e-3 mm, like the runs' check; nilearn's ``check_same_fov`` is of this kind)."""
    return img.shape[:3] == tuple(shape) and bool(np.allclose(img.affine, affine, atol=1e-3))


def _load_mask(path: Path, shape: tuple[int, ...], bold_path: Path, affine: np.ndarray | None = None) -> np.ndarray:
    """A run's brain mask as a boolean ``shape`` array, checked against its BOLD's grid."""
    img = load_volume(path)
    if img.shape[:3] != shape:
        raise InputDataError(f"{path}: mask shape {img.shape[:3]} does not match BOLD {bold_path} shape {shape}")
    if affine is not None and not same_grid(img, shape, affine):
        raise InputDataError(
            f"{path}: brain mask grid ({describe_grid(img.shape, img.affine)}) differs from the "
            f"grid of {bold_path} ({describe_grid(shape, affine)})"
        )
    return np.asarray(img.dataobj) > 0


def _user_mask_array(user_mask: UserMask, shape: tuple[int, ...], affine: np.ndarray, bold: Path) -> np.ndarray:
    """``--mask`` as a boolean ``shape`` array, or an error naming both grids when it is on another one."""
    umask = user_mask if isinstance(user_mask, nib.Nifti1Image) else load_volume(user_mask)
    if umask.shape[:3] != shape:
        raise InputDataError(f"{user_mask}: --mask shape {umask.shape[:3]} does not match the BOLD grid {shape}")
    if not same_grid(umask, shape, affine):
        raise InputDataError(
            f"{user_mask}: --mask grid ({describe_grid(umask.shape, umask.affine)}) differs from "
            f"the grid of {bold} ({describe_grid(shape, affine)}); give --resample-mask "
            "to resample it (nearest neighbour) onto the BOLD grid"
        )
    return np.asarray(umask.dataobj) > 0


def combined_mask(runs: Sequence[PreprocessedRun], user_mask: UserMask | None = None) -> nib.Nifti1Image:
    """Voxels inside every run's brain mask (and ``user_mask``), as a uint8 NIfTI.

    Shapes and affines are checked against each run's BOLD.
    """
    first = load_volume(runs[0].bold)
    if first.ndim != 4:
        raise InputDataError(f"{runs[0].bold}: expected a 4-D BOLD series, got shape {first.shape}")
    shape, affine = tuple(first.shape[:3]), first.affine
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
        mask &= _user_mask_array(user_mask, shape, affine, runs[0].bold)
    if not mask.any():
        raise InputDataError(f"{runs[0].bold}: the brain masks (and --mask) leave no voxel")
    return nib.Nifti1Image(mask.astype(np.uint8), affine)
