"""A small BOLD5000-shaped BIDS dataset with a planted truth.

The dataset mimics OpenNeuro ds001499 (BOLD5000 release 1) in everything the
app reads, at a size a laptop test suite can afford:

* participants ``sub-CSI1`` ... with sessions ``ses-01`` ... and runs of task
  ``5000scenes`` (TR 2 s, one image every 10 s shown for 1 s, 6 s lead-in,
  12 s tail), events with BOLD5000's 13 columns (``ImgName``, ``ImgType`` with
  ``rep_`` for repeats, ...), and a ``task-localizer`` run that is not ours;
* JPEG stimuli, either in ``<bids>/stimuli/`` or, as the real release ships
  them, in ``Scene_Stimuli/Presented_Stimuli/{COCO,ImageNet,Scene}/`` beside
  the dataset (extensions ``.jpg``, ``.JPEG`` and ``.jpeg``);
* fMRIPrep derivatives with modern names or with the fMRIPrep 1.x names of
  the release; ROI masks as in ``derivatives/spm`` with the release's
  inconsistent names (``LHLO`` and ``RHRRSC`` for CSI2);
* user-supplied feature spaces (``derivatives/features``) in clusters, each
  cluster driving known regions; the truth is written to
  ``derivatives/synthetic_truth``.

How the truth is planted: each cluster ``c`` has a latent matrix
``Z_c (n_images, k)``. A voxel in the cluster's region responds to image ``i``
with amplitude ``Z_c[i] @ w_v``; every brain voxel also has a response that
does not depend on the image. Trials are convolved with the Glover HRF and
sampled at the TR; Gaussian noise is added. Each feature space of a cluster is
``Z_c @ M + noise`` with its own random mixing ``M``, so every space of a
cluster predicts that cluster's region and nothing else. The images of the
``2D`` cluster's latent are drawn as oriented gratings, so image-computed
low-level features (Gabor energy) also find the early visual region.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

TASK = "5000scenes"
TR = 2.0
LEAD_IN_S = 6.0
TRIAL_SPACING_S = 10.0
TAIL_S = 12.0

#: Clusters of feature spaces: group, the ROIs they drive, the space names.
CLUSTERS = {
    "scene": {"group": "3D", "rois": ["PPA", "RSC", "OPA"], "spaces": ["scene3da", "scene3db", "scene3dc"]},
    "edge": {"group": "2D", "rois": ["EarlyVis"], "spaces": ["edge2da", "edge2db", "edge2dc"]},
    "object": {"group": "semantic", "rois": ["LOC"], "spaces": ["objecta", "objectb"]},
}
#: A feature space that drives nothing (for false-positive checks).
NULL_SPACE = "random"
ROIS = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")

#: Default volume grid (3 mm voxels); ROI radii are given for it and scale with the grid.
DEFAULT_GRID = (18, 18, 12)

#: BOLD5000's counts for sub-CSI1..3 (DESIGN.md): 15 sessions of 9-10 runs (142 runs), 37 trials a run
#: (194 volumes of 2 s), 5,254 trials of 4,916 images: 112 shown four times, one three times.
#: Which sessions have 9 runs is not the release's; the totals are.
#: Pass as ``make_synthetic_dataset(**BOLD5000_COUNTS)``.
BOLD5000_COUNTS = {
    "n_sessions": 15,
    "runs_per_session": (10,) * 7 + (9,) * 8,
    "trials_per_run": 37,
    "n_repeated": 112,
    "n_shown_thrice": 1,
}
#: BOLD5000's T1w-space EPI grid is about 2 mm; at the synthetic 3 mm voxels a 44 x 52 x 44 grid gives a
#: brain ellipsoid of about 51,000 voxels, near the paper's ~55,000 cortical voxels.
BOLD5000_GRID = (44, 52, 44)

#: ROI file names of the release, with its inconsistencies (see DESIGN.md).
_ROI_ALIASES = {"CSI2": {"LOC": "LO", "RSC_RH": "RRSC"}, "CSI3": {"LOC": "LO"}}


@dataclass
class SyntheticDataset:
    """Where things were written, and the planted truth."""

    bids_dir: Path
    stimuli_dir: Path
    fmriprep_dir: Path
    features_dir: Path
    roi_dir: Path
    truth_dir: Path
    participants: list[str]
    feature_spaces: dict[str, str] = field(default_factory=dict)  # space -> cluster ('' for the null space)
    truth_masks: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # sub -> cluster -> bool (X, Y, Z)
    brain_masks: dict[str, np.ndarray] = field(default_factory=dict)
    image_names: list[str] = field(default_factory=list)
    latents: dict[str, np.ndarray] = field(default_factory=dict)  # cluster -> (n_images, k), rows as image_names


def _image_names(n: int, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """(file name, ImgType, source folder) for ``n`` images in BOLD5000's three sets."""
    out = []
    words = ["airport", "alley", "bedroom", "canyon", "kitchen", "library", "beach", "forest"]
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append((f"COCO_train2014_{rng.integers(1, 10**9):012d}.jpg", "coco", "COCO"))
        elif kind == 1:
            ext = ".JPEG" if i % 2 else ".jpeg"
            out.append((f"n{rng.integers(10**7, 10**8):08d}_{i}{ext}", "imagenet", "ImageNet"))
        else:
            out.append((f"{words[i % len(words)]}{i}.jpg", "scenes", "Scene"))
    return out


def _grating_image(latent_2d: np.ndarray, colour: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """An RGB uint8 image whose oriented-grating energy follows ``latent_2d``."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size))
    for k, amp in enumerate(latent_2d):
        theta = np.pi * k / len(latent_2d)
        freq = 6.0
        phase = rng.uniform(0, 2 * np.pi)
        img += (1.0 + 0.6 * amp) * np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
    img = img / (np.abs(img).max() + 1e-9)
    rgb = 0.5 + 0.35 * img[..., None] * (0.6 + 0.4 * colour[None, None, :])
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


def _ellipsoid(shape, centre, radii) -> np.ndarray:
    grid = np.indices(shape).astype(float)
    d = sum(((grid[i] - centre[i]) / radii[i]) ** 2 for i in range(3))
    return d <= 1.0


def _roi_masks(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Hemisphere-specific ROI masks ``'LHPPA'`` ... placed inside the brain ellipsoid.

    Centres are fractions of the grid; radii (1.8, 1.8, 1.6 voxels up to the
    default 18 x 18 x 12 grid) grow with a larger grid axis by axis, so it has
    the same layout with proportionally larger regions (smaller grids keep the
    default radii, as the tests' small datasets always had).
    """
    x, y, z = shape
    radii = tuple(r * max(1.0, n / d) for r, n, d in zip((1.8, 1.8, 1.6), shape, DEFAULT_GRID))
    cx = x / 2
    # ROI centre (distance from midline as a fraction of x, y fraction, z fraction)
    places = {
        "EarlyVis": (0.12, 0.2, 0.4),
        "LOC": (0.32, 0.35, 0.45),
        "OPA": (0.28, 0.28, 0.7),
        "PPA": (0.22, 0.55, 0.3),
        "RSC": (0.1, 0.5, 0.7),
    }
    masks = {}
    for roi, (dx, fy, fz) in places.items():
        for hemi, sign in (("LH", -1), ("RH", 1)):
            centre = (cx + sign * dx * x, fy * y, fz * z)
            masks[f"{hemi}{roi}"] = _ellipsoid(shape, centre, radii)
    return masks


#: Template spaces :func:`make_synthetic_dataset` can put the data in (``template=``).
TEMPLATES = ("MNI152NLin2009cAsym",)
#: Default voxel size of the template grid: 5 mm gives about 15,000 brain voxels (4 mm: about 29,400).
TEMPLATE_RESOLUTION_MM = 5
#: ROI centres in MNI mm for the right hemisphere (the left one mirrors x), rounded from the literature:
#: EarlyVis, the calcarine sulcus near the occipital pole (V1/V2, Wang et al. 2015 Cereb Cortex 25:3911);
#: LOC, lateral occipital cortex (LO; Grill-Spector et al. 2001 Vision Res 41:1409; Malach et al. 1995);
#: PPA, posterior parahippocampal / collateral sulcus, RSC, retrosplenial / parieto-occipital sulcus, and
#: OPA, transverse occipital sulcus (Epstein & Kanwisher 1998; Dilks et al. 2013 J Neurosci 33:1331;
#: group-constrained parcels of Julian et al. 2012 NeuroImage 60:2357). Each is a sphere of
#: :data:`TEMPLATE_ROI_RADIUS_MM` kept to its hemisphere and the brain mask.
TEMPLATE_ROI_CENTRES_MM = {
    "EarlyVis": (10, -92, 0),
    "LOC": (44, -74, -6),
    "OPA": (34, -82, 22),
    "PPA": (26, -46, -10),
    "RSC": (14, -54, 12),
}
TEMPLATE_ROI_RADIUS_MM = 12.0


def _template_grid(template: str, resolution_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(brain bool (X, Y, Z), T1w float32 on the same grid, affine)``: nilearn's MNI152 on a coarse grid.

    nilearn ships the ICBM152 2009 template in its wheel (no download); its
    brain mask and T1w are resampled to ``resolution_mm`` and cropped to the
    brain's bounding box plus one voxel, keeping the real MNI affine. nilearn's
    file is the ICBM152 2009a template, not fMRIPrep's 2009c; at 4-5 mm the two
    do not differ visibly.
    """
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template
    from nilearn.image import resample_to_img

    mask_img = load_mni152_brain_mask(resolution=resolution_mm)
    brain = np.asarray(mask_img.dataobj) > 0
    lo = np.maximum(np.argwhere(brain).min(0) - 1, 0)
    hi = np.minimum(np.argwhere(brain).max(0) + 2, brain.shape)
    affine = mask_img.affine.copy()
    affine[:3, 3] = mask_img.affine[:3, :3] @ lo + mask_img.affine[:3, 3]
    brain = brain[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    t1 = resample_to_img(
        load_mni152_template(),
        nib.Nifti1Image(brain.astype(np.uint8), affine),
        interpolation="continuous",
        force_resample=True,
        copy_header=True,
    )
    return brain, np.asarray(t1.dataobj, dtype=np.float32), affine


def _template_roi_masks(shape: tuple[int, int, int], affine: np.ndarray) -> dict[str, np.ndarray]:
    """``'LHPPA'`` ... spheres at :data:`TEMPLATE_ROI_CENTRES_MM` (world mm), each on its side of x = 0."""
    ijk = np.indices(shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:]).T
    masks = {}
    for roi, (x, y, z) in TEMPLATE_ROI_CENTRES_MM.items():
        for hemi, sign in (("LH", -1), ("RH", 1)):
            near = np.linalg.norm(xyz - (sign * x, y, z), axis=1) <= TEMPLATE_ROI_RADIUS_MM
            masks[f"{hemi}{roi}"] = (near & (sign * xyz[:, 0] > 0)).reshape(shape)
    return masks


def _trial_regressors(n_vols: int, onsets: np.ndarray) -> np.ndarray:
    """``(n_vols, n_trials)`` Glover-HRF responses to 1-s stimuli, peak 1."""
    from nilearn.glm.first_level import compute_regressor

    frame_times = np.arange(n_vols) * TR
    regs = np.empty((n_vols, len(onsets)))
    for j, onset in enumerate(onsets):
        reg, _ = compute_regressor(np.array([[onset], [1.0], [1.0]]), "glover", frame_times, oversampling=16)
        regs[:, j] = reg[:, 0]
    return regs / regs.max()


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


def make_synthetic_dataset(
    root: str | Path,
    *,
    n_participants: int = 2,
    n_sessions: int = 3,
    runs_per_session: int | Sequence[int] = 4,
    trials_per_run: int = 24,
    n_repeated: int = 6,
    n_shown_thrice: int = 0,
    shape: tuple[int, int, int] = DEFAULT_GRID,
    latent_dim: int = 4,
    n_features: int = 32,
    noise_sd: float = 0.5,
    fmriprep_naming: str = "modern",
    stimuli_layout: str = "bids",
    image_size: int = 64,
    space: str | None = None,
    template: str | None = None,
    template_resolution_mm: float = TEMPLATE_RESOLUTION_MM,
    surfaces: bool = False,
    preproc_dtype: str = "float32",
    seed: int = 0,
) -> SyntheticDataset:
    """Write the dataset under ``root`` (``root/bids`` is the BIDS folder).

    Parameters
    ----------
    n_participants : int
        ``sub-CSI1`` ... ``sub-CSI<n>``. All saw the same images, in different orders.
    n_sessions, trials_per_run : int
        Functional sessions ``ses-01`` ...; runs last
        ``(6 + 10 * trials_per_run + 12) / 2`` volumes (194 for BOLD5000's 37).
    runs_per_session : int or sequence of int
        Runs in every session, or one count per session (BOLD5000: 9 or 10).
    n_repeated : int
        Images shown four times (the first showing plain, then ``rep_``).
    n_shown_thrice : int
        Images shown three times (BOLD5000 has one). The unique images are
        the trials minus ``3 * n_repeated + 2 * n_shown_thrice``.
        :data:`BOLD5000_COUNTS` holds the release's counts for all of these.
    shape : tuple
        Volume grid in voxels (3 mm isotropic); the brain is the inscribed
        ellipsoid and the ROIs scale with the grid (:data:`BOLD5000_GRID`
        gives about 51,000 brain voxels).
    noise_sd : float
        Standard deviation of the BOLD noise, in units of a voxel's
        image-driven amplitude standard deviation.
    fmriprep_naming : {'modern', 'legacy'}
        ``..._space-T1w_desc-preproc_bold.nii.gz`` or fMRIPrep 1.x's
        ``..._bold_space-T1w_preproc.nii.gz`` (as in ds001499).
    stimuli_layout : {'bids', 'bold5000'}
        ``bids/stimuli/<name>`` or ``Scene_Stimuli/Presented_Stimuli/{COCO,ImageNet,Scene}/<name>``.
    space : str, optional
        ``space-`` of the preprocessed BOLD (default ``T1w``, or ``template``
        when one is given; legacy naming supports only ``T1w``). Without
        ``template`` the grid is the same small box around the origin whatever
        the name.
    template : {'MNI152NLin2009cAsym'}, optional
        Put the data on a real brain: nilearn's bundled MNI152 brain mask at
        ``template_resolution_mm`` (5 mm: about 15,000 voxels), with the real
        MNI affine, ``shape`` ignored. ROIs are spheres at literature MNI
        coordinates (:data:`TEMPLATE_ROI_CENTRES_MM`), the planted truth
        follows them, BOLD is written in ``space-<template>`` and the template
        T1w as the participants' ``anat/sub-X_space-<template>_desc-preproc_T1w``
        in the fMRIPrep folder (the reports' underlay).
    template_resolution_mm : float
        Voxel size of the template grid (default 5; 4 gives about 29,000 voxels).
    surfaces : bool
        Also write fMRIPrep-style pial and white surfaces per hemisphere (two
        small ellipsoids inside the brain; modern or legacy names).
    preproc_dtype : {'float32', 'int16'}
        On-disk type of the preprocessed BOLD: float32, or int16 with a scale
        factor (nibabel's slope and intercept), as BOLD5000's fMRIPrep
        outputs are stored; half the bytes to compress, write and read.
    """
    if preproc_dtype not in ("float32", "int16"):
        raise ValueError(f"preproc_dtype must be 'float32' or 'int16', got {preproc_dtype!r}")
    if fmriprep_naming not in ("modern", "legacy"):
        raise ValueError("fmriprep_naming must be 'modern' or 'legacy'")
    if stimuli_layout not in ("bids", "bold5000"):
        raise ValueError("stimuli_layout must be 'bids' or 'bold5000'")
    if fmriprep_naming == "legacy" and space not in (None, "T1w"):
        raise ValueError("legacy fMRIPrep naming is written for space T1w only")
    if template is not None:
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
        if space not in (None, template):
            raise ValueError(f"template {template}: the BOLD is in space {template}, not {space}")
        if fmriprep_naming == "legacy":
            raise ValueError("legacy fMRIPrep naming is written for space T1w only, not a template")
        if surfaces:
            raise ValueError("surfaces are the participant's own (space T1w); template spaces use fsaverage")
        space = template
    space = "T1w" if space is None else space
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    bids = root / "bids"
    deriv = bids / "derivatives"
    fmriprep = deriv / "fmriprep"
    runs = (
        [int(runs_per_session)] * n_sessions if np.ndim(runs_per_session) == 0 else [int(r) for r in runs_per_session]
    )
    if len(runs) != n_sessions or min(runs) < 1:
        raise ValueError(f"runs_per_session: one count >= 1 per session ({n_sessions}), got {runs_per_session!r}")
    if len(shape) != 3 or min(shape) < 4:
        raise ValueError(f"shape must be 3 axes of at least 4 voxels, got {shape!r}")
    shape = tuple(int(a) for a in shape)
    n_trials_total = sum(runs) * trials_per_run
    n_images = n_trials_total - 3 * n_repeated - 2 * n_shown_thrice
    if n_images < 20 or n_images < n_repeated + n_shown_thrice:
        raise ValueError("too few trials for a dataset: raise sessions, runs or trials_per_run")

    # ---- stimuli and latents (shared by all participants, as in BOLD5000)
    names = _image_names(n_images, rng)
    latents = {c: rng.standard_normal((n_images, latent_dim)) for c in CLUSTERS}
    colours = rng.uniform(0, 1, (n_images, 3))
    if stimuli_layout == "bids":
        stim_dir = bids / "stimuli"
    else:
        stim_dir = root / "Scene_Stimuli" / "Presented_Stimuli"
    for i, (fname, _, folder) in enumerate(names):
        target = (stim_dir / fname) if stimuli_layout == "bids" else (stim_dir / folder / fname)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_grating_image(latents["edge"][i], colours[i], image_size, rng)).save(
            target, format="JPEG", quality=92
        )

    # ---- feature spaces: Z_c @ M + noise, per cluster; one null space
    features_dir = deriv / "features"
    feature_spaces = {}
    image_files = [n for n, _, _ in names]
    for cluster, spec in CLUSTERS.items():
        for feature_space in spec["spaces"]:
            mixing = rng.standard_normal((latent_dim, n_features))
            feats = latents[cluster] @ mixing + 0.3 * rng.standard_normal((n_images, n_features))
            _write_feature_space(
                features_dir / feature_space, feats, image_files, spec["group"], f"synthetic {cluster} cluster"
            )
            feature_spaces[feature_space] = cluster
    _write_feature_space(
        features_dir / NULL_SPACE,
        rng.standard_normal((n_images, n_features)),
        image_files,
        "other",
        "synthetic noise features (drive nothing)",
    )
    feature_spaces[NULL_SPACE] = ""

    # ---- top-level BIDS files
    _write_json(
        bids / "dataset_description.json",
        {
            "Name": "Synthetic BOLD5000-shaped dataset (bids_taskenc.testing)",
            "BIDSVersion": "1.8.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["bids_taskenc"],
        },
    )
    (bids / "README").write_text("Synthetic dataset shaped like BOLD5000 (ds001499), made by bids_taskenc.testing.\n")
    _write_json(bids / f"task-{TASK}_bold.json", {"TaskName": TASK, "RepetitionTime": TR})
    _write_json(bids / "task-localizer_bold.json", {"TaskName": "localizer", "RepetitionTime": TR})
    subs = [f"CSI{i + 1}" for i in range(n_participants)]
    pd.DataFrame({"participant_id": [f"sub-{s}" for s in subs], "age": 25, "sex": "n/a"}).to_csv(
        bids / "participants.tsv", sep="\t", index=False
    )
    _write_json(
        fmriprep / "dataset_description.json",
        {
            "Name": "fMRIPrep outputs (synthetic)",
            "BIDSVersion": "1.8.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "fMRIPrep", "Version": "1.0.8" if fmriprep_naming == "legacy" else "23.2.0"}],
        },
    )
    spm = deriv / "spm"
    _write_json(
        spm / "dataset_description.json",
        {
            "Name": "ROI masks (synthetic)",
            "BIDSVersion": "1.8.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "SPM"}],
        },
    )
    truth_dir = deriv / "synthetic_truth"
    _write_json(
        truth_dir / "dataset_description.json",
        {
            "Name": "Planted truth of the synthetic dataset",
            "BIDSVersion": "1.8.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "bids_taskenc.testing"}],
        },
    )

    if template is None:
        affine = np.diag([3.0, 3.0, 3.0, 1.0])
        affine[:3, 3] = -np.array(shape) * 1.5
        brain = _ellipsoid(shape, np.array(shape) / 2 - 0.5, np.array(shape) / 2 - 0.3)
        rois = _roi_masks(shape)
        anatomy = None
    else:
        brain, anatomy, affine = _template_grid(template, template_resolution_mm)
        shape = brain.shape
        rois = _template_roi_masks(shape, affine)
    n_vols = int((LEAD_IN_S + TRIAL_SPACING_S * trials_per_run + TAIL_S) / TR)
    onsets = LEAD_IN_S + TRIAL_SPACING_S * np.arange(trials_per_run)
    regs = _trial_regressors(n_vols, onsets)

    ds = SyntheticDataset(
        bids_dir=bids,
        stimuli_dir=stim_dir,
        fmriprep_dir=fmriprep,
        features_dir=features_dir,
        roi_dir=spm,
        truth_dir=truth_dir,
        participants=subs,
        feature_spaces=feature_spaces,
        image_names=image_files,
        latents=latents,
    )

    for sub in subs:
        # truth: each cluster drives the union of its ROIs (both hemispheres)
        truth = {}
        for cluster, spec in CLUSTERS.items():
            mask = np.zeros(shape, bool)
            for roi in spec["rois"]:
                mask |= rois[f"LH{roi}"] | rois[f"RH{roi}"]
            truth[cluster] = mask & brain
        ds.truth_masks[sub] = truth
        ds.brain_masks[sub] = brain
        vox = np.flatnonzero(brain.ravel())
        # per-voxel weights on each cluster's latent (zero outside its region)
        weights = np.zeros((len(CLUSTERS), latent_dim, vox.size))
        for c_i, cluster in enumerate(CLUSTERS):
            inside = truth[cluster].ravel()[vox]
            w = rng.standard_normal((latent_dim, inside.sum()))
            w /= np.linalg.norm(w, axis=0, keepdims=True)  # unit amplitude sd in region
            weights[c_i][:, inside] = w
        baseline = 100 + 20 * rng.random(vox.size)

        # trial order: every image once, repeated images three more times (first showing plain)
        order = (
            list(range(n_images))
            + [i for i in range(n_repeated) for _ in range(3)]
            + [i for i in range(n_repeated, n_repeated + n_shown_thrice) for _ in range(2)]
        )
        order = np.array(order)[rng.permutation(len(order))]
        seen: set[int] = set()
        t = 0
        for ses in range(1, n_sessions + 1):
            ses_l = f"{ses:02d}"
            for run in range(1, runs[ses - 1] + 1):
                run_l = f"{run:02d}"
                imgs = order[t : t + trials_per_run]
                t += trials_per_run
                amp = np.zeros((trials_per_run, vox.size))
                for c_i, cluster in enumerate(CLUSTERS):
                    amp += latents[cluster][imgs] @ weights[c_i]
                amp += 1.0  # image-independent visual response everywhere
                signal = regs @ amp
                drift = np.linspace(-1, 1, n_vols)[:, None] * rng.standard_normal(vox.size) * 0.2
                series = baseline + signal + drift + noise_sd * rng.standard_normal((n_vols, vox.size))
                bold = np.zeros(shape + (n_vols,), np.float32)
                bold.reshape(-1, n_vols)[vox] = series.T
                stem = f"sub-{sub}_ses-{ses_l}_task-{TASK}_run-{run_l}"
                func = bids / f"sub-{sub}" / f"ses-{ses_l}" / "func"
                _save_nifti(func / f"{stem}_bold.nii.gz", np.round(bold), affine, np.int16, TR)
                _write_events(func / f"{stem}_events.tsv", sub, ses, run, imgs, names, onsets, seen, rng)
                _write_fmriprep_run(
                    fmriprep / f"sub-{sub}" / f"ses-{ses_l}" / "func",
                    stem,
                    bold,
                    brain,
                    affine,
                    fmriprep_naming,
                    rng,
                    space,
                    preproc_dtype,
                )
        if surfaces:
            _write_surfaces(fmriprep / f"sub-{sub}" / "anat", sub, fmriprep_naming)
        if anatomy is not None:
            _save_nifti(
                fmriprep / f"sub-{sub}" / "anat" / f"sub-{sub}_space-{space}_desc-preproc_T1w.nii.gz",
                anatomy,
                affine,
                np.float32,
            )
        # the localizer run (no run entity, a 'cond' column): not ours
        func = bids / f"sub-{sub}" / "ses-01" / "func"
        loc_stem = f"sub-{sub}_ses-01_task-localizer"
        _save_nifti(func / f"{loc_stem}_bold.nii.gz", rng.integers(90, 110, shape + (20,)), affine, np.int16, TR)
        pd.DataFrame({"onset": [0.0, 16.0], "duration": [16.0, 16.0], "cond": ["scenes", "objects"]}).to_csv(
            func / f"{loc_stem}_events.tsv", sep="\t", index=False
        )
        # ROI masks with the release's names
        aliases = _ROI_ALIASES.get(sub, {})
        for name, mask in rois.items():
            hemi, roi = name[:2], name[2:]
            label = aliases.get(f"{roi}_{hemi}", aliases.get(roi, roi))
            _save_nifti(spm / f"sub-{sub}" / f"sub-{sub}_mask-{hemi}{label}.nii.gz", mask & brain, affine, np.uint8)
        # truth maps
        for cluster, mask in truth.items():
            _save_nifti(truth_dir / f"sub-{sub}" / f"sub-{sub}_desc-{cluster}_mask.nii.gz", mask, affine, np.uint8)
    _write_json(
        truth_dir / "truth.json",
        {
            "clusters": {
                c: {"group": s["group"], "rois": s["rois"], "feature_spaces": s["spaces"]} for c, s in CLUSTERS.items()
            },
            "null_feature_spaces": [NULL_SPACE],
            "seed": seed,
            "noise_sd": noise_sd,
            "fmriprep_naming": fmriprep_naming,
            "stimuli_layout": stimuli_layout,
            "grid": list(shape),
            "space": space,
            "template": template,
            "template_resolution_mm": template_resolution_mm if template else None,
            "runs_per_session": runs,
            "trials_per_run": trials_per_run,
            "n_trials": n_trials_total,
            "n_images": n_images,
            "n_repeated": n_repeated,
            "n_shown_thrice": n_shown_thrice,
        },
    )
    return ds


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
