"""User-supplied feature spaces (``--features-dir``).

Layout, one subfolder per feature space::

    features_dir/
      <space>/features.npy   # (n_stimuli, n_features) float
      <space>/stimuli.tsv    # column 'stimulus': file names as the events name them, row order
      <space>/space.json     # optional: {"group": "3D", "description": "..."}

This is also the layout ``--save-features`` writes, so computed features can
be reused or shared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..core.atomic import atomic_path
from ..core.stimuli import stimulus_key
from ..core.textfiles import UnreadableFileError, json_type, read_json_object
from .base import GROUPS, FeatureChoiceError, FeatureError, FeatureInputMissing, LookupFeatureSpace
from .families import FamilyContext, FamilySpaces, FeatureFamily


def _tail_matches(row_key: str, name: str) -> bool:
    """One names the other with fewer folders: ``forest23.jpg`` and ``Scene/forest23.jpg``."""
    a, b = PurePosixPath(row_key).parts, PurePosixPath(name).parts
    n = min(len(a), len(b))
    return a[-n:] == b[-n:]


@dataclass
class UserFeatureSpace(LookupFeatureSpace):
    """Features read from ``features.npy`` + ``stimuli.tsv``."""

    folder: Path | None = None
    _matrix: np.ndarray | None = field(default=None, repr=False)
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def stimuli_table(self) -> str:
        """The ``stimuli.tsv`` its rows come from (for messages)."""
        return str(self.folder / "stimuli.tsv") if self.folder is not None else f"{self.name}'s stimuli.tsv"

    def _row(self, key: str, by_name: dict[str, list[str]], asked_by_name: dict[str, list[str]]) -> int:
        """The row of stimulus ``key``: the row written as the events write it, else the one row that names it
        with more or fewer folders, provided no other stimulus asked for could be meant by that row."""
        if key in self._index:
            return self._index[key]
        name = PurePosixPath(key).name
        rows = [k for k in by_name.get(name, []) if _tail_matches(k, key)]
        if not rows:
            raise FeatureError(
                f"{self.stimuli_table}: no row for stimulus {key!r} that the events name (feature space {self.name})"
            )
        rivals = [a for a in asked_by_name.get(name, []) if a != key and _tail_matches(rows[0], a)]
        if len(rows) > 1 or rivals:
            other = f"row {rows[1]!r}" if len(rows) > 1 else f"the stimulus {rivals[0]!r} the events also name"
            raise FeatureError(
                f"{self.stimuli_table}: stimulus {key!r} that the events name is ambiguous: row "
                f"{rows[0]!r} could be it, or {other} (feature space {self.name}); write the stimuli as the "
                "events do"
            )
        return self._index[rows[0]]

    def lookup(self, stimulus_names: Sequence[str]) -> np.ndarray:
        keys = [stimulus_key(n) for n in stimulus_names]
        by_name: dict[str, list[str]] = {}
        for k in self._index:
            by_name.setdefault(PurePosixPath(k).name, []).append(k)
        asked_by_name: dict[str, list[str]] = {}
        for k in dict.fromkeys(keys):
            asked_by_name.setdefault(PurePosixPath(k).name, []).append(k)
        rows = [self._row(k, by_name, asked_by_name) for k in keys]
        if self._matrix is None:
            raise FeatureError(f"{self.name}: no feature matrix loaded (make it with load_user_feature_space)")
        return np.ascontiguousarray(self._matrix[rows], dtype=np.float32)


def load_user_feature_space(folder: str | Path) -> UserFeatureSpace:
    """Read one ``features.npy`` + ``stimuli.tsv`` folder; validate it.

    Raises
    ------
    FeatureError
        Naming the file and what is wrong (missing, unreadable, not 2-D, not
        finite, row count different from ``stimuli.tsv``, duplicate stimuli).
    """
    folder = Path(folder)
    npy, tsv, meta_file = folder / "features.npy", folder / "stimuli.tsv", folder / "space.json"
    for f in (npy, tsv):
        if not f.is_file():
            raise FeatureInputMissing(f"{f}: missing (a feature space folder needs features.npy and stimuli.tsv)")
    try:
        matrix = np.load(npy, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for bad files
        raise FeatureError(f"{npy}: cannot be read as a .npy array ({exc})") from exc
    if matrix.ndim != 2 or matrix.dtype.kind not in "iuf":
        raise FeatureError(
            f"{npy}: expected a 2-D array of real numbers (n_stimuli, n_features), "
            f"got shape {matrix.shape} dtype {matrix.dtype}"
            + (
                " (complex values: give the real features, e.g. real and imaginary parts as columns)"
                if matrix.dtype.kind == "c"
                else ""
            )
        )
    if 0 in matrix.shape:
        raise FeatureError(f"{npy}: has shape {matrix.shape}: no {'features' if matrix.shape[0] else 'stimuli'}")
    if not np.isfinite(matrix).all():
        raise FeatureError(f"{npy}: contains NaN or infinite values")
    try:
        table = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:
        raise FeatureError(f"{tsv}: cannot be read as TSV ({exc})") from exc
    if "stimulus" not in table.columns:
        raise FeatureError(f"{tsv}: needs a 'stimulus' column (has {list(table.columns)})")
    if len(table) != matrix.shape[0]:
        raise FeatureError(f"{tsv}: {len(table)} rows but {npy.name} has {matrix.shape[0]}")
    keys = [stimulus_key(s) for s in table["stimulus"]]
    dupes = pd.Index(keys)[pd.Index(keys).duplicated()]
    if len(dupes):
        raise FeatureError(f"{tsv}: stimulus {dupes[0]!r} appears more than once")
    meta = _space_meta(meta_file)
    group = meta.get("group", "other")
    digest = hashlib.sha256(npy.read_bytes()).hexdigest()
    return UserFeatureSpace(
        name=f"user:{folder.name}",
        group=group,
        dim=int(matrix.shape[1]),
        description=meta.get("description", f"user-supplied features from {folder}"),
        provenance={"source": str(folder), "features_sha256": digest},
        folder=folder,
        _matrix=matrix,
        _index={k: i for i, k in enumerate(keys)},
    )


def _space_meta(meta_file: Path) -> dict:
    """``space.json`` (optional): an object whose ``group`` is one of :data:`GROUPS` and ``description`` text."""
    if not meta_file.is_file():
        return {}
    try:
        meta = read_json_object(meta_file, "space.json")
    except UnreadableFileError as exc:
        raise FeatureError(str(exc)) from exc
    if "group" in meta and meta["group"] not in GROUPS:
        raise FeatureError(f"{meta_file}: group {meta['group']!r} must be one of {GROUPS}")
    if not isinstance(meta.get("description", ""), str):
        raise FeatureError(f"{meta_file}: description must be text, not {json_type(meta['description'])}")
    return meta


def discover_user_feature_spaces(features_dir: str | Path) -> list[UserFeatureSpace]:
    """All feature-space subfolders of ``features_dir``, sorted by name."""
    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise FeatureInputMissing(f"{features_dir}: --features-dir is not a folder")
    folders = sorted(p for p in features_dir.iterdir() if p.is_dir() and (p / "features.npy").exists())
    if not folders:
        raise FeatureInputMissing(
            f"{features_dir}: no feature space subfolders (each needs features.npy and stimuli.tsv)"
        )
    return [load_user_feature_space(p) for p in folders]


def save_feature_space(
    folder: str | Path, features: np.ndarray, stimulus_names: Sequence[str], meta: dict | None = None
) -> Path:
    """Write the ``--features-dir`` layout (atomically per file). Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "features.npy", suffix=".part") as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(features, dtype=np.float32), allow_pickle=False)
    with atomic_path(folder / "stimuli.tsv", suffix=".part") as tmp:
        pd.DataFrame({"stimulus": [stimulus_key(s) for s in stimulus_names]}).to_csv(tmp, sep="\t", index=False)
    if meta:
        with atomic_path(folder / "space.json", suffix=".part") as tmp:
            tmp.write_text(json.dumps(meta, indent=2))
    return folder


class UserSpaces(FamilySpaces):
    """The ``user`` family: ``user:<folder>`` for each feature-space folder of ``--features-dir``.

    The folder is read when this is made (every resolution of names with a ``--features-dir``, whatever spaces
    are asked for: a broken folder is an error before anything runs); its spaces are the default when given.
    """

    def __init__(self, family: FeatureFamily, context: FamilyContext) -> None:
        super().__init__(family, context)
        features_dir = context.features_dir
        found = discover_user_feature_spaces(features_dir) if features_dir is not None else []
        self.found: dict[str, UserFeatureSpace] = {space.name: space for space in found}

    def names(self) -> list[str]:
        return list(self.found)

    def defaults(self) -> list[str]:
        return self.names()

    def bare(self, name: str) -> str | None:
        return f"user:{name}" if f"user:{name}" in self.found else None

    def space(self, name: str) -> UserFeatureSpace:
        if self.context.features_dir is None:
            raise FeatureChoiceError(f"{name!r}: user feature spaces need --features-dir")
        if name not in self.found:
            raise FeatureInputMissing(
                f"{name!r}: no such folder in {self.context.features_dir} (has: {', '.join(self.found) or 'none'})"
            )
        return self.found[name]
