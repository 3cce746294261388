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

Options of :func:`make_synthetic_dataset` beyond the counts and sizes its docstring describes:

fmriprep_naming : {'modern', 'legacy'}
    ``..._space-T1w_desc-preproc_bold.nii.gz`` or fMRIPrep 1.x's ``..._bold_space-T1w_preproc.nii.gz`` (ds001499).
stimuli_layout : {'bids', 'bold5000'}
    ``bids/stimuli/<name>`` or ``Scene_Stimuli/Presented_Stimuli/{COCO,ImageNet,Scene}/<name>``.
space : str, optional
    ``space-`` of the preprocessed BOLD (default ``T1w``, or ``template`` when one is given; legacy naming
    supports only ``T1w``). Without ``template`` the grid is the same small box around the origin whatever the name.
template : {'MNI152NLin2009cAsym'}, optional
    Put the data on a real brain: nilearn's bundled MNI152 brain mask at ``template_resolution_mm`` (5 mm: about
    15,000 voxels; 4 mm about 29,000), with the real MNI affine, ``shape`` ignored. ROIs are spheres at
    literature MNI coordinates (:data:`TEMPLATE_ROI_CENTRES_MM`), the planted truth follows them, BOLD is written
    in ``space-<template>`` and the template T1w as the participants'
    ``anat/sub-X_space-<template>_desc-preproc_T1w`` in the fMRIPrep folder (the reports' underlay).
surfaces : bool
    Also write fMRIPrep-style pial and white surfaces per hemisphere (two small ellipsoids inside the brain;
    modern or legacy names).
preproc_dtype : {'float32', 'int16'}
    On-disk type of the preprocessed BOLD: float32, or int16 with a scale factor (nibabel's slope and
    intercept), as BOLD5000's fMRIPrep outputs are stored; half the bytes to compress, write and read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .design import (
    BOLD5000_COUNTS,
    BOLD5000_GRID,
    CLUSTERS,
    DEFAULT_GRID,
    LEAD_IN_S,
    NULL_SPACE,
    ROIS,
    TAIL_S,
    TASK,
    TEMPLATE_RESOLUTION_MM,
    TEMPLATE_ROI_CENTRES_MM,
    TEMPLATE_ROI_RADIUS_MM,
    TEMPLATES,
    TR,
    TRIAL_SPACING_S,
    _ellipsoid,
    _grating_image,
    _image_names,
    _roi_masks,
    _template_grid,
    _template_roi_masks,
    _trial_regressors,
)
from .files import _write_feature_space, _write_json
from .participant import Design, write_participant

__all__ = [
    "BOLD5000_COUNTS",
    "BOLD5000_GRID",
    "CLUSTERS",
    "DEFAULT_GRID",
    "LEAD_IN_S",
    "NULL_SPACE",
    "ROIS",
    "TAIL_S",
    "TASK",
    "TEMPLATES",
    "TEMPLATE_RESOLUTION_MM",
    "TEMPLATE_ROI_CENTRES_MM",
    "TEMPLATE_ROI_RADIUS_MM",
    "TR",
    "TRIAL_SPACING_S",
    "SyntheticDataset",
    "make_synthetic_dataset",
]


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
    """Write the dataset under ``root`` (``root/bids`` is the BIDS folder); other options: the module docstring.

    ``sub-CSI1`` ... ``sub-CSI<n_participants>`` saw the same images in different orders; runs last
    ``(6 + 10 * trials_per_run + 12) / 2`` volumes (194 for BOLD5000's 37); images in ``n_repeated`` are shown
    four times (first plain, then ``rep_``), those in ``n_shown_thrice`` three times (:data:`BOLD5000_COUNTS`
    holds the release's counts). ``shape`` is the grid of 3 mm voxels (the brain is its inscribed ellipsoid,
    ROIs scale with it; :data:`BOLD5000_GRID` gives about 51,000 brain voxels); ``template`` puts the data on
    nilearn's MNI152 brain instead. ``noise_sd`` is in units of a voxel's image-driven amplitude sd.
    """
    space = _checked_space(fmriprep_naming, stimuli_layout, preproc_dtype, space, template, surfaces)
    rng = np.random.default_rng(seed)
    root = Path(root)
    runs = _run_counts(runs_per_session, n_sessions)
    shape = _checked_shape(shape)
    n_images = sum(runs) * trials_per_run - 3 * n_repeated - 2 * n_shown_thrice
    if n_images < 20 or n_images < n_repeated + n_shown_thrice:
        raise ValueError("too few trials for a dataset: raise sessions, runs or trials_per_run")
    # stimuli, latents and features are shared by all participants, as in BOLD5000
    names = _image_names(n_images, rng)
    latents = {c: rng.standard_normal((n_images, latent_dim)) for c in CLUSTERS}
    stim_dir = _write_stimuli(root, stimuli_layout, names, latents, image_size, rng)
    deriv = root / "bids" / "derivatives"
    spaces = _write_features(deriv / "features", names, latents, n_features, rng)
    subs = [f"CSI{i + 1}" for i in range(n_participants)]
    _write_descriptions(root / "bids", subs, fmriprep_naming)
    design = _design(
        root / "bids",
        _grid(shape, template, template_resolution_mm),
        names=names,
        latents=latents,
        latent_dim=latent_dim,
        runs=runs,
        trials_per_run=trials_per_run,
        n_repeated=n_repeated,
        n_shown_thrice=n_shown_thrice,
        noise_sd=noise_sd,
        naming=fmriprep_naming,
        space=space,
        preproc_dtype=preproc_dtype,
        surfaces=surfaces,
    )
    ds = _dataset(root / "bids", stim_dir, subs, spaces, names, latents)
    for sub in subs:
        ds.truth_masks[sub] = write_participant(design, sub, rng)
        ds.brain_masks[sub] = design.brain
    truth = dict(seed=seed, noise_sd=noise_sd, fmriprep_naming=fmriprep_naming, stimuli_layout=stimuli_layout)
    _write_truth(ds.truth_dir, design, truth, template, template_resolution_mm)
    return ds


def _checked_space(
    naming: str, layout: str, preproc_dtype: str, space: str | None, template: str | None, surfaces: bool
) -> str:
    """The BOLD's ``space-`` after checking the options that depend on each other; ValueError on a bad one."""
    if preproc_dtype not in ("float32", "int16"):
        raise ValueError(f"preproc_dtype must be 'float32' or 'int16', got {preproc_dtype!r}")
    if naming not in ("modern", "legacy"):
        raise ValueError("fmriprep_naming must be 'modern' or 'legacy'")
    if layout not in ("bids", "bold5000"):
        raise ValueError("stimuli_layout must be 'bids' or 'bold5000'")
    if naming == "legacy" and space not in (None, "T1w"):
        raise ValueError("legacy fMRIPrep naming is written for space T1w only")
    if template is not None:
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
        if space not in (None, template):
            raise ValueError(f"template {template}: the BOLD is in space {template}, not {space}")
        if naming == "legacy":
            raise ValueError("legacy fMRIPrep naming is written for space T1w only, not a template")
        if surfaces:
            raise ValueError("surfaces are the participant's own (space T1w); template spaces use fsaverage")
        space = template
    return "T1w" if space is None else space


def _run_counts(runs_per_session: int | Sequence[int], n_sessions: int) -> list[int]:
    """Runs of each session: one count for all, or one per session."""
    counts = np.asarray(runs_per_session)
    runs = [int(counts)] * n_sessions if counts.ndim == 0 else [int(r) for r in counts]
    if len(runs) != n_sessions or min(runs) < 1:
        raise ValueError(f"runs_per_session: one count >= 1 per session ({n_sessions}), got {runs_per_session!r}")
    return runs


def _checked_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    if len(shape) != 3 or min(shape) < 4:
        raise ValueError(f"shape must be 3 axes of at least 4 voxels, got {shape!r}")
    return int(shape[0]), int(shape[1]), int(shape[2])


def _write_stimuli(
    root: Path,
    layout: str,
    names: list[tuple[str, str, str]],
    latents: dict[str, np.ndarray],
    image_size: int,
    rng: np.random.Generator,
) -> Path:
    """The JPEG stimuli, gratings following the 2D cluster's latent; returns their folder."""
    from PIL import Image

    colours = rng.uniform(0, 1, (len(names), 3))
    stim_dir = root / "bids" / "stimuli" if layout == "bids" else root / "Scene_Stimuli" / "Presented_Stimuli"
    for i, (fname, _, folder) in enumerate(names):
        target = (stim_dir / fname) if layout == "bids" else (stim_dir / folder / fname)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_grating_image(latents["edge"][i], colours[i], image_size, rng)).save(
            target, format="JPEG", quality=92
        )
    return stim_dir


def _write_features(
    features_dir: Path,
    names: list[tuple[str, str, str]],
    latents: dict[str, np.ndarray],
    n_features: int,
    rng: np.random.Generator,
) -> dict[str, str]:
    """Feature spaces ``Z_c @ M + noise`` per cluster and one null space; returns space -> cluster ('' null)."""
    feature_spaces = {}
    image_files = [n for n, _, _ in names]
    n_images = len(names)
    for cluster, spec in CLUSTERS.items():
        for feature_space in spec["spaces"]:
            mixing = rng.standard_normal((latents[cluster].shape[1], n_features))
            feats = latents[cluster] @ mixing + 0.3 * rng.standard_normal((n_images, n_features))
            description = f"synthetic {cluster} cluster"
            _write_feature_space(features_dir / feature_space, feats, image_files, spec["group"], description)
            feature_spaces[feature_space] = cluster
    noise = rng.standard_normal((n_images, n_features))
    description = "synthetic noise features (drive nothing)"
    _write_feature_space(features_dir / NULL_SPACE, noise, image_files, "other", description)
    feature_spaces[NULL_SPACE] = ""
    return feature_spaces


def _derivative_description(name: str, generated_by: dict) -> dict:
    return {"Name": name, "BIDSVersion": "1.8.0", "DatasetType": "derivative", "GeneratedBy": [generated_by]}


def _write_descriptions(bids: Path, subs: list[str], naming: str) -> None:
    """Top-level BIDS files and the three derivative folders' ``dataset_description.json``."""
    raw = {
        "Name": "Synthetic BOLD5000-shaped dataset (bids_taskenc.testing)",
        "BIDSVersion": "1.8.0",
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": ["bids_taskenc"],
    }
    _write_json(bids / "dataset_description.json", raw)
    (bids / "README").write_text("Synthetic dataset shaped like BOLD5000 (ds001499), made by bids_taskenc.testing.\n")
    _write_json(bids / f"task-{TASK}_bold.json", {"TaskName": TASK, "RepetitionTime": TR})
    _write_json(bids / "task-localizer_bold.json", {"TaskName": "localizer", "RepetitionTime": TR})
    pd.DataFrame({"participant_id": [f"sub-{s}" for s in subs], "age": 25, "sex": "n/a"}).to_csv(
        bids / "participants.tsv", sep="\t", index=False
    )
    deriv = bids / "derivatives"
    fmriprep = {"Name": "fMRIPrep", "Version": "1.0.8" if naming == "legacy" else "23.2.0"}
    _write_json(deriv / "fmriprep" / "dataset_description.json", _derivative_description(
        "fMRIPrep outputs (synthetic)", fmriprep
    ))  # fmt: skip
    _write_json(deriv / "spm" / "dataset_description.json", _derivative_description(
        "ROI masks (synthetic)", {"Name": "SPM"}
    ))  # fmt: skip
    _write_json(deriv / "synthetic_truth" / "dataset_description.json", _derivative_description(
        "Planted truth of the synthetic dataset", {"Name": "bids_taskenc.testing"}
    ))  # fmt: skip


def _dataset(
    bids: Path,
    stim_dir: Path,
    subs: list[str],
    spaces: dict[str, str],
    names: list[tuple[str, str, str]],
    latents: dict[str, np.ndarray],
) -> SyntheticDataset:
    """The dataset's record, before its participants' truth is filled in."""
    deriv = bids / "derivatives"
    return SyntheticDataset(
        bids_dir=bids,
        stimuli_dir=stim_dir,
        fmriprep_dir=deriv / "fmriprep",
        features_dir=deriv / "features",
        roi_dir=deriv / "spm",
        truth_dir=deriv / "synthetic_truth",
        participants=subs,
        feature_spaces=spaces,
        image_names=[n for n, _, _ in names],
        latents=latents,
    )


Grid = tuple[tuple[int, int, int], np.ndarray, np.ndarray, dict[str, np.ndarray], "np.ndarray | None"]


def _grid(shape: tuple[int, int, int], template: str | None, resolution_mm: float) -> Grid:
    """``(shape, affine, brain, rois, anatomy)``: the small box with an ellipsoid brain, or the template's brain."""
    if template is None:
        affine = np.diag([3.0, 3.0, 3.0, 1.0])
        affine[:3, 3] = -np.array(shape) * 1.5
        brain = _ellipsoid(shape, np.array(shape) / 2 - 0.5, np.array(shape) / 2 - 0.3)
        return shape, affine, brain, _roi_masks(shape), None
    brain, anatomy, affine = _template_grid(template, resolution_mm)
    shape = _checked_shape(brain.shape)
    return shape, affine, brain, _template_roi_masks(shape, affine), anatomy


def _design(bids: Path, grid: Grid, *, trials_per_run: int, **shared) -> Design:
    """What all participants share (:class:`Design`): folders, ``grid``, run timing, and ``shared`` as given."""
    shape, affine, brain, rois, anatomy = grid
    n_vols = int((LEAD_IN_S + TRIAL_SPACING_S * trials_per_run + TAIL_S) / TR)
    onsets = LEAD_IN_S + TRIAL_SPACING_S * np.arange(trials_per_run)
    deriv = bids / "derivatives"
    return Design(
        bids=bids,
        fmriprep=deriv / "fmriprep",
        spm=deriv / "spm",
        truth_dir=deriv / "synthetic_truth",
        shape=shape,
        affine=affine,
        brain=brain,
        rois=rois,
        anatomy=anatomy,
        trials_per_run=trials_per_run,
        onsets=onsets,
        regs=_trial_regressors(n_vols, onsets),
        **shared,
    )


def _write_truth(truth_dir: Path, d: Design, settings: dict, template: str | None, resolution_mm: float) -> None:
    """``truth.json``: the clusters, their regions and spaces, and the settings that made the dataset."""
    record = {
        "clusters": {
            c: {"group": s["group"], "rois": s["rois"], "feature_spaces": s["spaces"]} for c, s in CLUSTERS.items()
        },
        "null_feature_spaces": [NULL_SPACE],
        **settings,
        "grid": list(d.shape),
        "space": d.space,
        "template": template,
        "template_resolution_mm": resolution_mm if template else None,
        "runs_per_session": d.runs,
        "trials_per_run": d.trials_per_run,
        "n_trials": sum(d.runs) * d.trials_per_run,
        "n_images": d.n_images,
        "n_repeated": d.n_repeated,
        "n_shown_thrice": d.n_shown_thrice,
    }
    _write_json(truth_dir / "truth.json", record)
