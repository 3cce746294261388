"""File writers of the synthetic dataset: JSON, NIfTI, feature spaces, BOLD5000-style events, fMRIPrep outputs."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from .design import TR


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _save_nifti(
    path: Path, data: np.ndarray, affine: np.ndarray, dtype=np.float32, tr: float | None = None, scaled: bool = False
) -> None:
    """``data`` as ``dtype``; ``scaled``: float data stored as integers with nibabel's slope and intercept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if scaled:
        img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
        img.set_data_dtype(dtype)
    else:
        img = nib.Nifti1Image(np.asarray(data, dtype=dtype), affine)
    img.header.set_xyzt_units("mm", "sec")
    if tr is not None:
        zooms = img.header.get_zooms()
        img.header.set_zooms(zooms[:3] + (tr,))
    nib.save(img, path)


def _write_feature_space(folder: Path, feats: np.ndarray, image_files: list[str], group: str, description: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "features.npy", feats.astype(np.float32))
    pd.DataFrame({"stimulus": image_files}).to_csv(folder / "stimuli.tsv", sep="\t", index=False)
    _write_json(folder / "space.json", {"group": group, "description": description})


def _write_events(path: Path, sub: str, ses: int, run: int, imgs: np.ndarray, names, onsets, seen: set, rng) -> None:
    rows = []
    for trial, (img, onset) in enumerate(zip(imgs, onsets), start=1):
        fname, img_type, _ = names[img]
        if img in seen:
            img_type = f"rep_{img_type}"
        seen.add(int(img))
        rt = float(np.round(rng.uniform(0.4, 1.2), 3))
        rows.append(
            {
                "onset": float(onset),
                "duration": 1.0,
                "Subj": int(sub[3:]),
                "Sess": ses,
                "Run": run,
                "Trial": trial,
                "ImgName": fname,
                "ImgType": img_type,
                "StimOn(s)": float(onset),
                "StimOff(s)": float(onset) + 1.0,
                "Response": int(rng.integers(1, 4)),
                "RT": rt,
                "stim_file": fname,
            }
        )
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


def _ellipsoid_mesh(centre, radii, n_lat: int = 12, n_lon: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A closed triangulated ellipsoid: vertices (n, 3) in mm and triangles (m, 3)."""
    theta = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    t, f = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(f), np.sin(t) * np.sin(f), np.cos(t)], -1).reshape(-1, 3)
    unit = np.vstack([[0, 0, 1], ring, [0, 0, -1]])
    tris = []
    for j in range(n_lon):  # caps
        k = (j + 1) % n_lon
        tris.append([0, 1 + j, 1 + k])
        last = 1 + (n_lat - 2) * n_lon
        tris.append([len(unit) - 1, last + k, last + j])
    for i in range(n_lat - 2):  # bands
        for j in range(n_lon):
            k = (j + 1) % n_lon
            a, b = 1 + i * n_lon + j, 1 + i * n_lon + k
            c, d = a + n_lon, b + n_lon
            tris += [[a, c, b], [b, c, d]]
    return (np.asarray(centre) + unit * np.asarray(radii)).astype(np.float32), np.asarray(tris, np.int32)


def _write_surfaces(anat: Path, sub: str, naming: str) -> None:
    """Pial and white 'hemispheres' (ellipsoids either side of x = 0) with fMRIPrep names."""
    for hemi, sign in (("L", -1), ("R", 1)):
        for surf, scale in (("pial", 1.0), ("white" if naming == "modern" else "smoothwm", 0.7)):
            verts, tris = _ellipsoid_mesh((sign * 8.0, 0.0, 0.0), np.array([6.0, 12.0, 8.0]) * scale)
            img = nib.GiftiImage(
                darrays=[
                    nib.gifti.GiftiDataArray(verts, intent="NIFTI_INTENT_POINTSET", datatype="NIFTI_TYPE_FLOAT32"),
                    nib.gifti.GiftiDataArray(tris, intent="NIFTI_INTENT_TRIANGLE", datatype="NIFTI_TYPE_INT32"),
                ]
            )
            name = (
                f"sub-{sub}_hemi-{hemi}_{surf}.surf.gii"
                if naming == "modern"
                else f"sub-{sub}_T1w_{surf}.{hemi}.surf.gii"
            )
            anat.mkdir(parents=True, exist_ok=True)
            nib.save(img, anat / name)


def _write_fmriprep_run(
    folder: Path,
    stem: str,
    bold: np.ndarray,
    brain: np.ndarray,
    affine: np.ndarray,
    naming: str,
    rng: np.random.Generator,
    space: str = "T1w",
    preproc_dtype: str = "float32",
) -> None:
    n_vols = bold.shape[-1]
    dtype, scaled = (np.int16, True) if preproc_dtype == "int16" else (np.float32, False)
    conf_modern = pd.DataFrame(
        {
            "global_signal": bold[brain].mean(0),
            "csf": rng.standard_normal(n_vols),
            "white_matter": rng.standard_normal(n_vols),
            "framewise_displacement": np.r_[np.nan, rng.uniform(0, 0.2, n_vols - 1)],
            "trans_x": rng.normal(0, 0.05, n_vols),
            "trans_y": rng.normal(0, 0.05, n_vols),
            "trans_z": rng.normal(0, 0.05, n_vols),
            "rot_x": rng.normal(0, 0.001, n_vols),
            "rot_y": rng.normal(0, 0.001, n_vols),
            "rot_z": rng.normal(0, 0.001, n_vols),
        }
    )
    if naming == "modern":
        _save_nifti(folder / f"{stem}_space-{space}_desc-preproc_bold.nii.gz", bold, affine, dtype, TR, scaled)
        _save_nifti(folder / f"{stem}_space-{space}_desc-brain_mask.nii.gz", brain, affine, np.uint8)
        conf_modern.to_csv(folder / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
    else:
        _save_nifti(folder / f"{stem}_bold_space-T1w_preproc.nii.gz", bold, affine, dtype, TR, scaled)
        _save_nifti(folder / f"{stem}_bold_space-T1w_brainmask.nii.gz", brain, affine, np.uint8)
        legacy = conf_modern.rename(
            columns={
                "global_signal": "GlobalSignal",
                "csf": "CSF",
                "white_matter": "WhiteMatter",
                "framewise_displacement": "FramewiseDisplacement",
                "trans_x": "X",
                "trans_y": "Y",
                "trans_z": "Z",
                "rot_x": "RotX",
                "rot_y": "RotY",
                "rot_z": "RotZ",
            }
        )
        legacy.to_csv(folder / f"{stem}_bold_confounds.tsv", sep="\t", index=False, na_rep="n/a")
