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
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..core.atomic import replace_folder
from ..outputs.staging import make_staging_folder, remove_stale_staging

_PREFIX = ".group."


def remove_stale(root: Path) -> None:
    remove_stale_staging(sorted(root.glob(f"{_PREFIX}*")))


def _entities(name: str) -> dict[str, str]:
    parts = name.split(".", 1)[0].split("_")
    return dict(p.split("-", 1) for p in parts[:-1] if "-" in p) | {"suffix": parts[-1]}


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
        replace_folder(staged_group, final_group, trash=self.dir / "previous-group")  # deleted with the stage
        # per-participant group files: the older run's of these tasks go, the new ones come
        for sub in sorted(p for p in self.root.glob("sub-*") if p.is_dir()):
            for old in sub.rglob("*"):
                ents = _entities(old.name) if old.is_file() else {}
                if ents.get("task") in tasks and ents.get("suffix") in suffixes:
                    old.unlink()
        for staged in staged_files:
            target = self.root / staged.relative_to(self.dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        self.discard()
