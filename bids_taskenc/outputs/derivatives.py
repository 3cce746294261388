"""Writers for the participant derivatives: statistic maps, masks, sidecars, dataset files."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from ..__about__ import __version__
from .atomic import write_image, write_json, write_text
from .naming import derivative_path, sidecar_path

#: One line per statistic, for sidecars ("Description") and reports.
STAT_DESCRIPTIONS = {
    "r": "Pearson correlation between predicted and measured responses on the held-out test images",
    "rsquared": "Coefficient of determination (1 - SS_res/SS_tot) on the held-out test images; can be negative",
    "p": "One-sided p-value of r > 0",
    "q": "Benjamini-Hochberg FDR q-value of p, over the voxels of the mask",
    "alpha": "Ridge regularisation chosen for the voxel by cross-validation on the training images",
    "cvscore": "Mean cross-validation score of the chosen alpha on the training images",
    "noiseceiling": "Noise ceiling (fraction of variance explainable given the repeats; NSD formula)",
    "ncsnr": "Noise-ceiling signal-to-noise ratio",
    "rsquarednorm": "R-squared divided by the noise ceiling",
    "splithalf": "Split-half reliability: correlation across repeated images of two half-averages of their responses",
    "rdiff": "Mean test-set Pearson r of the contrast's A spaces minus that of its B spaces",
}

#: stat entity -> suffix folder names etc. are all built by :func:`derivative_path`.
BIDSIGNORE = ["*_statmap.nii.gz", "*_statmap.json", "*_statmap.func.gii", "*_scores.tsv", "*_scores.json",
              "*_stimuli.tsv", "*_weights.npz", "*_weights.json", "*_matrix.tsv", "*_matrix.json", "*_dendrogram.*", "*_edges.*",
              # folders: no trailing slash, which the validator (3.x) does not match against the folder itself
              "group", "logs", "figures", "features", "*.html"]


def write_statmap(root: Path, img: nib.Nifti1Image, sidecar: dict, **entities) -> Path:
    """Write one ``..._stat-<stat>_statmap.nii.gz`` and its JSON sidecar."""
    path = derivative_path(root, suffix="statmap", extension=".nii.gz", **entities)
    stat = entities.get("stat")
    meta = {"Statistic": stat, "Description": STAT_DESCRIPTIONS.get(stat, ""), **sidecar}
    write_image(path, img)
    write_json(sidecar_path(path), meta)
    return path


def write_mask(root: Path, img: nib.Nifti1Image, sidecar: dict, **entities) -> Path:
    """Write the analysis mask ``..._desc-brain_mask.nii.gz`` and its sidecar."""
    path = derivative_path(root, suffix="mask", extension=".nii.gz", desc="brain", **entities)
    img = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.uint8), img.affine)
    img.header.set_xyzt_units("mm")
    write_image(path, img)
    write_json(sidecar_path(path), {"Type": "Brain", **sidecar})
    return path


def write_dataset_description(root: Path, *, source_dir: Path, container: dict | None = None) -> Path:
    """``dataset_description.json`` of the output (DatasetType derivative), plus ``.bidsignore``.

    An existing description is kept when it was written by the same version.
    """
    path = Path(root) / "dataset_description.json"
    generated = {"Name": "bids_taskenc", "Version": __version__}
    if container:
        generated["Container"] = container
    desc = {
        "Name": "bids_taskenc: voxelwise encoding models of vision-task representations",
        "BIDSVersion": "1.8.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": [{"URL": Path(source_dir).resolve().as_uri()}],
        "HowToAcknowledge": "Cite Wang, Tarr & Wehbe (2019) Neural Taskonomy; see logs/CITATION.md",
    }
    if path.exists():
        try:
            old = json.loads(path.read_text())
            if old.get("GeneratedBy", [{}])[0].get("Version") == __version__:
                return path
        except json.JSONDecodeError:
            pass
    write_json(path, desc)
    ignore = Path(root) / ".bidsignore"
    existing = ignore.read_text().split() if ignore.exists() else []
    write_text(ignore, "\n".join(dict.fromkeys(existing + BIDSIGNORE)) + "\n")
    return path
