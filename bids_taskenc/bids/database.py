"""``--bids-database-dir``: one pybids index of the dataset, shared by every job of a run.

Indexing walks the whole dataset (BOLD5000: about 2 minutes on a network file system); on a cluster each
job of an array would do it again. As fMRIPrep's ``--bids-database-dir`` does, the index is pybids' SQLite
database (``layout_index.sqlite``) in a folder: read when it is there, else written there. It is written into
a private temporary folder beside it and renamed into place, so a job never reads another's half-written
index; when several jobs build it at once, the first rename wins and the others read that one.

The index is a snapshot: files added to the dataset after it was written are not seen (delete the folder,
or give a new one). An index of another dataset folder is refused.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from bids import BIDSLayout

log = logging.getLogger(__name__)


def _has_index(folder: Path) -> bool:
    from bids.layout.db import ConnectionManager

    return ConnectionManager.exists(str(folder))


def _layout(bids_dir: Path, database_dir: Path) -> BIDSLayout:
    import bids

    return bids.BIDSLayout(str(bids_dir), validate=False, derivatives=False, database_path=str(database_dir))


def layout_from_database(bids_dir: Path, database_dir: Path) -> BIDSLayout:
    """The raw dataset's ``BIDSLayout`` read from (or first written to) ``database_dir``.

    Raises
    ------
    UsageError
        ``database_dir`` is a file, holds something other than an index, or indexes another dataset folder.
    """
    bids_dir, database_dir = Path(bids_dir).resolve(), Path(database_dir).resolve()
    if database_dir.exists() and not database_dir.is_dir():
        raise UsageError(f"{database_dir}: --bids-database-dir exists and is not a folder")
    if not _has_index(database_dir):
        _write_index(bids_dir, database_dir)
    else:
        log.info("dataset index read from %s", database_dir)
    layout = _layout(bids_dir, database_dir)
    indexed = Path(layout.root).resolve()
    if indexed != bids_dir:
        raise UsageError(
            f"{database_dir}: --bids-database-dir holds the index of {indexed}, not of {bids_dir} "
            "(give another folder, or delete this one)"
        )
    return layout


def _write_index(bids_dir: Path, database_dir: Path) -> None:
    """Index ``bids_dir`` into a temporary folder beside ``database_dir``, then rename it into place."""
    database_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{database_dir.name}.tmp-", dir=database_dir.parent))
    try:
        _layout(bids_dir, tmp)
        try:
            os.rename(tmp, database_dir)  # replaces an empty folder; fails if another job's index is there
            log.info("dataset index written to %s", database_dir)
        except OSError:
            if not _has_index(database_dir):
                raise UsageError(
                    f"{database_dir}: --bids-database-dir is not empty and holds no pybids index "
                    "(layout_index.sqlite); give an empty or new folder"
                ) from None
            log.info("dataset index written by another job; read from %s", database_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
