"""Read what the participant and group levels wrote (the reports never refit).

Files are found by globbing a participant's ``func/`` folder and parsing the
names back with :func:`bids_taskenc.outputs.naming.parse_derivative_name`;
known files are located with :func:`~bids_taskenc.outputs.naming.derivative_path`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_taskenc.outputs.naming import derivative_path, parse_derivative_name, sidecar_path, strip_prefix

#: Display order of the feature-space groups (the paper's Fig. 1).
GROUP_ORDER = ("2D", "3D", "semantic", "other")


def group_rank(group: str | None) -> int:
    """Position of a feature-space group in :data:`GROUP_ORDER` (unknown groups last)."""
    return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)


def read_json(path: Path) -> dict:
    """A JSON file as a dict; ``{}`` when it does not exist."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


@dataclass
class FeatureMaps:
    """One feature space's maps of one participant, restricted to the brain mask."""

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

    @property
    def fdr_level(self) -> float:
        return float(self.sidecar.get("FDRLevel", 0.05))

    @property
    def significant(self) -> np.ndarray:
        """Boolean mask (over brain voxels) of q below the FDR level."""
        if self.q is None:
            return np.zeros(self.r.shape, dtype=bool)
        return np.isfinite(self.q) & (self.q < self.fdr_level)


@dataclass
class ParticipantOutputs:
    """Everything the participant report needs, read from the derivatives."""

    participant: str
    task: str
    space: str
    mask_img: nib.Nifti1Image
    mask: np.ndarray
    features: list[FeatureMaps] = field(default_factory=list)
    noise_ceiling: np.ndarray | None = None
    noise_ceiling_path: Path | None = None

    @property
    def first_sidecar(self) -> dict:
        return self.features[0].sidecar if self.features else {}

    def volume(self, values: np.ndarray) -> nib.Nifti1Image:
        """Put a vector over brain voxels back into a 3-D image."""
        data = np.zeros(self.mask.shape, dtype=np.float32)
        data[self.mask] = values
        return nib.Nifti1Image(data, self.mask_img.affine)


def list_participants(output_dir: str | Path) -> list[str]:
    """Participant labels (without ``sub-``) that have an output folder."""
    return sorted(strip_prefix(p.name, "sub") for p in Path(output_dir).glob("sub-*") if p.is_dir())


def _statmaps(output_dir: Path, participant: str) -> list[tuple[dict, Path]]:
    folder = derivative_path(output_dir, sub=participant, suffix="x", extension=".x").parent
    found = []
    for path in sorted(folder.glob("*.nii.gz")):
        try:
            ents = parse_derivative_name(path.name)
        except ValueError:
            continue
        found.append((ents, path))
    return found


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


def _load(path: Path, mask: np.ndarray) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj, dtype=np.float64)[mask]


def load_participant(output_dir: str | Path, participant: str, task: str | None = None) -> ParticipantOutputs:
    """Read one participant's statistical maps, brain mask and noise ceiling.

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
        if e.get("suffix") == "statmap" and e.get("stat") == "r" and e.get("task") == task
        and "FeatureSpace" in read_json(sidecar_path(p))
    ]
    if not r_maps:
        raise FileNotFoundError(f"no r maps for sub-{participant} task-{task} under {output_dir}")
    space = r_maps[0][0].get("space")
    mask_path = derivative_path(
        output_dir, sub=participant, task=task, space=space, desc="brain", suffix="mask", extension=".nii.gz"
    )
    mask_img = nib.load(mask_path)
    mask = np.asarray(mask_img.dataobj) > 0
    out = ParticipantOutputs(participant, task, space, mask_img, mask)
    for ents, r_path in r_maps:
        label = ents["desc"]
        common = dict(sub=participant, task=task, space=space, desc=label, suffix="statmap", extension=".nii.gz")
        q_path = derivative_path(output_dir, stat="q", **common)
        a_path = derivative_path(output_dir, stat="alpha", **common)
        out.features.append(
            FeatureMaps(
                label=label,
                sidecar=read_json(sidecar_path(r_path)),
                r=_load(r_path, mask),
                q=_load(q_path, mask) if q_path.exists() else None,
                alpha=_load(a_path, mask) if a_path.exists() else None,
                r_path=r_path,
            )
        )
    out.features.sort(key=lambda f: (group_rank(f.group), f.label))
    for ents, path in maps:
        if ents.get("stat") == "noiseceiling" and ents.get("task") == task and ents.get("space") == space:
            out.noise_ceiling = _load(path, mask)
            out.noise_ceiling_path = path
            break
    return out


def read_table(path: Path) -> pd.DataFrame | None:
    """A BIDS TSV (``n/a`` as missing), or ``None`` when absent."""
    return pd.read_csv(path, sep="\t", na_values="n/a") if Path(path).exists() else None


def group_file(output_dir: str | Path, task: str, desc: str, suffix: str, extension: str) -> Path:
    """Path of one group-level derivative."""
    return derivative_path(output_dir, task=task, desc=desc, suffix=suffix, extension=extension)
