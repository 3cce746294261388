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

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_taskenc.core.fdr import below_fdr_level, recorded_fdr_level
from bids_taskenc.outputs import reading
from bids_taskenc.outputs.naming import sidecar_path, strip_prefix
from bids_taskenc.outputs.shared import differing_keys, recorded_shared_settings, shown

#: Spaces that are participant-specific: no voxelwise group maps there.
NATIVE_SPACES = frozenset({"T1w", "T2w", "native", "fsnative", "anat", "func", "boldref", "orig"})


class GroupInputError(ValueError):
    """The participant outputs cannot feed the group step (one line, names the file/folder)."""


@contextmanager
def _as_group_error() -> Iterator[None]:
    """A participant output that cannot be read is a :class:`GroupInputError` (same message)."""
    try:
        yield
    except reading.DerivativeReadError as exc:
        raise GroupInputError(str(exc)) from exc


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
        keep = below_fdr_level(self.q, self.fdr_level[:, None]) & (np.nan_to_num(self.r) > 0)  # predicted voxels
        return np.where(keep, self.r, 0.0)

    def mask_image(self) -> nib.Nifti1Image:
        """The brain mask as a uint8 NIfTI image: the grid ROI masks are brought to."""
        return nib.Nifti1Image(self.mask.astype(np.uint8), self.affine)


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
    for participant in reading.list_participants(root):
        for ent, path in reading.participant_files(root, participant, "*_statmap.nii.gz"):
            if ent.get("stat") != "r" or "hemi" in ent or "roi" in ent or "ses" in ent:
                continue
            if not all(k in ent for k in ("sub", "task", "space", "desc")):
                continue
            entries.setdefault((ent["sub"], ent["task"], ent["space"]), {})[ent["desc"]] = path
    if not entries:
        raise GroupInputError(f"no participant outputs (sub-*/func/*_stat-r_statmap.nii.gz) in {root}")
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
    task = _choose_task(catalogue, task)
    chosen = _choose_participants(catalogue, task, participants)
    spaces = _choose_spaces(catalogue, task, chosen, space)
    labels, messages = _shared_labels(catalogue, task, spaces)
    return task, spaces, labels, messages


def _choose_task(catalogue: Catalogue, task: str | None) -> str:
    root, tasks = catalogue.output_dir, catalogue.tasks
    if task is None:
        if len(tasks) > 1:
            raise GroupInputError(
                f"several tasks in {root} ({', '.join(tasks)}); choose one with --task-label (task= in Python)"
            )
        return tasks[0]
    task = strip_prefix(str(task), "task")
    if task not in tasks:
        raise GroupInputError(f"task {task!r} not found in {root} (found: {', '.join(tasks)})")
    return task


def _choose_participants(catalogue: Catalogue, task: str, participants: Iterable[str] | None) -> list[str]:
    root = catalogue.output_dir
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
    return chosen


def _choose_spaces(catalogue: Catalogue, task: str, chosen: list[str], space: str | None) -> dict[str, str]:
    root = catalogue.output_dir
    spaces_of = {p: sorted({s for q, t, s in catalogue.entries if q == p and t == task}) for p in chosen}
    if space is not None:
        space = strip_prefix(str(space), "space")
        lacking = [p for p in chosen if space not in spaces_of[p]]
        if lacking:
            raise GroupInputError(f"space {space!r} missing for {', '.join('sub-' + p for p in lacking)} in {root}")
        return {p: space for p in chosen}
    common = set.intersection(*(set(s) for s in spaces_of.values()))
    spaces = {}
    for p in chosen:
        if len(spaces_of[p]) == 1:
            spaces[p] = spaces_of[p][0]
        elif len(common) == 1:
            spaces[p] = next(iter(common))
        else:
            raise GroupInputError(
                f"sub-{p} has several spaces ({', '.join(spaces_of[p])}) in {root / ('sub-' + p)}; "
                "choose one with --space (space= in Python)"
            )
    return spaces


def _shared_labels(catalogue: Catalogue, task: str, spaces: dict[str, str]) -> tuple[list[str], list[str]]:
    messages: list[str] = []
    label_sets = {p: set(catalogue.entries[(p, task, spaces[p])]) for p in spaces}
    shared = set.intersection(*label_sets.values())
    union = set.union(*label_sets.values())
    if shared != union:
        for p in spaces:
            extra = sorted(label_sets[p] - shared)
            if extra:
                messages.append(
                    f"feature spaces not shared by every participant dropped for sub-{p}: {', '.join(extra)}"
                )
    if len(shared) < 2:
        raise GroupInputError(
            f"fewer than 2 feature spaces shared by all participants of task {task} in {catalogue.output_dir} "
            f"(shared: {', '.join(sorted(shared)) or 'none'})"
        )
    return sorted(shared), messages


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
    with _as_group_error():
        mask, mask_img, mask_path = reading.read_brain_mask(root, participant, task, space)
    affine = np.asarray(mask_img.affine, dtype=float)
    if not mask.any():
        raise GroupInputError(f"brain mask {mask_path} is empty")
    files = [mask_path]
    n_vox = int(mask.sum())
    r = np.empty((len(labels), n_vox))
    q = np.empty((len(labels), n_vox)) if read_q else None
    levels = np.empty(len(labels))
    sidecars: dict[str, dict] = {}
    for i, label in enumerate(labels):
        r_path = reading.statmap_path(root, participant, task, space, label, "r")
        with _as_group_error():
            r[i] = np.nan_to_num(reading.read_masked(r_path, mask, affine), nan=0.0)
            sidecars[label] = reading.read_sidecar(sidecar_path(r_path))
        files += [r_path, sidecar_path(r_path)]
        levels[i] = float(fdr_alpha) if fdr_alpha is not None else recorded_fdr_level(sidecars[label], np.nan)
        if q is not None:
            q_path = reading.statmap_path(root, participant, task, space, label, "q")
            with _as_group_error():
                q[i] = np.nan_to_num(reading.read_masked(q_path, mask, affine), nan=1.0)
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
                side = sidecar_path(reading.statmap_path(m.sidecar_root, m.participant, m.task, m.space, label, "r"))
                if not np.isfinite(value):
                    raise GroupInputError(
                        f"sidecar {side} has no FDRLevel (a number); give --fdr-alpha (fdr_alpha= in Python)"
                    )
                found.setdefault(float(value), side)
        if len(found) > 1:
            (a, pa), (b, pb) = sorted(found.items())[:2]
            raise GroupInputError(
                f"participant maps were made with different FDR levels ({pa} has {a:g}, {pb} has {b:g}); "
                "choose one with --fdr-alpha (fdr_alpha= in Python)"
            )
        level = next(iter(found))
        source = "sidecars"
    if not 0 < level < 1:
        raise GroupInputError(f"FDR level {level:g} (from {source}) must be between 0 and 1")
    for m in maps:
        m.fdr_level = np.full(len(m.labels), level)
    return level


#: Shared settings the group level has its own rule for: each participant's space (:func:`select`), and the FDR
#: level (:func:`resolve_fdr_level`: one level for all, given or recorded; q maps do not depend on it).
_GROUP_RULE = ("--space", "--fdr-alpha")


def check_shared_settings(maps: list[ParticipantMaps]) -> None:
    """Refuse to combine maps made with different shared settings (the responses, split, seed, mask, FDR level).

    Every r map of every participant is compared with the first one read; the message names both sidecars and
    each differing setting.

    Raises
    ------
    GroupInputError
    """
    first = None
    for m in maps:
        for label in m.labels:
            side = sidecar_path(reading.statmap_path(m.sidecar_root, m.participant, m.task, m.space, label, "r"))
            record = recorded_shared_settings(m.sidecars.get(label, {}))
            record = {k: v for k, v in record.items() if k not in _GROUP_RULE}
            if first is None:
                first = (side, record)
                continue
            keys = differing_keys(first[1], record)
            if keys:
                diffs = "; ".join(
                    f"{k} {shown(first[1][k])} in {first[0]} but {shown(record[k])} in {side}" for k in keys
                )
                raise GroupInputError(
                    f"participant maps were made with different shared settings: {diffs}; rerun the participants "
                    "with the same settings (the group level compares like with like)"
                )


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


@dataclass
class GroupInputs:
    """Everything the group computation reads: the selected participants' maps and the one FDR level.

    Attributes
    ----------
    output_dir : Path
        The derivatives folder read.
    task : str
    spaces : dict[str, str]
        Space of each participant (label without ``sub-``).
    labels : list[str]
        Feature labels shared by every participant, sorted.
    maps : list[ParticipantMaps]
        One per participant, sorted by label.
    info : dict[str, dict[str, str]]
        :func:`feature_info`.
    fdr_level : float
        :func:`resolve_fdr_level`.
    fdr_level_given : bool
        True when the level came from ``fdr_alpha`` rather than the sidecars.
    thresholded : bool
        Whether q maps were read (the similarity of FDR-thresholded maps).
    messages : list[str]
        What the selection dropped.
    """

    output_dir: Path
    task: str
    spaces: dict[str, str]
    labels: list[str]
    maps: list[ParticipantMaps]
    info: dict[str, dict[str, str]]
    fdr_level: float
    fdr_level_given: bool
    thresholded: bool
    messages: list[str] = field(default_factory=list)

    @property
    def participants(self) -> list[str]:
        return [m.participant for m in self.maps]


def read_group_inputs(
    output_dir: str | Path,
    *,
    task: str | None = None,
    participants: Iterable[str] | None = None,
    space: str | None = None,
    fdr_alpha: float | None = None,
    thresholded: bool = True,
) -> GroupInputs:
    """Select and read the participant outputs the group level compares (:func:`select`, :func:`load_participant`).

    Raises
    ------
    GroupInputError
        See :func:`scan`, :func:`select`, :func:`load_participant`, :func:`resolve_fdr_level`.
    """
    root = Path(output_dir)
    task, spaces, labels, messages = select(scan(root), task=task, participants=participants, space=space)
    maps = [
        load_participant(root, p, task, spaces[p], labels, fdr_alpha=fdr_alpha, read_q=thresholded)
        for p in sorted(spaces)
    ]
    check_shared_settings(maps)
    info = feature_info(maps)
    level = resolve_fdr_level(fdr_alpha, maps)
    return GroupInputs(
        output_dir=root,
        task=task,
        spaces=spaces,
        labels=labels,
        maps=maps,
        info=info,
        fdr_level=level,
        fdr_level_given=fdr_alpha is not None,
        thresholded=bool(thresholded),
        messages=messages,
    )
