"""Read participant outputs (r and q maps, brain masks, sidecars) for the group step.

The group level never refits: it reads what the participant level wrote,
``<out>/sub-X/func/sub-X_task-T_space-S_desc-L_stat-{r,q}_statmap.nii.gz``
with their JSON sidecars and ``sub-X_task-T_space-S_desc-brain_mask.nii.gz``.
Names are parsed with :func:`bids_taskenc.outputs.naming.parse_derivative_name`
and built with :func:`bids_taskenc.outputs.naming.derivative_path`.

Feature spaces that differ across participants: the group step uses the
*intersection* of the feature labels and records a warning; fewer than two
shared labels is an error (:class:`GroupInputError`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_taskenc.core.fdr import below_fdr_level, recorded_fdr_level
from bids_taskenc.outputs.naming import (
    bids_label,
    derivative_path,
    parse_derivative_name,
    sidecar_path,
    strip_prefix,
)

#: Spaces that are participant-specific: no voxelwise group maps there.
NATIVE_SPACES = frozenset({"T1w", "T2w", "native", "fsnative", "anat", "func", "boldref", "orig"})


class GroupInputError(ValueError):
    """The participant outputs cannot feed the group step (one line, names the file/folder)."""


@dataclass
class ParticipantMaps:
    """One participant's maps for one task and space, restricted to its brain mask.

    Attributes
    ----------
    participant : str
        Label without ``sub-`` (``'CSI1'``).
    task, space : str
        BIDS labels.
    labels : list[str]
        Feature labels, shape ``(n_features,)``, in the group's order.
    r, q : ndarray
        ``(n_features, n_voxels)`` float64: r and FDR q of each feature space at the
        voxels of the brain mask (C order of ``mask``). ``q`` is None when not read.
    fdr_level : ndarray
        ``(n_features,)`` FDR level of each map: from its sidecar (NaN when it has
        none) until :func:`resolve_fdr_level` sets the group's one level.
    mask : ndarray
        ``(X, Y, Z)`` bool brain mask.
    affine : ndarray
        ``(4, 4)`` voxel-to-world affine of the maps.
    sidecars : dict[str, dict]
        Sidecar of each r map, by label.
    files : list[Path]
        Every file read.
    sidecar_root : Path
        The derivatives folder the maps were read from.
    """

    participant: str
    task: str
    space: str
    labels: list[str]
    r: np.ndarray
    q: np.ndarray | None
    fdr_level: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    sidecars: dict[str, dict] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    sidecar_root: Path = Path(".")

    @property
    def n_voxels(self) -> int:
        return int(self.r.shape[1])

    def thresholded(self) -> np.ndarray:
        """``(n_features, n_voxels)`` r with 0 where ``q >= fdr_level``."""
        if self.q is None:
            raise GroupInputError(f"sub-{self.participant}: q maps were not read; cannot threshold")
        if not np.all(np.isfinite(self.fdr_level)):
            raise GroupInputError(f"sub-{self.participant}: no FDR level set (see resolve_fdr_level)")
        keep = below_fdr_level(self.q, self.fdr_level[:, None])
        return np.where(keep, self.r, 0.0)

    def roi_indices(self, roi_mask: np.ndarray) -> np.ndarray:
        """Column indices (into ``r``) of the voxels inside ``roi_mask`` ``(X, Y, Z)``."""
        inside = roi_mask[self.mask]
        return np.flatnonzero(inside)


@dataclass
class Catalogue:
    """What the participant outputs hold: ``entries[(participant, task, space)] = {label: r_path}``."""

    output_dir: Path
    entries: dict[tuple[str, str, str], dict[str, Path]]

    @property
    def participants(self) -> list[str]:
        return sorted({p for p, _, _ in self.entries})

    @property
    def tasks(self) -> list[str]:
        return sorted({t for _, t, _ in self.entries})


def scan(output_dir: str | Path) -> Catalogue:
    """Find every volumetric participant r map under ``output_dir``.

    Raises
    ------
    GroupInputError
        If the folder does not exist or holds no ``sub-*/func/*_stat-r_statmap.nii.gz``.
    """
    root = Path(output_dir)
    if not root.is_dir():
        raise GroupInputError(f"output folder {root} does not exist")
    entries: dict[tuple[str, str, str], dict[str, Path]] = {}
    for path in sorted(root.glob("sub-*/func/*_statmap.nii.gz")):
        try:
            ent = parse_derivative_name(path.name)
        except ValueError:
            continue
        if ent.get("stat") != "r" or "hemi" in ent or "roi" in ent or "ses" in ent:
            continue
        if not all(k in ent for k in ("sub", "task", "space", "desc")):
            continue
        key = (ent["sub"], ent["task"], ent["space"])
        entries.setdefault(key, {})[ent["desc"]] = path
    if not entries:
        raise GroupInputError(
            f"no participant outputs (sub-*/func/*_stat-r_statmap.nii.gz) in {root}"
        )
    return Catalogue(root, entries)


def select(
    catalogue: Catalogue,
    *,
    task: str | None = None,
    participants: Iterable[str] | None = None,
    space: str | None = None,
) -> tuple[str, dict[str, str], list[str], list[str]]:
    """Choose the task, each participant's space and the shared feature labels.

    Returns
    -------
    task : str
    spaces : dict[str, str]
        Space used for each selected participant.
    labels : list[str]
        Feature labels present for every selected participant, sorted.
    messages : list[str]
        Warnings (e.g. feature spaces dropped because not every participant has them).
    """
    root = catalogue.output_dir
    messages: list[str] = []
    tasks = catalogue.tasks
    if task is None:
        if len(tasks) > 1:
            raise GroupInputError(
                f"several tasks in {root} ({', '.join(tasks)}); choose one with --task-label (task= in Python)"
            )
        task = tasks[0]
    else:
        task = strip_prefix(str(task), "task")
        if task not in tasks:
            raise GroupInputError(f"task {task!r} not found in {root} (found: {', '.join(tasks)})")

    available = sorted({p for p, t, _ in catalogue.entries if t == task})
    if participants is None:
        chosen = available
    else:
        chosen = [strip_prefix(str(p), "sub") for p in participants]
        missing = [p for p in chosen if p not in available]
        if missing:
            raise GroupInputError(
                f"no outputs for task {task} of participant(s) {', '.join('sub-' + m for m in missing)} in {root}"
            )
        chosen = sorted(dict.fromkeys(chosen))
    if not chosen:
        raise GroupInputError(f"no participants selected in {root}")

    spaces_of = {p: sorted({s for q, t, s in catalogue.entries if q == p and t == task}) for p in chosen}
    if space is not None:
        space = strip_prefix(str(space), "space")
        lacking = [p for p in chosen if space not in spaces_of[p]]
        if lacking:
            raise GroupInputError(
                f"space {space!r} missing for {', '.join('sub-' + p for p in lacking)} in {root}"
            )
        spaces = {p: space for p in chosen}
    else:
        common = set.intersection(*(set(s) for s in spaces_of.values()))
        spaces = {}
        for p in chosen:
            if len(spaces_of[p]) == 1:
                spaces[p] = spaces_of[p][0]
            elif len(common) == 1:
                spaces[p] = next(iter(common))
            else:
                raise GroupInputError(
                    f"sub-{p} has several spaces ({', '.join(spaces_of[p])}) in {root / ('sub-' + p)}; choose one with --space (space= in Python)"
                )

    label_sets = {p: set(catalogue.entries[(p, task, spaces[p])]) for p in chosen}
    shared = set.intersection(*label_sets.values())
    union = set.union(*label_sets.values())
    if shared != union:
        for p in chosen:
            extra = sorted(label_sets[p] - shared)
            if extra:
                messages.append(
                    f"feature spaces not shared by every participant dropped for sub-{p}: {', '.join(extra)}"
                )
    if len(shared) < 2:
        raise GroupInputError(
            f"fewer than 2 feature spaces shared by all participants of task {task} in {root} "
            f"(shared: {', '.join(sorted(shared)) or 'none'})"
        )
    return task, spaces, sorted(shared), messages


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise GroupInputError(f"sidecar {path} is missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GroupInputError(f"sidecar {path} is not valid JSON: {exc}") from exc


def _read_volume(path: Path, shape=None, affine=None) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise GroupInputError(f"file {path} is missing")
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises several types for broken files
        raise GroupInputError(f"cannot read {path}: {exc}") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise GroupInputError(f"{path} is {data.ndim}-D; a 3-D map is expected")
    if shape is not None and data.shape != tuple(shape):
        raise GroupInputError(f"{path} has shape {data.shape}, the brain mask has {tuple(shape)}")
    if affine is not None and not np.allclose(img.affine, affine, atol=1e-4):
        raise GroupInputError(f"{path} has a different affine from its brain mask")
    return data, np.asarray(img.affine, dtype=float)


def load_participant(
    output_dir: str | Path,
    participant: str,
    task: str,
    space: str,
    labels: list[str],
    *,
    fdr_alpha: float | None = None,
    read_q: bool = True,
) -> ParticipantMaps:
    """Read one participant's r (and q) maps of ``labels`` inside its brain mask.

    Raises
    ------
    GroupInputError
        Naming the missing/inconsistent file (mask, map or sidecar).
    """
    root = Path(output_dir)
    mask_path = derivative_path(
        root, sub=participant, task=task, space=space, desc="brain", suffix="mask", extension=".nii.gz"
    )
    mask_data, affine = _read_volume(mask_path)
    mask = mask_data > 0
    if not mask.any():
        raise GroupInputError(f"brain mask {mask_path} is empty")
    files = [mask_path]
    n_vox = int(mask.sum())
    r = np.empty((len(labels), n_vox))
    q = np.empty((len(labels), n_vox)) if read_q else None
    levels = np.empty(len(labels))
    sidecars: dict[str, dict] = {}
    for i, label in enumerate(labels):
        ents = dict(sub=participant, task=task, space=space, desc=label, suffix="statmap", extension=".nii.gz")
        r_path = derivative_path(root, stat="r", **ents)
        data, _ = _read_volume(r_path, mask.shape, affine)
        r[i] = np.nan_to_num(data[mask].astype(float), nan=0.0)
        side = _read_json(sidecar_path(r_path))
        sidecars[label] = side
        files += [r_path, sidecar_path(r_path)]
        levels[i] = float(fdr_alpha) if fdr_alpha is not None else recorded_fdr_level(side, np.nan)
        if read_q:
            q_path = derivative_path(root, stat="q", **ents)
            qdata, _ = _read_volume(q_path, mask.shape, affine)
            q[i] = np.nan_to_num(qdata[mask].astype(float), nan=1.0)
            files.append(q_path)
    return ParticipantMaps(
        participant=participant,
        task=task,
        space=space,
        labels=list(labels),
        r=r,
        q=q,
        fdr_level=levels,
        mask=mask,
        affine=affine,
        sidecars=sidecars,
        files=files,
        sidecar_root=root,
    )


def resolve_fdr_level(fdr_alpha: float | None, maps: list[ParticipantMaps]) -> float:
    """The one FDR level of the group step, and set it on every participant's maps.

    The rule: ``fdr_alpha`` (``--fdr-alpha``) when given; otherwise the
    ``FDRLevel`` recorded in the sidecars of the participants' r maps, which
    must all be the same number. Every threshold, count and map of the group
    level and its report uses this level; it is written as a number into the
    group sidecars (``Settings.FDRLevel``).

    Raises
    ------
    GroupInputError
        A sidecar without a numeric ``FDRLevel``, or two sidecars with different
        levels (naming the files), when ``fdr_alpha`` is not given; a level
        outside ``(0, 1)``.
    """
    if fdr_alpha is not None:
        level = float(fdr_alpha)
        source = "--fdr-alpha"
    else:
        found: dict[float, Path] = {}
        for m in maps:
            for label, value in zip(m.labels, m.fdr_level):
                side = sidecar_path(derivative_path(
                    m.sidecar_root, sub=m.participant, task=m.task, space=m.space, desc=label, stat="r",
                    suffix="statmap", extension=".nii.gz"))
                if not np.isfinite(value):
                    raise GroupInputError(
                        f"sidecar {side} has no FDRLevel (a number); give --fdr-alpha (fdr_alpha= in Python)")
                found.setdefault(float(value), side)
        if len(found) > 1:
            (a, pa), (b, pb) = sorted(found.items())[:2]
            raise GroupInputError(
                f"participant maps were made with different FDR levels ({pa} has {a:g}, {pb} has {b:g}); "
                "choose one with --fdr-alpha (fdr_alpha= in Python)")
        level = next(iter(found))
        source = "sidecars"
    if not 0 < level < 1:
        raise GroupInputError(f"FDR level {level:g} (from {source}) must be between 0 and 1")
    for m in maps:
        m.fdr_level = np.full(len(m.labels), level)
    return level


def feature_info(maps: list[ParticipantMaps]) -> dict[str, dict[str, str]]:
    """Per label: ``{'group': ..., 'feature_space': ...}`` from the first participant's sidecars."""
    info = {}
    for label in maps[0].labels:
        side = maps[0].sidecars.get(label, {})
        info[label] = {
            "group": str(side.get("FeatureGroup", "other")),
            "feature_space": str(side.get("FeatureSpace", label)),
        }
    return info


def load_roi_masks(
    roi_masks: Mapping[str, str | Path | Mapping[str, str | Path | list]] | None,
    maps: list[ParticipantMaps],
) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """Read ROI masks for each participant.

    ``roi_masks`` maps an ROI name to either one NIfTI path (used for every
    participant; may contain ``{participant}`` / ``{sub}`` placeholders) or a
    mapping participant -> path, or participant -> list of paths whose union is
    the ROI (e.g. the two hemispheres). A mask on another grid than the
    participant's maps is resampled to it (nearest neighbour), as the
    participant level does.

    Returns
    -------
    rois : dict[str, dict[str, ndarray]]
        ``rois[roi_label][participant]`` = ``(X, Y, Z)`` bool mask.
    messages : list[str]
    """
    if not roi_masks:
        return {}, []
    from nilearn.image import resample_to_img

    rois: dict[str, dict[str, np.ndarray]] = {}
    messages: list[str] = []
    for name, spec in roi_masks.items():
        label = bids_label(str(name))
        rois[label] = {}
        for pm in maps:
            p = pm.participant
            if isinstance(spec, Mapping):
                raw = spec.get(p, spec.get(f"sub-{p}"))
                if raw is None:
                    messages.append(f"ROI {label}: no mask given for sub-{p}; skipped")
                    continue
            else:
                raw = spec
            union = np.zeros(pm.mask.shape, dtype=bool)
            for one in raw if isinstance(raw, (list, tuple)) else [raw]:
                path = Path(str(one).format(participant=p, sub=p))
                if not path.exists():
                    raise GroupInputError(f"ROI mask {path} ({label}, sub-{p}) does not exist")
                try:
                    img = nib.load(str(path))
                except Exception as exc:
                    raise GroupInputError(f"cannot read ROI mask {path}: {exc}") from exc
                if img.ndim == 4 and img.shape[3] == 1:
                    img = nib.Nifti1Image(np.asanyarray(img.dataobj)[..., 0], img.affine)
                if img.ndim != 3:
                    raise GroupInputError(f"ROI mask {path} must be 3-D, got shape {img.shape}")
                if img.shape != pm.mask.shape or not np.allclose(img.affine, pm.affine, atol=1e-3):
                    target = nib.Nifti1Image(pm.mask.astype(np.uint8), pm.affine)
                    img = resample_to_img(img, target, interpolation="nearest", force_resample=True,
                                          copy_header=True)
                union |= np.asanyarray(img.dataobj) > 0
            rois[label][p] = union
    return rois, messages
