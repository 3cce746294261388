"""Masks and the vectors over their voxels.

A mask holds the voxels whose value is above 0; a map over a mask is a vector of one value per such voxel, in the
C order of the mask's array (``volume[mask]``). These functions go both ways, so any vector can be put back into
a volume on the mask's grid.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from numpy.typing import ArrayLike, DTypeLike


def mask_array(mask_img: nib.Nifti1Image) -> np.ndarray:
    """The boolean voxel array of a mask image (value > 0)."""
    return np.asarray(mask_img.dataobj) > 0


def to_volume(values: ArrayLike, mask: np.ndarray, fill: float = 0.0, dtype: DTypeLike = np.float32) -> np.ndarray:
    """A vector over the ``True`` voxels of ``mask`` as an array of ``mask``'s shape (``fill`` outside).

    >>> to_volume([1.5, 2.5], np.array([True, False, True]), fill=-1).tolist()
    [1.5, -1.0, 2.5]
    """
    values = np.asarray(values)
    n_voxels = int(np.count_nonzero(mask))
    if values.shape != (n_voxels,):
        raise ValueError(f"expected shape ({n_voxels},), got {values.shape}")
    volume = np.full(mask.shape, fill, dtype=dtype)
    volume[mask] = values
    return volume


def to_image(values: ArrayLike, mask_img: nib.Nifti1Image, fill: float = 0.0) -> nib.Nifti1Image:
    """A ``(n_voxels,)`` vector as a 3-D float32 NIfTI on ``mask_img``'s grid (units mm, s)."""
    img = nib.Nifti1Image(to_volume(values, mask_array(mask_img), fill), mask_img.affine)
    img.header.set_xyzt_units("mm", "sec")
    return img
