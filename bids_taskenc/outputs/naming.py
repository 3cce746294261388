"""The one place where derivative file names are built (and parsed back).

Every output of bids_taskenc gets its path from :func:`derivative_path`; no
other module pastes entity strings together. Entities follow the BIDS order
(``sub ses task run hemi space desc stat``), ``stat-``/``_statmap`` follow the
BEP041 draft that fMRIPrep-style tools already use.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.labels import NOT_IN_LABEL
from ..core.labels import bids_label as bids_label  # the one label rule; re-exported for naming's callers

#: BIDS entity order used for every name we write.
ENTITY_ORDER = ("sub", "ses", "task", "run", "hemi", "space", "res", "roi", "desc", "stat")


#: ``desc-`` of the per-participant variance-partitioning ROI table (``..._desc-partitioningroi_scores.tsv``).
PARTITIONING_ROI_DESC = "partitioningroi"
_ENTITY_RE = re.compile(r"^([a-z]+)-([A-Za-z0-9]+)$")


def strip_prefix(label: str, prefix: str) -> str:
    """``'sub-CSI1'`` or ``'CSI1'`` -> ``'CSI1'`` for ``prefix='sub'``."""
    return label[len(prefix) + 1 :] if label.startswith(prefix + "-") else label


def derivative_name(*, suffix: str, extension: str, **entities: str | int | None) -> str:
    """File name (no folder) from BIDS entities, in :data:`ENTITY_ORDER`.

    Parameters
    ----------
    suffix : str
        ``'statmap'``, ``'scores'``, ``'matrix'``, ``'dendrogram'``, ...
    extension : str
        With its leading dot: ``'.nii.gz'``, ``'.func.gii'``, ``'.tsv'``, ``'.json'``.
    **entities
        Keys from :data:`ENTITY_ORDER`; ``None`` values are left out. Values
        must already be BIDS-safe labels (see :func:`bids_label`).
    """
    unknown = set(entities) - set(ENTITY_ORDER)
    if unknown:
        raise ValueError(f"unknown BIDS entities {sorted(unknown)}")
    parts = []
    for key in ENTITY_ORDER:
        value = entities.get(key)
        if value is None:
            continue
        value = str(value)
        if not value or NOT_IN_LABEL.search(value):
            raise ValueError(f"entity {key}-{value!r} is not a BIDS-safe label")
        parts.append(f"{key}-{value}")
    if not extension.startswith("."):
        raise ValueError(f"extension {extension!r} must start with '.'")
    return "_".join(parts + [suffix]) + extension


def derivative_path(
    root: str | Path,
    *,
    suffix: str,
    extension: str,
    datatype: str | None = "func",
    **entities: str | int | None,
) -> Path:
    """Full path of one derivative under the output root.

    Participant files go to ``root/sub-X[/ses-Y]/<datatype>/``; files without
    a ``sub`` entity are group-level and go to ``root/group/``.

    Examples
    --------
    >>> derivative_path("out", sub="CSI1", task="5000scenes", space="T1w",
    ...                 desc="keypoints3d", stat="r", suffix="statmap",
    ...                 extension=".nii.gz").as_posix()
    'out/sub-CSI1/func/sub-CSI1_task-5000scenes_space-T1w_desc-keypoints3d_stat-r_statmap.nii.gz'
    >>> derivative_path("out", task="5000scenes", desc="similarity",
    ...                 suffix="matrix", extension=".tsv").as_posix()
    'out/group/task-5000scenes_desc-similarity_matrix.tsv'
    """
    name = derivative_name(suffix=suffix, extension=extension, **entities)
    root = Path(root)
    sub = entities.get("sub")
    if sub is None:
        return root / "group" / name
    folder = root / f"sub-{sub}"
    if datatype:
        folder = folder / datatype
    return folder / name


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of a derivative (``.nii.gz``/``.func.gii``/``.tsv`` -> ``.json``)."""
    path = Path(path)
    name = path.name
    for ext in (".nii.gz", ".func.gii", ".surf.gii", ".dscalar.nii"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".json")
    return path.with_suffix(".json")


def parse_derivative_name(name: str | Path) -> dict[str, str]:
    """Entities, ``suffix`` and ``extension`` of a name built by :func:`derivative_name`.

    >>> parse_derivative_name("sub-CSI1_task-x_desc-a_stat-r_statmap.nii.gz")["stat"]
    'r'
    """
    name = Path(name).name
    stem, dot, ext = name.partition(".")
    parts = stem.split("_")
    out: dict[str, str] = {"suffix": parts[-1], "extension": dot + ext}
    for part in parts[:-1]:
        match = _ENTITY_RE.match(part)
        if not match:
            raise ValueError(f"{name}: {part!r} is not a BIDS key-value entity")
        out[match.group(1)] = match.group(2)
    return out
