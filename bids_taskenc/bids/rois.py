"""ROI masks: BOLD5000's release files and BIDS ``desc-<roi>_mask`` files.

The release (ds001499 ``derivatives/spm/sub-CSI1/sub-CSI1_mask-LHPPA.nii.gz``) names
hemisphere and ROI in one label and is inconsistent across participants
(``LHLO``/``RHLO`` for CSI2 and CSI3, ``RHRRSC`` for CSI2); :data:`ROI_ALIASES`
maps every spelling to one name. BIDS-style masks
(``sub-X[_hemi-L]_..._desc-PPA_mask.nii.gz``) are read as well.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import nibabel as nib
import numpy as np

from ..core.images import load_volume
from ..core.masks import mask_array
from ..errors import InputDataError, InputMissingError

log = logging.getLogger(__name__)

#: Spellings found in releases -> the ROI name we report.
ROI_ALIASES = {
    "LO": "LOC",
    "LOC": "LOC",
    "RRSC": "RSC",
    "RSC": "RSC",
    "PPA": "PPA",
    "OPA": "OPA",
    "EarlyVis": "EarlyVis",
    "EVC": "EarlyVis",
    "V1": "V1",
    "FFA": "FFA",
}

_RELEASE = re.compile(r"^sub-(?P<sub>[A-Za-z0-9]+)_mask-(?P<hemi>LH|RH)(?P<roi>[A-Za-z0-9]+)\.nii(\.gz)?$")
_BIDS = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)_(?:.*_)?(?:hemi-(?P<hemi>L|R)_)?(?:.*_)?desc-(?P<roi>[A-Za-z0-9]+)_mask\.nii(\.gz)?$"
)


def roi_name(label: str) -> str:
    """Canonical ROI name of a label as spelled in a file (unknown labels are kept)."""
    return ROI_ALIASES.get(label, label)


def find_roi_masks(roi_dir: str | Path, subject: str) -> dict[tuple[str, str], Path]:
    """ROI mask files of one participant, keyed by ``(hemisphere 'L'|'R'|'', roi name)``.

    Looks in ``roi_dir/sub-X/`` (recursively) and ``roi_dir`` itself.
    """
    roi_dir = Path(roi_dir)
    if not roi_dir.is_dir():
        raise InputMissingError(f"{roi_dir}: --roi-dir is not a folder")
    found: dict[tuple[str, str], Path] = {}
    candidates = sorted(roi_dir.glob(f"sub-{subject}_*")) + sorted((roi_dir / f"sub-{subject}").rglob("*"))
    for path in candidates:
        for pattern in (_RELEASE, _BIDS):
            m = pattern.match(path.name)
            if m and m.group("sub") == subject:
                hemi = (m.group("hemi") or "")[:1]
                if m.group("roi") == "brain":
                    break
                key = (hemi, roi_name(m.group("roi")))
                if key in found:
                    log.warning("%s: a second mask for %s; keeping %s", path, key, found[key].name)
                else:
                    found[key] = path
                break
    return found


def load_roi_vectors(masks: dict[tuple[str, str], Path], target_mask: nib.Nifti1Image) -> dict[str, np.ndarray]:
    """ROI masks as boolean vectors over the analysis voxels.

    Returns ``{'LH-PPA': (n_voxels,) bool, 'RH-PPA': ..., 'PPA': union of hemispheres, ...}``.
    A mask on another grid is resampled (nearest neighbour) to the analysis grid.
    """
    from nilearn.image import resample_to_img

    analysis = mask_array(target_mask)
    out: dict[str, np.ndarray] = {}
    for (hemi, roi), path in sorted(masks.items()):
        img = load_volume(path)
        if img.ndim > 3 and img.shape[3] != 1:
            raise InputDataError(f"{path}: an ROI mask must be 3-D, got shape {img.shape}")
        if img.shape[:3] != analysis.shape or not np.allclose(img.affine, target_mask.affine, atol=1e-3):
            img = resample_to_img(img, target_mask, interpolation="nearest", force_resample=True, copy_header=True)
        vec = (np.asarray(img.dataobj).reshape(analysis.shape) > 0)[analysis]
        key = f"{'LH' if hemi == 'L' else 'RH'}-{roi}" if hemi else roi
        out[key] = vec
        if hemi:
            out[roi] = out.get(roi, np.zeros_like(vec)) | vec
    return out
