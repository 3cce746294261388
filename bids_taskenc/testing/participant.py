"""One synthetic participant: planted weights, trial order, BOLD runs, fMRIPrep outputs, localizer, ROIs, truth.

:func:`write_participant` is called once per participant by
:func:`~bids_taskenc.testing.synthetic.make_synthetic_dataset`, always with the dataset's one random generator:
the draws happen in a fixed order (weights, baseline, trial order, then each run's drift, noise, events and
confounds, then the localizer), so a seed gives the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .design import _ROI_ALIASES, CLUSTERS, TASK, TR
from .files import _save_nifti, _write_events, _write_fmriprep_run, _write_surfaces


@dataclass
class Design:
    """What all participants share: folders, grid, regions, images and their latents, run layout and timing.

    ``brain`` and each of ``rois`` are bool ``(X, Y, Z)`` on ``shape``; ``anatomy`` the template T1w on that grid
    (None off a template); ``latents`` maps a cluster to ``(n_images, latent_dim)``; ``regs`` is
    ``(n_vols, trials_per_run)``, the trials' HRF regressors at ``onsets`` (s).
    """

    bids: Path
    fmriprep: Path
    spm: Path
    truth_dir: Path
    shape: tuple[int, int, int]
    affine: np.ndarray
    brain: np.ndarray
    rois: dict[str, np.ndarray]
    anatomy: np.ndarray | None
    names: list[tuple[str, str, str]]
    latents: dict[str, np.ndarray]
    latent_dim: int
    runs: list[int]
    trials_per_run: int
    n_repeated: int
    n_shown_thrice: int
    noise_sd: float
    naming: str
    space: str
    preproc_dtype: str
    surfaces: bool
    onsets: np.ndarray
    regs: np.ndarray

    @property
    def n_vols(self) -> int:
        return self.regs.shape[0]

    @property
    def n_images(self) -> int:
        return len(self.names)


def write_participant(d: Design, sub: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Write ``sub``'s runs, anatomy, localizer, ROI masks and truth maps; return its truth (cluster -> mask)."""
    truth = {}
    for cluster, spec in CLUSTERS.items():  # each cluster drives the union of its ROIs (both hemispheres)
        mask = np.zeros(d.shape, bool)
        for roi in spec["rois"]:
            mask |= d.rois[f"LH{roi}"] | d.rois[f"RH{roi}"]
        truth[cluster] = mask & d.brain
    vox = np.flatnonzero(d.brain.ravel())
    weights = _planted_weights(d, truth, vox, rng)
    baseline = 100 + 20 * rng.random(vox.size)
    _write_runs(d, sub, _trial_order(d, rng), vox, weights, baseline, rng)
    if d.surfaces:
        _write_surfaces(d.fmriprep / f"sub-{sub}" / "anat", sub, d.naming)
    if d.anatomy is not None:
        anat = d.fmriprep / f"sub-{sub}" / "anat" / f"sub-{sub}_space-{d.space}_desc-preproc_T1w.nii.gz"
        _save_nifti(anat, d.anatomy, d.affine, np.float32)
    _write_localizer(d, sub, rng)
    aliases = _ROI_ALIASES.get(sub, {})  # ROI masks with the release's names
    for name, mask in d.rois.items():
        hemi, roi = name[:2], name[2:]
        label = aliases.get(f"{roi}_{hemi}", aliases.get(roi, roi))
        _save_nifti(d.spm / f"sub-{sub}" / f"sub-{sub}_mask-{hemi}{label}.nii.gz", mask & d.brain, d.affine, np.uint8)
    for cluster, mask in truth.items():
        _save_nifti(d.truth_dir / f"sub-{sub}" / f"sub-{sub}_desc-{cluster}_mask.nii.gz", mask, d.affine, np.uint8)
    return truth


def _planted_weights(d: Design, truth: dict[str, np.ndarray], vox: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(n_clusters, latent_dim, n_brain_voxels)``: unit-norm weights on a cluster's latent in its region, else 0."""
    weights = np.zeros((len(CLUSTERS), d.latent_dim, vox.size))
    for c_i, cluster in enumerate(CLUSTERS):
        inside = truth[cluster].ravel()[vox]
        w = rng.standard_normal((d.latent_dim, inside.sum()))
        w /= np.linalg.norm(w, axis=0, keepdims=True)  # unit amplitude sd in region
        weights[c_i][:, inside] = w
    return weights


def _trial_order(d: Design, rng: np.random.Generator) -> np.ndarray:
    """Image index of every trial: each image once, repeated ones three (or two) more times, shuffled."""
    repeats = [i for i in range(d.n_repeated) for _ in range(3)]
    thrice = [i for i in range(d.n_repeated, d.n_repeated + d.n_shown_thrice) for _ in range(2)]
    order = np.array(list(range(d.n_images)) + repeats + thrice)
    return order[rng.permutation(len(order))]


def _write_runs(
    d: Design,
    sub: str,
    order: np.ndarray,
    vox: np.ndarray,
    weights: np.ndarray,
    baseline: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Every run of ``sub``: raw BOLD (int16) and events in the BIDS folder, preprocessed run in fMRIPrep's."""
    seen: set[int] = set()
    t = 0
    for ses in range(1, len(d.runs) + 1):
        ses_l = f"{ses:02d}"
        for run in range(1, d.runs[ses - 1] + 1):
            imgs = order[t : t + d.trials_per_run]
            t += d.trials_per_run
            amp = np.zeros((d.trials_per_run, vox.size))
            for c_i, cluster in enumerate(CLUSTERS):
                amp += d.latents[cluster][imgs] @ weights[c_i]
            amp += 1.0  # image-independent visual response everywhere
            drift = np.linspace(-1, 1, d.n_vols)[:, None] * rng.standard_normal(vox.size) * 0.2
            series = baseline + d.regs @ amp + drift + d.noise_sd * rng.standard_normal((d.n_vols, vox.size))
            bold = np.zeros(d.shape + (d.n_vols,), np.float32)
            bold.reshape(-1, d.n_vols)[vox] = series.T
            stem = f"sub-{sub}_ses-{ses_l}_task-{TASK}_run-{run:02d}"
            func = d.bids / f"sub-{sub}" / f"ses-{ses_l}" / "func"
            _save_nifti(func / f"{stem}_bold.nii.gz", np.round(bold), d.affine, np.int16, TR)
            _write_events(func / f"{stem}_events.tsv", sub, ses, run, imgs, d.names, d.onsets, seen, rng)
            folder = d.fmriprep / f"sub-{sub}" / f"ses-{ses_l}" / "func"
            _write_fmriprep_run(folder, stem, bold, d.brain, d.affine, d.naming, rng, d.space, d.preproc_dtype)


def _write_localizer(d: Design, sub: str, rng: np.random.Generator) -> None:
    """The localizer run (no run entity, a 'cond' column): not ours, the app must leave it out."""
    func = d.bids / f"sub-{sub}" / "ses-01" / "func"
    stem = f"sub-{sub}_ses-01_task-localizer"
    _save_nifti(func / f"{stem}_bold.nii.gz", rng.integers(90, 110, d.shape + (20,)), d.affine, np.int16, TR)
    pd.DataFrame({"onset": [0.0, 16.0], "duration": [16.0, 16.0], "cond": ["scenes", "objects"]}).to_csv(
        func / f"{stem}_events.tsv", sep="\t", index=False
    )
