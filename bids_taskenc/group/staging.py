"""The group level is written into a staging folder and swapped in when complete, like a participant.

:func:`bids_taskenc.group.write.write_group_results` writes through a
:class:`GroupStage`: every file goes to ``<output_dir>/.group.<random>/`` (same
relative paths), and only when the whole group level is written is the staged ``group/`` renamed onto the old one
and the per-participant group files (``sub-X/func/..._matrix.*``) moved beside
the maps. So a group run killed midway leaves the previous group outputs
untouched (never sidecars of two runs side by side), and a rerun over fewer
participants or another ROI set leaves no file of the older run behind: of the
task it ran, the group outputs are exactly the new ones. Files of other tasks
in ``group/`` are kept. A staging folder left by a killed run is removed by the
next group run (unless its owner, a process on this host, is still alive).

The commit itself survives ``kill -9``: ``group/`` is exchanged with the staged one in one atomic step
(:func:`bids_taskenc.core.atomic.replace_folder`), so there is always a complete ``group/``; and before the first
change the commit's plan (the per-participant files to delete and to move) is written into the staging folder, so
a run killed while moving the per-participant matrices is finished by the next group run, which completes the plan
before anything else (the matrices are then all of the killed run, as ``group/`` is).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from ..core.atomic import replace_folder
from ..outputs.atomic import write_json
from ..outputs.staging import make_staging_folder, owned_by_live_process, remove_stale_staging

log = logging.getLogger(__name__)

_PREFIX = ".group."


#: The commit's plan, written into the staging folder before the first change to the outputs.
_JOURNAL = "commit.json"


def remove_stale(root: Path) -> None:
    """Finish the commit of a killed group run (its journal is there), delete any other stale staging folder."""
    for folder in sorted(root.glob(f"{_PREFIX}*")):
        if folder.is_dir() and (folder / _JOURNAL).is_file() and not owned_by_live_process(folder):
            _apply(root, folder, json.loads((folder / _JOURNAL).read_text()))
            log.warning("completed the group outputs of a group run killed while moving them into place (%s)", folder)
    remove_stale_staging(sorted(root.glob(f"{_PREFIX}*")))


def _entities(name: str) -> dict[str, str]:
    parts = name.split(".", 1)[0].split("_")
    return dict(p.split("-", 1) for p in parts[:-1] if "-" in p) | {"suffix": parts[-1]}


def _apply(root: Path, stage: Path, plan: dict) -> None:
    """Carry out a commit's plan; every step can be repeated, so a killed commit is finished by the next run.

    The staged ``group/`` takes the place of the old one in one atomic exchange (:func:`replace_folder`; the
    inode recorded in the plan tells whether that step was done), then the older per-participant group files of
    these tasks go and the new ones are moved beside the maps.
    """
    staged_group, final_group = stage / "group", root / "group"
    done = final_group.exists() and final_group.stat().st_ino == plan["group_inode"]
    if staged_group.is_dir() and not done:
        replace_folder(staged_group, final_group, trash=stage / "previous-group")  # deleted with the stage
    for rel in plan["delete"]:
        (root / rel).unlink(missing_ok=True)
    for rel in plan["move"]:
        staged = stage / rel
        if staged.exists():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, root / rel)
    shutil.rmtree(stage, ignore_errors=True)


class GroupStage:
    """A staging copy of the output root for one group run."""

    def __init__(self, root: Path):
        self.root = Path(root)
        remove_stale(self.root)
        self.dir = make_staging_folder(self.root, _PREFIX)

    def path(self, final: Path) -> Path:
        """Where ``final`` (a path under the output root) is written while staged."""
        return self.dir / Path(final).relative_to(self.root)

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def commit(self) -> None:
        staged_group = self.dir / "group"
        staged_group.mkdir(exist_ok=True)
        staged_subjects = sorted(p for p in self.dir.glob("sub-*") if p.is_dir())
        staged_files = [p for d in staged_subjects for p in d.rglob("*") if p.is_file()]
        tasks = {_entities(p.name).get("task") for p in [*staged_group.iterdir(), *staged_files]}
        suffixes = {_entities(p.name)["suffix"] for p in staged_files} | {"matrix"}
        final_group = self.root / "group"
        if final_group.is_dir():  # keep other tasks' group outputs
            for old in final_group.iterdir():
                if _entities(old.name).get("task") in tasks or (staged_group / old.name).exists():
                    continue
                if old.is_dir():
                    shutil.copytree(old, staged_group / old.name)
                else:
                    try:
                        os.link(old, staged_group / old.name)
                    except OSError:
                        shutil.copy2(old, staged_group / old.name)
        moves = [p.relative_to(self.dir).as_posix() for p in staged_files]
        # per-participant group files: the older run's of these tasks go, the new ones come
        deletes = [
            old.relative_to(self.root).as_posix()
            for sub in sorted(p for p in self.root.glob("sub-*") if p.is_dir())
            for old in sub.rglob("*")
            if old.is_file()
            and _entities(old.name).get("task") in tasks
            and _entities(old.name)["suffix"] in suffixes
            and old.relative_to(self.root).as_posix() not in moves
        ]
        plan = {"group_inode": staged_group.stat().st_ino, "delete": deletes, "move": moves}
        write_json(self.dir / _JOURNAL, plan)  # from here on, a killed commit is finished by the next group run
        _apply(self.root, self.dir, plan)
