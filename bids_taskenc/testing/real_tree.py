"""The real ds001499 file tree (BOLD5000, participant CSI1) with small synthetic images and a planted truth.

OpenNeuro ds001499 keeps its text files (events, sidecars, fMRIPrep 1.x confounds, sessions.tsv,
``.bidsignore``, ``tmp_dcm2bids/`` JSONs) in git and its images in git-annex. An archive of the
text files (``tests/data/ds001499_sub-CSI1/``, or the whole participant in
``../shared/real/ds001499/ds001499-CSI1-text.tgz``) gives the real tree; :func:`build_real_tree`
unpacks it and writes synthetic images at the annexed paths the app reads:

* raw and preprocessed BOLD of every run (both tasks), fMRIPrep 1.x names
  (``..._bold_space-T1w_preproc.nii.gz``, ``..._bold_space-T1w_brainmask.nii.gz``), as many
  volumes as the run's real confounds file has rows, int16 with a scale factor, on a small grid;
* the ROI masks of ``derivatives/spm`` with the release's names (``sub-CSI1_mask-LHPPA.nii.gz``);
* the anatomy of ``ses-16`` (the session with no functional run);
* one tiny JPEG per image the real events name, where the release's stimuli archive puts it:
  ``Scene_Stimuli/Presented_Stimuli/{COCO,ImageNet,Scene}/<ImgName>`` beside the BIDS folder.

Nothing is added that the release lacks: ``derivatives/fmriprep`` and ``derivatives/spm`` get no
``dataset_description.json``. Every image written is checked against the release's list of
annexed files (``ds001499-CSI1-annexed.txt`` in the archive folder, when given).

The planted truth: two user feature spaces in ``derivatives/features``. ``drive`` is
``Z @ M + noise`` of a latent ``Z (n_images, latent_dim)``; the voxels of the two PPA masks respond
to image ``i`` with ``Z[i] @ w_v`` (unit-norm ``w_v``), convolved with the Glover HRF at the real
onsets and durations of the events; ``random`` is noise and drives nothing. Every brain voxel also
responds the same to every image.

``copies`` adds participants whose text tree is CSI1's under another label (the group level needs
two). Their ROI masks take the release's inconsistent names of CSI2 (``LHLO``, ``RHLO``,
``RHRRSC``), their voxel weights and noise are their own.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from .design import _ellipsoid, _roi_masks
from .files import _save_nifti, _write_feature_space

PARTICIPANT = "CSI1"
TASK = "5000scenes"
LOCALIZER = "localizer"
#: Where the release's stimuli archive (BOLD5000_Stimuli.zip) puts each ``ImgType``'s images.
STIMULUS_FOLDERS = {"coco": "COCO", "imagenet": "ImageNet", "scenes": "Scene"}
DRIVEN_ROI = "PPA"
DRIVE_SPACE = "drive"
NULL_SPACE = "random"
#: ROI file names of the release for CSI2 (DESIGN.md): the copies get these.
_COPY_ROI_NAMES = {"LHLOC": "LHLO", "RHLOC": "RHLO", "RHRSC": "RHRRSC"}
ANNEXED_LIST = "ds001499-CSI1-annexed.txt"


@dataclass
class RealTree:
    """Where the tree was written, what it holds, and the planted truth."""

    bids_dir: Path
    stimuli_dir: Path
    features_dir: Path
    roi_dir: Path
    fmriprep_dir: Path
    participants: list[str]
    sessions: list[str]
    #: participant -> {'runs', 'trials', 'images', 'localizer_runs'} of the task ``5000scenes``
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: participant -> bool (X, Y, Z): the voxels ``drive`` drives (both PPA masks within the brain)
    truth_masks: dict[str, np.ndarray] = field(default_factory=dict)
    brain_mask: np.ndarray | None = None
    image_names: list[str] = field(default_factory=list)
    #: how many image paths written were found in the release's annexed-file list (0: no list to check)
    annexed_checked: int = 0


def _safe_members(tar: tarfile.TarFile, archive: Path, sessions: set[str] | None) -> list[tarfile.TarInfo]:
    """Regular files and folders of the archive, of the asked-for sessions (all when None)."""
    keep = []
    for member in tar.getmembers():
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
            raise ValueError(f"{archive}: unsafe member {member.name!r}")
        ses = next((p[4:] for p in path.parts if p.startswith("ses-")), None)
        if sessions is None or ses is None or ses in sessions:
            keep.append(member)
    return keep


def unpack_text_tree(archive: Path, bids_dir: Path, sessions: Sequence[str] | None = None) -> None:
    """Unpack the text files of the archive (only ``sessions`` when given, e.g. ``['03', '04']``) into ``bids_dir``."""
    bids_dir.mkdir(parents=True, exist_ok=True)
    wanted = None if sessions is None else {str(s) for s in sessions}
    with tarfile.open(archive) as tar:
        members = _safe_members(tar, archive, wanted)
        # the members are checked by _safe_members; the "data" filter (Python >= 3.11.4) checks again
        if hasattr(tarfile, "data_filter"):
            tar.extractall(bids_dir, members=members, filter="data")
        else:
            tar.extractall(bids_dir, members=members)


def real_events_files(bids_dir: Path, participant: str = PARTICIPANT, task: str = TASK) -> list[Path]:
    """The events files of ``task`` for ``participant``, in session and run order."""
    return sorted((bids_dir / f"sub-{participant}").glob(f"ses-*/func/sub-{participant}_ses-*_task-{task}*_events.tsv"))


def _copy_participant(bids_dir: Path, source: str, label: str) -> None:
    """``sub-<source>``'s text files (raw and fMRIPrep) as ``sub-<label>``, names and ``Subj`` unchanged otherwise."""
    for top in (bids_dir, bids_dir / "derivatives" / "fmriprep"):
        src = top / f"sub-{source}"
        if not src.is_dir():
            continue
        for path in sorted(src.rglob("*")):
            if path.is_file():
                rel = str(path.relative_to(src)).replace(f"sub-{source}", f"sub-{label}")
                target = top / f"sub-{label}" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    table = pd.read_csv(bids_dir / "participants.tsv", sep="\t", dtype=str, keep_default_na=False)
    row = table[table["participant_id"] == f"sub-{source}"].assign(participant_id=f"sub-{label}")
    pd.concat([table, row]).to_csv(bids_dir / "participants.tsv", sep="\t", index=False)


def _boxcar_hrf(dt: float = 0.05, length_s: float = 32.0):
    """``(times, response)``: the Glover HRF's response to 1 s of stimulus at ``dt`` resolution, peak 1."""
    from nilearn.glm.first_level import glover_hrf

    hrf = glover_hrf(t_r=dt, oversampling=1, time_length=length_s)
    box = np.ones(int(round(1.0 / dt)))
    resp = np.convolve(hrf, box)[: hrf.size]
    return np.arange(hrf.size) * dt, resp / resp.max()


def _trial_regressors(n_vols: int, tr: float, onsets: np.ndarray, kernel) -> np.ndarray:
    """``(n_vols, n_trials)``: each trial's HRF response at the volume times ``k * tr``."""
    times, resp = kernel
    frame = np.arange(n_vols) * tr
    lag = frame[:, None] - np.asarray(onsets, float)[None, :]
    return np.interp(lag, times, resp, left=0.0, right=0.0)


def _write_stimuli(events: pd.DataFrame, stimuli_dir: Path, rng: np.random.Generator) -> list[str]:
    """One 8 x 8 JPEG per image the events name, in the release's folder of its ``ImgType``; the names, sorted."""
    from PIL import Image

    kinds = events.assign(kind=events["ImgType"].str.removeprefix("rep_")).drop_duplicates("ImgName")
    for name, kind in zip(kinds["ImgName"], kinds["kind"]):
        target = stimuli_dir / STIMULUS_FOLDERS[kind] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=80)
        target.write_bytes(buffer.getvalue())
    return sorted(kinds["ImgName"])


def _n_volumes(fmriprep: Path, participant: str, events_file: Path) -> int:
    """Rows of the run's real fMRIPrep confounds file (one per volume)."""
    stem = events_file.name.removesuffix("_events.tsv")
    conf = fmriprep / f"sub-{participant}" / events_file.parent.parent.name / "func" / f"{stem}_bold_confounds.tsv"
    if not conf.is_file():
        raise FileNotFoundError(f"{conf}: not in the text archive; it gives the run's number of volumes")
    with conf.open() as fh:
        return sum(1 for _ in fh) - 1


@dataclass
class _Grid:
    shape: tuple[int, int, int]
    affine: np.ndarray
    brain: np.ndarray
    rois: dict[str, np.ndarray]


def _grid(shape: tuple[int, int, int]) -> _Grid:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])  # BOLD5000's T1w-space EPI voxels are about 2 mm
    affine[:3, 3] = -np.array(shape)
    brain = _ellipsoid(shape, np.array(shape) / 2 - 0.5, np.array(shape) / 2 - 0.3)
    return _Grid(shape, affine, brain, {k: v & brain for k, v in _roi_masks(shape).items()})


def _write_run(
    bids_dir: Path,
    participant: str,
    events_file: Path,
    grid: _Grid,
    signal: np.ndarray | None,
    noise_sd: float,
    rng: np.random.Generator,
) -> list[Path]:
    """Raw BOLD, preprocessed BOLD and brain mask of one run; ``signal (n_vols, n_brain)`` or None (noise only)."""
    fmriprep = bids_dir / "derivatives" / "fmriprep"
    stem = events_file.name.removesuffix("_events.tsv")
    ses = events_file.parent.parent.name
    n_vols = _n_volumes(fmriprep, participant, events_file) if signal is None else signal.shape[0]
    vox = np.flatnonzero(grid.brain.ravel())
    series = 1000.0 + 50.0 * rng.random(vox.size) + noise_sd * rng.standard_normal((n_vols, vox.size))
    if signal is not None:
        series += signal
    bold = np.zeros(grid.shape + (n_vols,), np.float32)
    bold.reshape(-1, n_vols)[vox] = series.T
    raw = bids_dir / f"sub-{participant}" / ses / "func" / f"{stem}_bold.nii.gz"
    preproc = fmriprep / f"sub-{participant}" / ses / "func" / f"{stem}_bold_space-T1w_preproc.nii.gz"
    mask = fmriprep / f"sub-{participant}" / ses / "func" / f"{stem}_bold_space-T1w_brainmask.nii.gz"
    _save_nifti(raw, np.round(bold), grid.affine, np.int16, 2.0)
    _save_nifti(preproc, bold, grid.affine, np.int16, 2.0, scaled=True)
    _save_nifti(mask, grid.brain, grid.affine, np.uint8)
    return [raw, preproc, mask]


def _read_events(events_file: Path) -> pd.DataFrame:
    return pd.read_csv(events_file, sep="\t", na_values=["n/a"], keep_default_na=False)


def _participant_images(
    bids_dir: Path,
    participant: str,
    grid: _Grid,
    latent: np.ndarray,
    image_row: dict[str, int],
    noise_sd: float,
    rng: np.random.Generator,
) -> tuple[list[Path], dict[str, int], np.ndarray]:
    """Every run's images of one participant; ``(files written, counts, truth mask)``."""
    vox = np.flatnonzero(grid.brain.ravel())
    truth = (grid.rois[f"LH{DRIVEN_ROI}"] | grid.rois[f"RH{DRIVEN_ROI}"]) & grid.brain
    inside = truth.ravel()[vox]
    weights = np.zeros((latent.shape[1], vox.size))
    w = rng.standard_normal((latent.shape[1], int(inside.sum())))
    weights[:, inside] = w / np.linalg.norm(w, axis=0, keepdims=True)
    kernel = _boxcar_hrf()
    written: list[Path] = []
    trials = 0
    seen: set[str] = set()
    runs = real_events_files(bids_dir, participant)
    for events_file in runs:
        events = _read_events(events_file)
        n_vols = _n_volumes(bids_dir / "derivatives" / "fmriprep", participant, events_file)
        amp = latent[[image_row[n] for n in events["ImgName"]]] @ weights + 1.0  # (n_trials, n_brain)
        regs = _trial_regressors(n_vols, 2.0, events["onset"].to_numpy(float), kernel)
        written += _write_run(bids_dir, participant, events_file, grid, regs @ amp, noise_sd, rng)
        trials += len(events)
        seen.update(events["ImgName"])
    localizers = real_events_files(bids_dir, participant, LOCALIZER)
    for events_file in localizers:
        written += _write_run(bids_dir, participant, events_file, grid, None, noise_sd, rng)
    counts = {"runs": len(runs), "trials": trials, "images": len(seen), "localizer_runs": len(localizers)}
    return written, counts, truth


def _write_rois(roi_dir: Path, participant: str, grid: _Grid, renames: dict[str, str]) -> list[Path]:
    out = []
    for name, mask in sorted(grid.rois.items()):
        path = roi_dir / f"sub-{participant}" / f"sub-{participant}_mask-{renames.get(name, name)}.nii.gz"
        _save_nifti(path, mask, grid.affine, np.uint8)
        out.append(path)
    return out


def _write_anatomy(bids_dir: Path, participant: str, grid: _Grid, rng: np.random.Generator) -> list[Path]:
    """``ses-16``'s T1w images (the release's only anatomy), as a smooth image on the BOLD grid."""
    out = []
    for run in (1, 2):
        path = (
            bids_dir / f"sub-{participant}" / "ses-16" / "anat" / f"sub-{participant}_ses-16_run-{run:02d}_T1w.nii.gz"
        )
        _save_nifti(path, 100.0 * grid.brain + rng.random(grid.shape), grid.affine, np.int16)
        out.append(path)
    return out


def _check_annexed(written: list[Path], bids_dir: Path, annexed: Path | None) -> int:
    """Every CSI1 image written is at a path the release's annexed list names; the number checked."""
    if annexed is None:
        return 0
    listed = set(annexed.read_text().split())
    ours = [str(p.relative_to(bids_dir)) for p in written if f"sub-{PARTICIPANT}_" in p.name]
    stray = [p for p in ours if p not in listed]
    if stray:
        raise AssertionError(f"{stray[0]}: written but not an annexed file of ds001499 ({len(stray)} such)")
    return len(ours)


def _write_feature_spaces(
    features_dir: Path, latent: np.ndarray, names: list[str], n_features: int, rng: np.random.Generator
) -> None:
    """``drive`` (``latent @ M`` + noise, ``(n_images, n_features)``) and ``random`` (noise), rows as ``names``."""
    mixing = rng.standard_normal((latent.shape[1], n_features))
    drive = latent @ mixing + 0.3 * rng.standard_normal((len(names), n_features))
    _write_feature_space(features_dir / DRIVE_SPACE, drive, names, "other", f"drives both {DRIVEN_ROI} masks")
    null = rng.standard_normal((len(names), n_features))
    _write_feature_space(features_dir / NULL_SPACE, null, names, "other", "noise features (drive nothing)")


def build_real_tree(
    root: str | Path,
    archive: str | Path,
    *,
    sessions: Sequence[str] | None = None,
    copies: Sequence[str] = (),
    shape: tuple[int, int, int] = (12, 14, 10),
    latent_dim: int = 4,
    n_features: int = 16,
    noise_sd: float = 1.0,
    seed: int = 0,
) -> RealTree:
    """Write the real CSI1 text tree of ``archive`` with synthetic images under ``root/ds001499``.

    Parameters
    ----------
    archive : path
        A tar archive (``.tgz``, ``.tar.xz``) of ds001499's text files; its folder may hold
        ``ds001499-CSI1-annexed.txt``, against which every image path written is checked.
    sessions : list of str, optional
        Only these sessions (``['03', '04']``); default all (142 image runs, 8 localizer runs).
    copies : list of str
        Labels of extra participants made of CSI1's text tree (e.g. ``['CSI1copy']``).
    shape : tuple
        BOLD grid (2 mm voxels); the brain is its inscribed ellipsoid.
    noise_sd : float
        BOLD noise sd, in units of a driven voxel's image-driven amplitude sd.
    """
    root = Path(root)
    archive = Path(archive)
    bids_dir = root / "ds001499"
    unpack_text_tree(archive, bids_dir, sessions)
    for label in copies:
        _copy_participant(bids_dir, PARTICIPANT, label)
    rng = np.random.default_rng(seed)
    events = pd.concat([_read_events(f) for f in real_events_files(bids_dir)], ignore_index=True)
    stimuli_dir = root / "Scene_Stimuli" / "Presented_Stimuli"
    names = _write_stimuli(events, stimuli_dir, rng)
    image_row = {n: i for i, n in enumerate(names)}
    latent = rng.standard_normal((len(names), latent_dim))
    features_dir = bids_dir / "derivatives" / "features"
    _write_feature_spaces(features_dir, latent, names, n_features, rng)
    grid = _grid((int(shape[0]), int(shape[1]), int(shape[2])))
    roi_dir = bids_dir / "derivatives" / "spm"
    tree = RealTree(
        bids_dir=bids_dir,
        stimuli_dir=stimuli_dir,
        features_dir=features_dir,
        roi_dir=roi_dir,
        fmriprep_dir=bids_dir / "derivatives" / "fmriprep",
        participants=[PARTICIPANT, *copies],
        sessions=sorted(p.name[4:] for p in (bids_dir / f"sub-{PARTICIPANT}").glob("ses-*")),
        brain_mask=grid.brain,
        image_names=names,
    )
    written: list[Path] = []
    for participant in tree.participants:
        files, counts, truth = _participant_images(bids_dir, participant, grid, latent, image_row, noise_sd, rng)
        written += files
        tree.counts[participant] = counts
        tree.truth_masks[participant] = truth
        written += _write_rois(roi_dir, participant, grid, {} if participant == PARTICIPANT else _COPY_ROI_NAMES)
        if (bids_dir / f"sub-{participant}" / "ses-16").is_dir():
            written += _write_anatomy(bids_dir, participant, grid, rng)
    annexed = archive.parent / ANNEXED_LIST
    tree.annexed_checked = _check_annexed(written, bids_dir, annexed if annexed.is_file() else None)
    return tree
