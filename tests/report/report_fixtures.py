"""Helpers of the report tests: the Taskonomy-named synthetic run and small fake outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_taskenc.outputs.atomic import write_json
from bids_taskenc.outputs.derivatives import write_mask, write_statmap
from bids_taskenc.outputs.naming import derivative_path, sidecar_path
from bids_taskenc.testing.demo import TASKONOMY_STAND_INS

#: Synthetic space -> Taskonomy label of the same group (2D, 3D, semantic): the demo's stand-ins.
TASKONOMY_LABELS = TASKONOMY_STAND_INS


def taskonomy_named_features(features: Path, target: Path) -> Path:
    """Copy the synthetic feature spaces, renaming the known ones to Taskonomy labels."""
    for space in sorted(p for p in features.iterdir() if p.is_dir()):
        shutil.copytree(space, target / TASKONOMY_LABELS.get(space.name, space.name))
    return target


def fake_outputs(
    root: Path,
    *,
    space: str = "MNI152NLin2009cAsym",
    shape=(19, 23, 17),
    voxel_mm: float = 8.0,
    spaces=(("keypoints3d", "3D"), ("keypoints2d", "2D")),
    gifti: bool = False,
    seed: int = 0,
    participant: str = "01",
    hot_seed: int | None = None,
    noise: bool = False,
    fmriprep: Path | None = None,
    roi_dir: Path | None = None,
) -> Path:
    """A minimal participant output folder (sub-<participant>, task-x): mask, r/q/alpha maps, optional fsaverage5 GIFTI.

    The grid covers MNI space (``shape`` voxels of ``voxel_mm``); the mask is an
    ellipsoid; r is random with a few hundred voxels made significant (the same
    voxels in every participant made with the same ``hot_seed``).

    ``noise`` adds noise-ceiling (a fraction) and split-half r maps (negative
    in part of the brain). ``fmriprep`` makes an fMRIPrep folder there with a
    BOLD file the sidecars name as ``Sources``/``SpatialReference`` through
    ``DatasetLinks`` (see :func:`fake_fmriprep`). ``roi_dir`` writes two ROI
    masks per hemisphere there (release names) and an ROI table whose sidecar
    records it as ``ROIDirectory``, as the participant level does.
    """
    rng = np.random.default_rng(seed)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = [-72, -104, -48]
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(affine, ijk)
    inside = ((xyz[:, 0] / 70) ** 2 + ((xyz[:, 1] + 18) / 88) ** 2 + ((xyz[:, 2] - 12) / 62) ** 2) < 1
    mask = inside.reshape(shape)
    ents = dict(sub=participant, task="x", space=space)
    links = {}
    if fmriprep is not None:
        bold = fake_fmriprep(fmriprep, participant, space, nib.Nifti1Image(mask.astype(np.float32), affine))
        links = {"fmriprep": Path(fmriprep).resolve().as_uri()}
        write_json(
            Path(root) / "dataset_description.json",
            {
                "Name": "fake",
                "BIDSVersion": "1.8.0",
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "bids_taskenc"}],
                "DatasetLinks": links,
            },
        )
        links = {
            "Sources": [f"bids:fmriprep:{bold.relative_to(fmriprep).as_posix()}"],
            "SpatialReference": f"bids:fmriprep:{bold.relative_to(fmriprep).as_posix()}",
        }
    write_mask(root, nib.Nifti1Image(mask.astype(np.uint8), affine), {"NVoxels": int(mask.sum()), **links}, **ents)
    grid = [10.0**k for k in range(0, 6)]
    for label, group in spaces:
        r = np.where(mask, rng.normal(0, 0.1, shape), 0).astype(np.float32)
        hot_rng = rng if hot_seed is None else np.random.default_rng([hot_seed, len(label)])
        hot = mask & (hot_rng.random(shape) < 0.1)
        r[hot] = rng.uniform(0.4, 0.8, int(hot.sum()))
        q = np.where(hot, 0.001, 1.0).astype(np.float32)
        alpha = np.where(mask, rng.choice(grid, shape), 0).astype(np.float32)
        meta = {
            "FeatureSpace": f"taskonomy:{label}",
            "FeatureLabel": label,
            "FeatureGroup": group,
            "FDRLevel": 0.05,
            "AlphaGrid": grid,
            "CVFolds": 5,
            "Split": {"NTrain": 400, "NTest": 100, "TestFraction": 0.2, "Seed": 0},
            "Responses": {
                "NRuns": 4,
                "NTrials": 520,
                "NImages": 500,
                "NRepeatedImages": 10,
                "NVoxels": int(mask.sum()),
                "ResponseModel": "travg",
            },
            "PValueMethod": "analytic",
            "Precision": "exact",
            "CommandLine": "bids_taskenc fake",
            "SoftwareVersions": {"bids_taskenc": "test"},
            **links,
        }
        for stat, data in (("r", r), ("q", q), ("alpha", alpha)):
            write_statmap(root, nib.Nifti1Image(data, affine), meta, **ents, desc=label, stat=stat)
        if gifti:
            for hemi in ("L", "R"):
                for stat in ("r", "q"):
                    n = 10242
                    values = (
                        rng.uniform(0.3, 0.8, n) if stat == "r" else np.where(rng.random(n) < 0.3, 0.001, 1.0)
                    ).astype(np.float32)
                    path = derivative_path(
                        root,
                        sub=participant,
                        task="x",
                        hemi=hemi,
                        space="fsaverage5",
                        desc=label,
                        stat=stat,
                        suffix="statmap",
                        extension=".func.gii",
                    )
                    path.parent.mkdir(parents=True, exist_ok=True)
                    nib.save(nib.GiftiImage(darrays=[nib.gifti.GiftiDataArray(values)]), path)
                    write_json(sidecar_path(path), {"Statistic": stat})
    if noise:
        xyz3 = xyz.reshape(shape + (3,))
        nc = np.where(mask, np.clip(rng.beta(1.2, 6.0, shape), 0, 1), 0).astype(np.float32)
        half = np.where(mask, np.clip(np.tanh(xyz3[..., 0] / 40) * 0.6 + rng.normal(0, 0.15, shape), -1, 1), 0).astype(
            np.float32
        )  # negative in the left half, positive in the right
        write_statmap(
            root,
            nib.Nifti1Image(nc, affine),
            {"NRepeatedImages": 10, **links},
            **ents,
            desc="noise",
            stat="noiseceiling",
        )
        write_statmap(
            root, nib.Nifti1Image(half, affine), {"NImages": 10, **links}, **ents, desc="noise", stat="splithalf"
        )
    if roi_dir is not None:
        import pandas as pd

        from bids_taskenc.outputs.atomic import write_tsv

        rows = []
        for hemi, sign in (("LH", -1), ("RH", 1)):
            for roi, centre in (("PPA", (30, -40, 0)), ("EarlyVis", (12, -85, 5))):
                c = np.array([sign * centre[0], centre[1], centre[2]])
                inside_roi = (np.linalg.norm(xyz - c, axis=1) < 18).reshape(shape) & mask
                path = Path(roi_dir) / f"sub-{participant}" / f"sub-{participant}_mask-{hemi}{roi}.nii.gz"
                path.parent.mkdir(parents=True, exist_ok=True)
                nib.save(nib.Nifti1Image(inside_roi.astype(np.uint8), affine), path)
                for label, group in spaces:
                    rows.append(
                        {
                            "feature_space": label,
                            "feature_group": group,
                            "roi": f"{hemi}-{roi}",
                            "n_voxels": int(inside_roi.sum()),
                            "mean_r": 0.2,
                            "mean_rsquared": 0.04,
                            "fraction_significant": 0.5,
                        }
                    )
        table = derivative_path(root, sub=participant, task="x", desc="roi", suffix="scores", extension=".tsv")
        write_tsv(table, pd.DataFrame(rows))
        write_json(sidecar_path(table), {"ROIDirectory": str(roi_dir), "FDRLevel": 0.05})
    return root


def fake_fmriprep(
    folder: Path, participant: str, space: str, grid: nib.Nifti1Image, anat: bool = True, naming: str = "modern"
) -> Path:
    """An fMRIPrep folder with one BOLD file on ``grid`` and, with ``anat``, a 2 mm head-like T1w of the participant.

    The T1w (bright "white matter" ellipsoid inside darker "grey matter" and
    a skull ring) is in the maps' space: ``sub-X_desc-preproc_T1w`` for T1w,
    ``sub-X_space-<space>_desc-preproc_T1w`` otherwise (fMRIPrep 1.x:
    ``sub-X_T1w_preproc`` / ``sub-X_T1w_space-<space>_preproc``). Returns the BOLD path.
    """
    folder = Path(folder)
    write_json(
        folder / "dataset_description.json",
        {
            "Name": "fMRIPrep (fake)",
            "BIDSVersion": "1.8.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "fMRIPrep", "Version": "23.2.0"}],
        },
    )
    func = folder / f"sub-{participant}" / "func"
    func.mkdir(parents=True, exist_ok=True)
    bold = func / f"sub-{participant}_task-x_run-1_space-{space}_desc-preproc_bold.nii.gz"
    nib.save(grid, bold)
    if anat:
        affine = np.diag([2.0, 2.0, 2.0, 1.0])
        affine[:3, 3] = [-80, -116, -60]
        ijk = np.indices((81, 101, 71)).reshape(3, -1).T
        x, y, z = nib.affines.apply_affine(affine, ijk).T
        radius = np.sqrt((x / 70) ** 2 + ((y + 18) / 88) ** 2 + ((z - 12) / 62) ** 2)
        gyri = 0.15 * np.sin(x / 6) * np.sin(y / 7) * np.sin(z / 5)
        t1 = np.where(radius < 0.7 + gyri, 900.0, 0.0) + np.where((radius >= 0.7 + gyri) & (radius < 1.0), 550.0, 0.0)
        t1 += np.where((radius >= 1.05) & (radius < 1.15), 700.0, 0.0)
        ventricles = (np.abs(x) > 4) & (np.abs(x) < 16) & (np.abs(y + 10) < 25) & (np.abs(z - 10) < 8)
        t1[ventricles] = 150.0
        t1 = t1.reshape(81, 101, 71).astype(np.float32)
        anat_dir = folder / f"sub-{participant}" / "anat"
        anat_dir.mkdir(parents=True, exist_ok=True)
        if naming == "modern":
            name = (
                f"sub-{participant}_desc-preproc_T1w.nii.gz"
                if space == "T1w"
                else f"sub-{participant}_space-{space}_desc-preproc_T1w.nii.gz"
            )
        else:
            name = (
                f"sub-{participant}_T1w_preproc.nii.gz"
                if space == "T1w"
                else f"sub-{participant}_T1w_space-{space}_preproc.nii.gz"
            )
        nib.save(nib.Nifti1Image(t1, affine), anat_dir / name)
    return bold
