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
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from ..core.atomic import atomic_path
from .base import GROUPS, FeatureError, LookupFeatureSpace


def _stimulus_key(name: str) -> str:
    """Match stimuli by file name only (events may give a sub-folder)."""
    return PurePath(str(name).replace("\\", "/")).name


@dataclass
class UserFeatureSpace(LookupFeatureSpace):
    """Features read from ``features.npy`` + ``stimuli.tsv``."""

    folder: Path | None = None
    _matrix: np.ndarray | None = field(default=None, repr=False)
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def lookup(self, stimulus_names: Sequence[str]) -> np.ndarray:
        rows = []
        for name in stimulus_names:
            key = _stimulus_key(name)
            if key not in self._index:
                raise FeatureError(
                    f"{self.folder / 'stimuli.tsv'}: no row for stimulus {key!r} "
                    f"that the events name (feature space {self.name})"
                )
            rows.append(self._index[key])
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
            raise FeatureError(f"{f}: missing (a feature space folder needs features.npy and stimuli.tsv)")
    try:
        matrix = np.load(npy, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for bad files
        raise FeatureError(f"{npy}: cannot be read as a .npy array ({exc})") from exc
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise FeatureError(
            f"{npy}: expected a 2-D numeric array (n_stimuli, n_features), "
            f"got shape {matrix.shape} dtype {matrix.dtype}"
        )
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
    keys = [_stimulus_key(s) for s in table["stimulus"]]
    dupes = pd.Index(keys)[pd.Index(keys).duplicated()]
    if len(dupes):
        raise FeatureError(f"{tsv}: stimulus {dupes[0]!r} appears more than once")
    meta = {}
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as exc:
            raise FeatureError(f"{meta_file}: not valid JSON ({exc})") from exc
    group = meta.get("group", "other")
    if group not in GROUPS:
        raise FeatureError(f"{meta_file}: group {group!r} must be one of {GROUPS}")
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


def discover_user_feature_spaces(features_dir: str | Path) -> list[UserFeatureSpace]:
    """All feature-space subfolders of ``features_dir``, sorted by name."""
    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise FeatureError(f"{features_dir}: --features-dir is not a folder")
    folders = sorted(p for p in features_dir.iterdir() if p.is_dir() and (p / "features.npy").exists())
    if not folders:
        raise FeatureError(f"{features_dir}: no feature space subfolders (each needs features.npy and stimuli.tsv)")
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
        pd.DataFrame({"stimulus": [_stimulus_key(s) for s in stimulus_names]}).to_csv(tmp, sep="\t", index=False)
    if meta:
        with atomic_path(folder / "space.json", suffix=".part") as tmp:
            tmp.write_text(json.dumps(meta, indent=2))
    return folder
