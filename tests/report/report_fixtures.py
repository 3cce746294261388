"""Helpers of the report tests: the Taskonomy-named synthetic run and small fake outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_taskenc.outputs.atomic import write_json
from bids_taskenc.outputs.derivatives import write_mask, write_statmap
from bids_taskenc.outputs.naming import derivative_path, sidecar_path

REFERENCE = (Path(__file__).parents[2] / ".." / "shared" / "reference" / "taskonomy" / "all_affinities.pkl").resolve()

#: Synthetic space -> Taskonomy label of the same group (2D, 3D, semantic).
TASKONOMY_LABELS = {
    "edge2da": "edgetexture", "edge2db": "keypoints2d", "edge2dc": "autoencoding",
    "scene3da": "keypoints3d", "scene3db": "edgeocclusion", "scene3dc": "normal",
    "objecta": "classobject", "objectb": "classscene",
}


def taskonomy_named_features(features: Path, target: Path) -> Path:
    """Copy the synthetic feature spaces, renaming the known ones to Taskonomy labels."""
    for space in sorted(p for p in features.iterdir() if p.is_dir()):
        shutil.copytree(space, target / TASKONOMY_LABELS.get(space.name, space.name))
    return target


def fake_outputs(root: Path, *, space: str = "MNI152NLin2009cAsym", shape=(19, 23, 17), voxel_mm: float = 8.0,
                 spaces=(("keypoints3d", "3D"), ("keypoints2d", "2D")), gifti: bool = False,
                 seed: int = 0, participant: str = "01", hot_seed: int | None = None) -> Path:
    """A minimal participant output folder (sub-<participant>, task-x): mask, r/q/alpha maps, optional fsaverage5 GIFTI.

    The grid covers MNI space (``shape`` voxels of ``voxel_mm``); the mask is an
    ellipsoid; r is random with a few hundred voxels made significant (the same
    voxels in every participant made with the same ``hot_seed``).
    """
    rng = np.random.default_rng(seed)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = [-72, -104, -48]
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(affine, ijk)
    inside = ((xyz[:, 0] / 70) ** 2 + ((xyz[:, 1] + 18) / 88) ** 2 + ((xyz[:, 2] - 12) / 62) ** 2) < 1
    mask = inside.reshape(shape)
    ents = dict(sub=participant, task="x", space=space)
    write_mask(root, nib.Nifti1Image(mask.astype(np.uint8), affine), {"NVoxels": int(mask.sum())}, **ents)
    grid = [10.0 ** k for k in range(0, 6)]
    for label, group in spaces:
        r = np.where(mask, rng.normal(0, 0.1, shape), 0).astype(np.float32)
        hot_rng = rng if hot_seed is None else np.random.default_rng([hot_seed, len(label)])
        hot = mask & (hot_rng.random(shape) < 0.1)
        r[hot] = rng.uniform(0.4, 0.8, int(hot.sum()))
        q = np.where(hot, 0.001, 1.0).astype(np.float32)
        alpha = np.where(mask, rng.choice(grid, shape), 0).astype(np.float32)
        meta = {"FeatureSpace": f"taskonomy:{label}", "FeatureLabel": label, "FeatureGroup": group,
                "FDRLevel": 0.05, "AlphaGrid": grid, "CVFolds": 5,
                "Split": {"NTrain": 400, "NTest": 100, "TestFraction": 0.2, "Seed": 0},
                "Responses": {"NRuns": 4, "NTrials": 520, "NImages": 500, "NRepeatedImages": 10,
                              "NVoxels": int(mask.sum()), "ResponseModel": "travg"},
                "PValueMethod": "analytic", "Precision": "exact", "CommandLine": "bids_taskenc fake",
                "SoftwareVersions": {"bids_taskenc": "test"}}
        for stat, data in (("r", r), ("q", q), ("alpha", alpha)):
            write_statmap(root, nib.Nifti1Image(data, affine), meta, **ents, desc=label, stat=stat)
        if gifti:
            for hemi in ("L", "R"):
                for stat in ("r", "q"):
                    n = 10242
                    values = (rng.uniform(0.3, 0.8, n) if stat == "r"
                              else np.where(rng.random(n) < 0.3, 0.001, 1.0)).astype(np.float32)
                    path = derivative_path(root, sub=participant, task="x", hemi=hemi, space="fsaverage5", desc=label,
                                           stat=stat, suffix="statmap", extension=".func.gii")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    nib.save(nib.GiftiImage(darrays=[nib.gifti.GiftiDataArray(values)]), path)
                    write_json(sidecar_path(path), {"Statistic": stat})
    return root
