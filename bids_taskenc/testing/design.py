"""What the synthetic dataset looks like: its timing, clusters, regions, grids and images.

The constants and the geometry :func:`~bids_taskenc.testing.synthetic.make_synthetic_dataset` builds on: run
timing (BOLD5000's), the clusters of feature spaces and the regions they drive, the volume grids (a small box or
nilearn's MNI152 brain), the region masks on them, the trials' HRF regressors, and the stimulus images.
"""

from __future__ import annotations

from typing import Any, TypedDict

import nibabel as nib
import numpy as np

TASK = "5000scenes"
TR = 2.0
LEAD_IN_S = 6.0
TRIAL_SPACING_S = 10.0
TAIL_S = 12.0


class ClusterSpec(TypedDict):
    """One cluster of feature spaces: its group label, the ROIs it drives, its spaces' names."""

    group: str
    rois: list[str]
    spaces: list[str]


#: Clusters of feature spaces: group, the ROIs they drive, the space names.
CLUSTERS: dict[str, ClusterSpec] = {
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
BOLD5000_COUNTS: dict[str, Any] = {
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
