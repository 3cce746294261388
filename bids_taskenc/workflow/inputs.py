"""Gather and check every input of one participant's task before anything is computed.

Events -> trials, stimulus paths, the feature rows of every image, the preprocessed runs (or the betas), ROI
masks and surface meshes: all found and checked here (present, git-annex content fetched, NIfTI readable and not
truncated), so a bad input fails the participant before any heavy work and before anything is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..bids.betas import find_beta_files
from ..bids.files import check_nifti, check_present, check_repetition_time, missing_reason
from ..bids.preprocessed import find_preprocessed
from ..bids.rois import find_roi_masks
from ..bids.surfaces import find_surfaces
from ..bids.trials import attach_stimulus_paths, build_trials
from ..core.images import load_volume
from ..core.masks import mask_array
from ..errors import InputDataError
from ..features.base import FeatureError
from .dataset import Dataset
from .partitioning import resolve_partitionings
from .settings import ParticipantSettings, ResponseSettings

log = logging.getLogger(__name__)

#: ``desc-`` labels the run writes itself; a feature space may not take them.
RESERVED_LABELS = {"noise", "brain", "roi", "split"}
#: Labels that TSV readers take for missing values (pandas' defaults, R's NA).
NA_STRINGS = {"na", "nan", "null", "none", "nil"}


@dataclass
class TaskInputs:
    """One participant's task, every input found and checked."""

    subject: str
    task: str
    runs: list  # RunFiles
    trials: pd.DataFrame
    preprocessed: list  # PreprocessedRun (empty for betas)
    beta_files: list = field(default_factory=list)  # BetaFile (betas only)
    partitionings: list = field(default_factory=list)  # Partitioning
    surfaces: object = None  # Surfaces, or None when the space has none
    surface_note: str = ""  # how the surfaces were found (sidecars' "Surfaces")

    @property
    def image_ids(self) -> list[str]:
        return list(dict.fromkeys(self.trials["image_id"]))

    @property
    def sources(self) -> list:
        """The files the responses come from (the sidecars' ``Sources``)."""
        return [p.bold for p in self.preprocessed] or [b.path for b in self.beta_files]


def check_feature_spaces(spaces, image_ids: list[str]) -> None:
    """Reject labels that would collide with our own outputs; look every image up before any heavy work."""
    for space in spaces:
        if space.label.lower() in NA_STRINGS:
            raise FeatureError(
                f"feature space {space.name}: its label {space.label!r} reads as a missing value in "
                "TSV files (pandas and R); rename its folder"
            )
        if space.label in RESERVED_LABELS or "VS" in space.label:
            raise FeatureError(
                f"feature space {space.name}: its label {space.label!r} is reserved for the run's "
                f"own outputs ({', '.join(sorted(RESERVED_LABELS))}, or containing 'VS' as the "
                "contrasts do); rename its folder"
            )
    for space in spaces:
        if not space.needs_images:
            space.lookup(image_ids)


def user_mask(responses: ResponseSettings, target):
    """The mask setting as given, or (``resample_mask``) resampled by nearest neighbour onto ``target``'s grid."""
    if responses.mask is None or not responses.resample_mask or target is None:
        return responses.mask
    import nibabel as nib
    from nilearn.image import resample_img

    mask, ref = load_volume(responses.mask), load_volume(target)
    if mask.shape[:3] == ref.shape[:3] and np.allclose(mask.affine, ref.affine, atol=1e-3):
        return responses.mask
    log.info("%s: --mask resampled (nearest neighbour) onto the grid of %s", responses.mask, target)
    data = mask_array(mask).astype(np.uint8)
    out = resample_img(
        nib.Nifti1Image(data, mask.affine),
        target_affine=ref.affine,
        target_shape=ref.shape[:3],
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    return nib.Nifti1Image(mask_array(out).astype(np.uint8), ref.affine)


def _trials(ds: Dataset, runs: list) -> pd.DataFrame:
    for run in runs:
        check_present(run.events, "events file")
    trials = build_trials(runs)
    if any(s.needs_images for s in ds.spaces):
        trials = attach_stimulus_paths(trials, ds.stimuli_dirs, {r.label: r.events for r in runs})
    else:
        trials["stimulus_path"] = None
    return trials


def _check_files(
    subject: str, ds: Dataset, settings: ParticipantSettings, trials: pd.DataFrame, preprocessed: list, surfaces
) -> None:
    """Every input file of a participant is present and readable, before anything is computed.

    git-annex content never fetched (with the ``datalad get`` that fetches it),
    broken links, unreadable or truncated NIfTI files: one error naming the file.
    """
    for prun in preprocessed:
        check_nifti(prun.bold, "preprocessed BOLD")
        _check_header_tr(prun)
        if prun.mask is not None:
            check_nifti(prun.mask, "brain mask")
        if settings.responses.confounds and prun.confounds is not None:
            check_present(prun.confounds, "confounds file")
    if settings.responses.mask is not None:
        check_nifti(settings.responses.mask, "--mask")
    if ds.roi_dir is not None:
        for path in find_roi_masks(ds.roi_dir, subject).values():
            check_nifti(path, "ROI mask")
    if any(s.needs_images for s in ds.spaces):
        for path in dict.fromkeys(trials["stimulus_path"]):
            check_present(path, "stimulus image")
    if surfaces is not None:
        for mesh in [*surfaces.pial.values(), *surfaces.white.values()]:
            if isinstance(mesh, (str, Path)):
                check_present(mesh, "surface mesh")


def _check_header_tr(prun) -> None:
    """The preprocessed and (when its content is here) the raw BOLD's header TR agree with the sidecar's.

    A sidecar's ``RepetitionTime`` that is not the scanner's makes every trial's response come from the wrong
    volumes; the header's ``pixdim[4]`` (in its ``xyzt_units``) is the other record of it.
    """
    run = prun.raw
    source = str(run.repetition_time_source or f"the JSON sidecar of {run.bold}")
    check_repetition_time(prun.bold, "preprocessed BOLD", run.repetition_time, f"{source} (the raw BOLD's)")
    if missing_reason(run.bold) is not None:  # raw BOLD not fetched (BOLD5000 clones): only its derivative is read
        log.debug("%s: raw BOLD not present; its header TR is not compared", run.bold)
        return
    try:
        check_repetition_time(run.bold, "raw BOLD", run.repetition_time, source)
    except InputDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - the raw BOLD is not read otherwise; an unreadable one is a note
        log.warning("%s: raw BOLD header not readable (%s); its TR is not compared", run.bold, exc)


def _beta_files(subject: str, runs: list, settings: ParticipantSettings) -> list:
    if not settings.responses.reads_betas:
        return []
    sessions = sorted({r.session for r in runs if r.session}) or None
    beta_files = find_beta_files(settings.responses.betas_dir, subject, sessions)
    for beta in beta_files:
        check_nifti(beta.path, "betas")
        check_present(beta.tsv, "betas stimulus table")
    return beta_files


def gather_inputs(ds: Dataset, subject: str, task: str, runs: list, settings: ParticipantSettings) -> TaskInputs:
    """Trials, feature rows, preprocessed runs or betas, ROI masks and meshes of one task: found and checked."""
    trials = _trials(ds, runs)
    check_feature_spaces(ds.spaces, list(dict.fromkeys(trials["image_id"])))  # a FeatureError: exit 1
    partitionings = resolve_partitionings(settings.comparisons.partitionings, ds.spaces)
    preprocessed = (
        []
        if settings.responses.reads_betas
        else [find_preprocessed(ds.derivative_layouts, r, ds.space, ds.selection) for r in runs]
    )
    surfaces, surface_note = find_surfaces(ds.space, [Path(lay.root) for lay in ds.derivative_layouts], subject)
    _check_files(subject, ds, settings, trials, preprocessed, surfaces)
    return TaskInputs(
        subject=subject,
        task=task,
        runs=runs,
        trials=trials,
        preprocessed=preprocessed,
        beta_files=_beta_files(subject, runs, settings),
        partitionings=partitionings,
        surfaces=surfaces,
        surface_note=surface_note,
    )
