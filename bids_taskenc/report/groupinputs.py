"""Read what the group level wrote (its maps and matrix tables), and the base of maps held over a mask.

The participant-level readers are in :mod:`bids_taskenc.report.inputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_taskenc.core.masks import mask_array, to_volume
from bids_taskenc.outputs import reading
from bids_taskenc.outputs.naming import derivative_path, parse_derivative_name


class MaskedMaps:
    """Maps held as vectors over the voxels of a 3-D ``mask`` (image ``mask_img``), C order."""

    mask_img: nib.Nifti1Image
    mask: np.ndarray

    def volume(self, values: np.ndarray) -> nib.Nifti1Image:
        """Put a vector over the mask's voxels back into a 3-D image."""
        return nib.Nifti1Image(to_volume(values, self.mask), self.mask_img.affine)


def group_file(
    output_dir: str | Path, task: str, desc: str, suffix: str, extension: str, **entities: str | None
) -> Path:
    """Path of one group-level derivative."""
    return derivative_path(output_dir, task=task, desc=desc, suffix=suffix, extension=extension, **entities)


def matrix_from_table(table: pd.DataFrame | None) -> tuple[list[str], np.ndarray] | None:
    """A ``task`` + one-column-per-task TSV as (labels, ``(F, F)`` array), or None."""
    if table is None:
        return None
    labels = [str(t) for t in table["task"]]
    return labels, table.set_index("task").loc[labels, labels].to_numpy(dtype=float)


@dataclass
class GroupMaps(MaskedMaps):
    """The group level's voxelwise maps in one shared template space.

    ``meanr[label]`` and ``q[label]`` are vectors of shape ``(n_voxels,)``
    over the group mask (voxels analysed in every participant), C order.
    """

    space: str
    mask_img: nib.Nifti1Image
    mask: np.ndarray
    meanr: dict[str, np.ndarray] = field(default_factory=dict)
    q: dict[str, np.ndarray] = field(default_factory=dict)


def load_group_maps(output_dir: str | Path, task: str, labels: list[str]) -> GroupMaps | None:
    """The group mean-r and q maps of ``labels`` (in that order), or None when none were written."""
    out = Path(output_dir)
    masks = sorted((out / "group").glob(f"task-{task}_space-*_desc-brain_mask.nii.gz"))
    if not masks:
        return None
    space = parse_derivative_name(masks[0].name)["space"]
    mask_img, _ = reading.read_image(masks[0])
    mask = mask_array(mask_img)
    maps = GroupMaps(space, mask_img, mask)
    for label in labels:
        paths = {
            stat: group_file(out, task, label, "statmap", ".nii.gz", space=space, stat=stat) for stat in ("meanr", "q")
        }
        if all(p.exists() for p in paths.values()):
            maps.meanr[label] = reading.read_masked(paths["meanr"], mask)
            maps.q[label] = reading.read_masked(paths["q"], mask)
    return maps if maps.meanr else None
