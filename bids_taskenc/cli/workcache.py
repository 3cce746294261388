"""Results of earlier runs kept in the work folder, so a rerun skips finished work.

Each entry is keyed by a hash of everything its value depends on (input file
identities, settings, code version); a changed input or option gives a new key,
never a stale value. Entries are written atomically (temp name, rename), so a run
killed half-way leaves either a whole entry or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..__about__ import __version__

log = logging.getLogger(__name__)


def file_identity(path: str | Path | None) -> list | None:
    """Path, size and modification time: cheap, and changes whenever the file does."""
    if path is None:
        return None
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


class WorkCache:
    """Pickled results under ``<work_dir>/cache/<kind>/<key>.pkl``."""

    def __init__(self, work_dir: str | Path):
        self.root = Path(work_dir) / "cache"

    @staticmethod
    def key(parts: dict) -> str:
        text = json.dumps({"version": __version__, **parts}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def get_or_compute(self, kind: str, parts: dict, compute: Callable[[], Any]) -> Any:
        path = self.root / kind / f"{self.key(parts)}.pkl"
        if path.is_file():
            try:
                with open(path, "rb") as fh:
                    value = pickle.load(fh)
                log.debug("work cache hit: %s", path)
                return value
            except Exception as exc:  # a damaged entry is recomputed, never trusted
                log.warning("%s: unreadable cache entry (%s); recomputing", path, exc)
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return value
