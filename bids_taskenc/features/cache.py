"""Content-addressed on-disk feature cache.

One ``.npy`` row per (feature space, image), at
``<cache_dir>/<space label>-<space key>/<hh>/<image sha256>.npy`` where the
space key hashes the space's name and provenance (model, weights hash,
preprocessing versions, torch version) plus the image decode
version and the numeric precision. A participant who saw the same images, or a
rerun, reads rows instead of computing them. Writes are atomic (temporary file
+ rename), so concurrent runs sharing a cache only ever see whole rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path
from .images import IMAGE_PREPROCESSING_VERSION


def space_key(space, precision: str) -> str:
    """Folder name for ``space``'s rows computed at ``precision`` ('fp32' or 'bf16')."""
    # provenance['precision'] is filled in by featurize; the precision argument stands for it
    facts = sorted((k, repr(v)) for k, v in space.provenance.items() if k != "precision")
    text = "|".join((space.name, repr(facts), IMAGE_PREPROCESSING_VERSION, str(space.input_size), precision))
    return f"{space.label}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


class FeatureCache:
    """Rows of one feature space, keyed by image content hash."""

    def __init__(self, root: str | Path, space, precision: str):
        self.folder = Path(root) / space_key(space, precision)
        self.dim = space.dim

    def _path(self, image_hash: str) -> Path:
        return self.folder / image_hash[:2] / f"{image_hash}.npy"

    def get(self, image_hash: str) -> np.ndarray | None:
        """The cached ``(dim,)`` float32 row, or None (absent or unreadable)."""
        path = self._path(image_hash)
        try:
            row = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if row.ndim != 1 or (self.dim is not None and row.shape[0] != self.dim):
            return None
        return row

    def put(self, image_hash: str, row: np.ndarray) -> None:
        path = self._path(image_hash)
        with atomic_path(path, suffix=".npy.part") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(row, dtype=np.float32), allow_pickle=False)
