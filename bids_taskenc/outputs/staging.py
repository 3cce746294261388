"""Staging folders: a run writes into a hidden folder and swaps it into place when complete.

Each staging folder carries ``owner.json`` (host and pid of the process writing
it), so the next run can tell a folder left behind by a killed run (removed)
from one a concurrent run is still writing (kept). The participant level and
the group level both stage this way.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path

#: File in a staging folder naming the process that writes it.
OWNER_FILE = "owner.json"


def make_staging_folder(parent: Path, prefix: str) -> Path:
    """A new folder ``parent/<prefix><random>`` marked as this process's."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (folder / OWNER_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    return folder


def owned_by_live_process(folder: Path) -> bool:
    """True when ``folder``'s owner is a process still running on this host."""
    try:
        owner = json.loads((Path(folder) / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return False
    pid = owner.get("pid") if isinstance(owner, dict) else None
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_staging(folders: Iterable[Path]) -> list[Path]:
    """Delete the staging ``folders`` no live process owns; returns those removed."""
    removed = []
    for folder in folders:
        if folder.is_dir() and not owned_by_live_process(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
