"""Read what the participant and group levels wrote (the reports never refit).

Files are found by globbing a participant's ``func/`` folder and parsing the
names back with :func:`bids_taskenc.outputs.naming.parse_derivative_name`;
known files are located with :func:`~bids_taskenc.outputs.naming.derivative_path`.
Everything optional (ROI table, contrasts, GIFTI maps, noise ceiling) is
``None`` or empty when the run did not write it, and the report says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_taskenc.core.fdr import DEFAULT_FDR_LEVEL, below_fdr_level, recorded_fdr_level
from bids_taskenc.outputs import reading
from bids_taskenc.outputs.derivatives import read_dataset_links
from bids_taskenc.outputs.naming import (
    PARTITIONING_ROI_DESC,
    derivative_path,
    parse_derivative_name,
    sidecar_path,
    strip_prefix,
)
from bids_taskenc.outputs.reading import list_participants, read_json, read_table  # noqa: F401 (the pages use them)

from ..core.images import load_surface

# the group level's readers, for the callers that import them from here
from .groupinputs import GroupMaps, MaskedMaps, group_file, load_group_maps, matrix_from_table  # noqa: F401

#: Display order of the feature-space groups (the paper's Fig. 1).
GROUP_ORDER = ("2D", "3D", "semantic", "other")

#: The surface space whose flat meshes nilearn bundles.
FLAT_SPACE = "fsaverage5"


def group_rank(group: str | None) -> int:
    """Position of a feature-space group in :data:`GROUP_ORDER` (unknown groups last)."""
    return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)


class _FDRThresholded:
    """Maps read with their sidecar: the FDR level it records and the voxels below it."""

    sidecar: dict
    q: np.ndarray | None

    def _values(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def fdr_level(self) -> float:
        return recorded_fdr_level(self.sidecar, DEFAULT_FDR_LEVEL)

    @property
    def significant(self) -> np.ndarray:
        """Boolean mask (over brain voxels) of q below the FDR level."""
        if self.q is None:
            return np.zeros(self._values().shape, dtype=bool)
        return below_fdr_level(self.q, self.fdr_level)


@dataclass
class FeatureMaps(_FDRThresholded):
    """One feature space's maps of one participant, restricted to the brain mask.

    ``r``, ``q`` and ``alpha`` are vectors of shape ``(n_voxels,)`` over the
    brain-mask voxels (C order of the mask); ``q``/``alpha`` are None when absent.
    """

    label: str
    sidecar: dict
    r: np.ndarray
    q: np.ndarray | None
    alpha: np.ndarray | None
    r_path: Path

    @property
    def name(self) -> str:
        return self.sidecar.get("FeatureSpace", self.label)

    @property
    def group(self) -> str:
        return self.sidecar.get("FeatureGroup", "other")

    def _values(self) -> np.ndarray:
        return self.r


@dataclass
class ContrastMaps(_FDRThresholded):
    """One contrast (e.g. ``group3DVSgroup2D``): r difference, p and q over the brain voxels.

    ``rdiff`` is mean r of the spaces A minus mean r of the spaces B, shape
    ``(n_voxels,)``; ``sidecar["Contrast"]`` holds ``Name``, ``A``, ``B``,
    ``Statistic`` and ``NBootstrap``.
    """

    label: str
    sidecar: dict
    rdiff: np.ndarray
    p: np.ndarray | None
    q: np.ndarray | None

    @property
    def info(self) -> dict:
        return self.sidecar.get("Contrast", {})

    def _values(self) -> np.ndarray:
        return self.rdiff


@dataclass
class PartitionMaps:
    """One variance partitioning (``desc-vp<A>VS<B>``): per-set unique R² and q, shared and joint R².

    ``info`` is the sidecar's ``VariancePartitioning`` entry (``Name``, ``Sets``
    with ``Label`` and ``FeatureSpaces``, ``JointModel``).
    """

    label: str
    info: dict
    fdr_level: float
    joint: np.ndarray
    shared: np.ndarray | None
    unique: dict[str, np.ndarray | None]
    unique_q: dict[str, np.ndarray | None]

    @property
    def set_labels(self) -> list[str]:
        return [s.get("Label") for s in self.info.get("Sets", [])]

    def significant(self, label: str) -> np.ndarray:
        q = self.unique_q.get(label)
        return np.zeros(self.joint.shape, bool) if q is None else below_fdr_level(q, self.fdr_level)


@dataclass
class ParticipantOutputs(MaskedMaps):
    """Everything the participant report needs, read from the derivatives."""

    output_dir: Path
    participant: str
    task: str
    space: str | None
    mask_img: nib.Nifti1Image
    mask: np.ndarray
    features: list[FeatureMaps] = field(default_factory=list)
    contrasts: list[ContrastMaps] = field(default_factory=list)
    partitionings: list[PartitionMaps] = field(default_factory=list)
    partition_table: pd.DataFrame | None = None
    noise_ceiling: np.ndarray | None = None
    noise_ceiling_path: Path | None = None
    ncsnr: np.ndarray | None = None
    noise_sidecar: dict = field(default_factory=dict)
    splithalf: np.ndarray | None = None
    roi_table: pd.DataFrame | None = None
    split: pd.DataFrame | None = None

    @property
    def first_sidecar(self) -> dict:
        return self.features[0].sidecar if self.features else {}

    @property
    def command_lines(self) -> str:
        """The distinct command lines that made the maps, one a line: a rerun that added spaces has several."""
        lines = dict.fromkeys(str(f.sidecar.get("CommandLine", "n/a")) for f in self.features)
        return "\n".join(lines) or "n/a"

    def voxel_mm(self, index: np.ndarray) -> np.ndarray:
        """World (mm) coordinates of brain voxels given by their index into the mask vector; ``(k, 3)``."""
        ijk = np.argwhere(self.mask)[np.asarray(index, dtype=int)]
        return nib.affines.apply_affine(self.mask_img.affine, ijk)

    def surface_map(self, desc: str, stat: str, space: str = FLAT_SPACE) -> dict[str, np.ndarray] | None:
        """Both hemispheres of a GIFTI map (``{'L': (n_vertices,), 'R': ...}``), or None if either is missing."""
        out = {}
        for hemi in ("L", "R"):
            path = derivative_path(
                self.output_dir,
                sub=self.participant,
                task=self.task,
                hemi=hemi,
                space=space,
                desc=desc,
                stat=stat,
                suffix="statmap",
                extension=".func.gii",
            )
            if not path.exists():
                return None
            out[hemi] = np.asarray(load_surface(path).darrays[0].data, dtype=np.float64)
        return out

    def sessions(self) -> list[str]:
        """Session labels of the BOLD runs the maps came from (parsed from the sidecar's ``Sources``)."""
        found = set()
        for src in self.first_sidecar.get("Sources", []):
            match = re.search(r"_ses-([A-Za-z0-9]+)_", Path(src).name)
            if match:
                found.add(match.group(1))
        return sorted(found)


def _linked_datasets(data: ParticipantOutputs) -> list[Path]:
    """Dataset folders the maps came from: those their ``SpatialReference`` and ``Sources`` name first.

    ``bids:<name>:<path>`` URIs are resolved through the output's
    ``DatasetLinks``; a plain path (older outputs) gives the folder above its
    ``sub-<label>`` folder. The other linked datasets follow, the raw one last.
    """
    links = read_dataset_links(data.output_dir)
    side = data.first_sidecar
    refs = [side.get("SpatialReference")] + list(side.get("Sources") or [])
    folders: list[Path] = []
    for ref in refs:
        if not isinstance(ref, str):
            continue
        if ref.startswith("bids:"):
            name = ref.split(":", 2)[1]
            if name in links:
                folders.append(links[name])
            continue
        parts = Path(ref).parts
        if f"sub-{data.participant}" in parts:
            folders.append(Path(*parts[: parts.index(f"sub-{data.participant}")]))
    folders += [f for n, f in links.items() if n != "raw"] + [f for n, f in links.items() if n == "raw"]
    return list(dict.fromkeys(f for f in folders if f.is_dir()))


def _is_anatomy(name: str, participant: str, space: str | None) -> bool:
    """fMRIPrep's preprocessed T1w of ``participant`` in ``space``.

    Both namings: modern (``desc-preproc_T1w``) and 1.x (``T1w_preproc``).
    """
    if not name.startswith(f"sub-{participant}_") or not name.endswith((".nii", ".nii.gz")):
        return False
    stem = name.split(".nii")[0]
    if space in (None, "T1w"):  # the participant's own anatomical space: no space- entity, or space-T1w
        own = "_space-" not in stem or "_space-T1w_" in stem
        return own and stem.endswith(("_desc-preproc_T1w", "_T1w_preproc"))
    return (f"_space-{space}_" in stem and stem.endswith("_desc-preproc_T1w")) or stem.endswith(
        f"_T1w_space-{space}_preproc"
    )


def find_anatomy(data: ParticipantOutputs) -> tuple[Path | None, str]:
    """The participant's preprocessed T1w in the maps' space, from the fMRIPrep folder the maps came from.

    Returns
    -------
    (path or None, sentence)
        Where it was found, or where it was looked for.
    """
    folders = _linked_datasets(data)
    for folder in folders:
        sub_dir = folder / f"sub-{data.participant}"
        found = (
            sorted(p for p in sub_dir.rglob("*T1w*") if _is_anatomy(p.name, data.participant, data.space))
            if sub_dir.is_dir()
            else []
        )
        if found:
            return found[
                0
            ], f"sub-{data.participant}'s preprocessed T1w from {found[0].relative_to(folder)} in {folder}"
    where = ", ".join(str(f) for f in folders) or "no linked dataset (no DatasetLinks or Sources in the outputs)"
    wanted = (
        "desc-preproc_T1w (or fMRIPrep 1.x T1w_preproc)"
        if data.space in (None, "T1w")
        else f"space-{data.space}_desc-preproc_T1w (or fMRIPrep 1.x T1w_space-{data.space}_preproc)"
    )
    return None, f"no {wanted} of sub-{data.participant} in {where}"


def find_roi_masks_of(data: ParticipantOutputs) -> tuple[dict[str, np.ndarray] | None, str]:
    """The ROI masks the participant level used, as boolean vectors over the brain voxels (hemispheres pooled).

    The ROI table's sidecar records the folder (``ROIDirectory``); the masks are
    read from there with the participant level's own reader
    (:mod:`bids_taskenc.bids.rois`), so both see the same files.

    Returns
    -------
    ({roi: (n_voxels,) bool} or None, sentence saying where they came from or why there are none)
    """
    table = derivative_path(
        data.output_dir, sub=data.participant, task=data.task, desc="roi", suffix="scores", extension=".tsv"
    )
    if not table.exists():
        return None, "no ROI outlines: the run wrote no ROI table (it had no ROI masks)"
    roi_dir = read_json(sidecar_path(table)).get("ROIDirectory")
    if not roi_dir or roi_dir == "None":
        return None, f"no ROI outlines: {sidecar_path(table).name} records no ROIDirectory"
    if not Path(roi_dir).is_dir():
        return None, f"no ROI outlines: the ROI folder the run used ({roi_dir}) is not here"
    from bids_taskenc.bids.rois import find_roi_masks, load_roi_vectors

    vectors = load_roi_vectors(find_roi_masks(roi_dir, data.participant), data.mask_img)
    pooled = {k: v for k, v in vectors.items() if not k.startswith(("LH-", "RH-")) and v.any()}
    if not pooled:
        return None, f"no ROI outlines: no ROI mask of sub-{data.participant} in {roi_dir} overlaps the brain mask"
    return pooled, f"ROI outlines from the masks in {roi_dir} (the ROIDirectory of the ROI table)"


def _statmaps(output_dir: Path, participant: str, extension: str = ".nii.gz") -> list[tuple[dict, Path]]:
    return reading.participant_files(output_dir, participant, f"*{extension}")


def find_tasks(output_dir: str | Path, participant: str | None = None) -> list[str]:
    """Task labels present in the participant outputs (or in ``group/``)."""
    output_dir = Path(output_dir)
    tasks: set[str] = set()
    if participant is not None:
        tasks = {e["task"] for e, _ in _statmaps(output_dir, participant) if "task" in e}
    else:
        for path in (output_dir / "group").glob("*.json"):
            try:
                ents = parse_derivative_name(path.name)
            except ValueError:
                continue
            if "task" in ents:
                tasks.add(ents["task"])
    return sorted(tasks)


def load_participant(output_dir: str | Path, participant: str, task: str | None = None) -> ParticipantOutputs:
    """Read one participant's statistical maps, brain mask, noise ceiling, contrasts and tables.

    Raises
    ------
    FileNotFoundError
        When the participant has no r maps (for ``task`` when given).
    """
    output_dir = Path(output_dir)
    participant = strip_prefix(participant, "sub")
    maps = _statmaps(output_dir, participant)
    if task is None:
        tasks = sorted({e["task"] for e, _ in maps if e.get("suffix") == "statmap" and "task" in e})
        if not tasks:
            raise FileNotFoundError(f"no statistical maps for sub-{participant} under {output_dir}")
        task = tasks[0]
    r_maps = [
        (e, p)
        for e, p in maps
        if e.get("suffix") == "statmap"
        and e.get("stat") == "r"
        and e.get("task") == task
        and "FeatureSpace" in read_json(sidecar_path(p))
    ]
    if not r_maps:
        raise FileNotFoundError(f"no r maps for sub-{participant} task-{task} under {output_dir}")
    space = r_maps[0][0].get("space")
    mask, mask_img, _ = reading.read_brain_mask(output_dir, participant, task, space)
    out = ParticipantOutputs(output_dir, participant, task, space, mask_img, mask)
    out.features = sorted(
        (_feature_maps(out, ents["desc"], path) for ents, path in r_maps), key=lambda f: (group_rank(f.group), f.label)
    )
    here = [(e, p) for e, p in maps if e.get("task") == task and e.get("space") == space]
    out.contrasts = [_contrast_maps(out, e["desc"], p) for e, p in here if e.get("stat") == "rdiff"]
    out.partitionings = [
        vp
        for e, p in here
        if e.get("stat") == "jointrsquared"
        for vp in [_partition_maps(out, e["desc"], p)]
        if vp is not None
    ]
    _read_noise(out)
    _read_tables(out)
    return out


def _statmap(out: ParticipantOutputs, desc: str, stat: str) -> Path:
    return reading.statmap_path(out.output_dir, out.participant, out.task, out.space, desc, stat)


def _maybe(out: ParticipantOutputs, desc: str, stat: str) -> np.ndarray | None:
    return reading.read_masked_if_present(_statmap(out, desc, stat), out.mask)


def _feature_maps(out: ParticipantOutputs, label: str, r_path: Path) -> FeatureMaps:
    return FeatureMaps(
        label=label,
        sidecar=read_json(sidecar_path(r_path)),
        r=reading.read_masked(r_path, out.mask),
        q=_maybe(out, label, "q"),
        alpha=_maybe(out, label, "alpha"),
        r_path=r_path,
    )


def _contrast_maps(out: ParticipantOutputs, label: str, path: Path) -> ContrastMaps:
    return ContrastMaps(
        label=label,
        sidecar=read_json(sidecar_path(path)),
        rdiff=reading.read_masked(path, out.mask),
        p=_maybe(out, label, "p"),
        q=_maybe(out, label, "q"),
    )


def _partition_maps(out: ParticipantOutputs, desc: str, joint_path: Path) -> PartitionMaps | None:
    """A variance partitioning's maps, or None when the joint map's sidecar does not describe one."""
    side = read_json(sidecar_path(joint_path))
    info = side.get("VariancePartitioning")
    if not info:
        return None
    labels = [st.get("Label") for st in info.get("Sets", [])]
    return PartitionMaps(
        label=desc,
        info=info,
        fdr_level=recorded_fdr_level(side, DEFAULT_FDR_LEVEL),
        joint=reading.read_masked(joint_path, out.mask),
        shared=_maybe(out, desc, "sharedrsquared"),
        unique={lab: _maybe(out, desc, f"uniquersquared{lab}") for lab in labels},
        unique_q={lab: _maybe(out, desc, f"uniqueq{lab}") for lab in labels},
    )


def _read_noise(out: ParticipantOutputs) -> None:
    nc_path = _statmap(out, "noise", "noiseceiling")
    if nc_path.exists():
        out.noise_ceiling, out.noise_ceiling_path = reading.read_masked(nc_path, out.mask), nc_path
        out.noise_sidecar = read_json(sidecar_path(nc_path))
    out.ncsnr = _maybe(out, "noise", "ncsnr")
    out.splithalf = _maybe(out, "noise", "splithalf")


def _read_tables(out: ParticipantOutputs) -> None:
    def table(desc: str, suffix: str) -> pd.DataFrame | None:
        return read_table(
            derivative_path(
                out.output_dir, sub=out.participant, task=out.task, desc=desc, suffix=suffix, extension=".tsv"
            )
        )

    out.roi_table = table("roi", "scores")
    out.partition_table = table(PARTITIONING_ROI_DESC, "scores")
    out.split = table("split", "stimuli")
