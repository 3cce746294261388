"""Read back what the participant level wrote: the one reader the group level and the reports share.

A participant's derivatives are found by parsing the names in its ``func/`` folder
(:func:`~bids_taskenc.outputs.naming.parse_derivative_name`) and located with
:func:`~bids_taskenc.outputs.naming.derivative_path`, never by pasting strings. A statistic map is read as a vector
over the voxels of the participant's brain mask (C order of the mask), its sidecar as a dict, and the FDR level a map
was thresholded at from its sidecar's ``FDRLevel``.

Reading a file that must be there and is not, or cannot be parsed, raises :class:`DerivativeReadError` naming the file;
the optional readers (:func:`read_json`, :func:`read_table`, :func:`read_masked_if_present`) return an empty value.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_taskenc.core.masks import mask_array
from bids_taskenc.outputs.naming import derivative_path, parse_derivative_name, strip_prefix

from ..core.images import load_volume


class DerivativeReadError(ValueError):
    """A derivative file that must be read is missing or unreadable (the message names it)."""


def participant_folder(output_dir: str | Path, participant: str) -> Path:
    """``<output_dir>/sub-<participant>/func``: where the participant level writes its maps and tables."""
    return derivative_path(output_dir, sub=strip_prefix(participant, "sub"), suffix="x", extension=".x").parent


def list_participants(output_dir: str | Path) -> list[str]:
    """Participant labels (without ``sub-``) that have an output folder."""
    return sorted(strip_prefix(p.name, "sub") for p in Path(output_dir).glob("sub-*") if p.is_dir())


def participant_files(output_dir: str | Path, participant: str, pattern: str = "*.nii.gz") -> list[tuple[dict, Path]]:
    """``(entities, path)`` of every derivative of one participant whose name matches ``pattern``, sorted by name.

    Files whose names are not derivative names (:func:`~bids_taskenc.outputs.naming.parse_derivative_name`) are
    skipped.
    """
    found = []
    for path in sorted(participant_folder(output_dir, participant).glob(pattern)):
        try:
            ents = parse_derivative_name(path.name)
        except ValueError:
            continue
        found.append((ents, path))
    return found


def statmap_path(output_dir: str | Path, participant: str, task: str, space: str | None, desc: str, stat: str) -> Path:
    """The volumetric map ``sub-X_task-T_space-S_desc-D_stat-s_statmap.nii.gz`` of one participant."""
    return derivative_path(
        output_dir, sub=participant, task=task, space=space, desc=desc, stat=stat, suffix="statmap", extension=".nii.gz"
    )


def brain_mask_path(output_dir: str | Path, participant: str, task: str, space: str | None) -> Path:
    """The brain mask ``sub-X_task-T_space-S_desc-brain_mask.nii.gz`` the maps are restricted to."""
    return derivative_path(
        output_dir, sub=participant, task=task, space=space, desc="brain", suffix="mask", extension=".nii.gz"
    )


def read_json(path: str | Path) -> dict:
    """A JSON file as a dict; ``{}`` when it does not exist."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def read_sidecar(path: str | Path) -> dict:
    """A sidecar that must exist, as a dict.

    Raises
    ------
    DerivativeReadError
        The file is missing or not valid JSON.
    """
    path = Path(path)
    if not path.exists():
        raise DerivativeReadError(f"sidecar {path} is missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DerivativeReadError(f"sidecar {path} is not valid JSON: {exc}") from exc


def read_table(path: str | Path) -> pd.DataFrame | None:
    """A BIDS TSV, or ``None`` when absent.

    Only ``n/a`` (and empty cells) are missing values: pandas' default list
    would turn a feature space labelled ``null`` or ``NA`` into NaN.
    """
    if not Path(path).exists():
        return None
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["n/a", ""])


def read_image(path: str | Path, shape=None, affine=None) -> tuple[nib.Nifti1Image, np.ndarray]:
    """A 3-D map's image and its data as stored (a 4-D one with one volume is squeezed).

    ``shape``/``affine`` given: the map must be on that grid (affine within 1e-4).

    Raises
    ------
    DerivativeReadError
        Missing, unreadable, not 3-D, or on another grid.
    """
    path = Path(path)
    if not path.exists():
        raise DerivativeReadError(f"file {path} is missing")
    try:
        img = load_volume(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises several types for broken files
        raise DerivativeReadError(f"cannot read {path}: {exc}") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DerivativeReadError(f"{path} is {data.ndim}-D; a 3-D map is expected")
    if shape is not None and data.shape != tuple(shape):
        raise DerivativeReadError(f"{path} has shape {data.shape}, the brain mask has {tuple(shape)}")
    if affine is not None and not np.allclose(img.affine, affine, atol=1e-4):
        raise DerivativeReadError(f"{path} has a different affine from its brain mask")
    return img, data


def read_volume(path: str | Path, shape=None, affine=None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_image`'s data and the ``(4, 4)`` affine (float)."""
    img, data = read_image(path, shape, affine)
    return data, np.asarray(img.affine, dtype=float)


def read_brain_mask(
    output_dir: str | Path, participant: str, task: str, space: str | None
) -> tuple[np.ndarray, nib.Nifti1Image, Path]:
    """A participant's brain mask: ``(X, Y, Z)`` bool (voxels > 0), its image as stored, and its path.

    Raises
    ------
    DerivativeReadError
        Missing or unreadable.
    """
    path = brain_mask_path(output_dir, participant, task, space)
    img, _ = read_image(path)
    return mask_array(img), img, path


def read_masked(path: str | Path, mask: np.ndarray, affine=None) -> np.ndarray:
    """A 3-D map's values at the voxels of ``mask`` ``(X, Y, Z)``, float64, shape ``(mask.sum(),)``."""
    data, _ = read_volume(path, mask.shape, affine)
    return data[mask].astype(np.float64)


def read_masked_if_present(path: str | Path, mask: np.ndarray) -> np.ndarray | None:
    """:func:`read_masked`, or None when the map was not written."""
    return read_masked(path, mask) if Path(path).exists() else None
