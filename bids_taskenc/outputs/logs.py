"""Names of the run's own records under ``<output_dir>/logs/`` (the one place they are built).

* ``logs/bids_taskenc-<YYYYmmdd-HHMMSS>.log``: the log of one run (every level,
  DEBUG included), written by every participant, group and report run;
* ``logs/crash-<YYYYmmdd-HHMMSS>-<participant>-<uuid>.txt``: the traceback of
  one failure (``participant`` is the label, ``group`` or ``run``), as fMRIPrep
  writes its crash files.

``logs/`` is listed in the output's ``.bidsignore`` (with the citation files).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path

LOGS_DIR = "logs"
RUN_LOG_PREFIX = "bids_taskenc-"
RUN_LOG_SUFFIX = ".log"
CRASH_PREFIX = "crash-"
CRASH_SUFFIX = ".txt"
_STAMP = "%Y%m%d-%H%M%S"
_RUN_LOG_RE = re.compile(r"^bids_taskenc-(\d{8}-\d{6})(?:-(\d+))?\.log$")


def stamp(when: datetime | None = None) -> str:
    return (when or datetime.now()).strftime(_STAMP)


def logs_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / LOGS_DIR


def run_log_path(output_dir: str | Path, when: datetime | None = None) -> Path:
    """A new run-log path (``-2``, ``-3`` ... appended when a run of the same second has one)."""
    base = f"{RUN_LOG_PREFIX}{stamp(when)}"
    folder = logs_dir(output_dir)
    path = folder / f"{base}{RUN_LOG_SUFFIX}"
    n = 2
    while path.exists():
        path = folder / f"{base}-{n}{RUN_LOG_SUFFIX}"
        n += 1
    return path


def crash_file_path(output_dir: str | Path, participant: str, when: datetime | None = None) -> Path:
    label = re.sub(r"[^A-Za-z0-9]", "", participant) or "run"
    return logs_dir(output_dir) / f"{CRASH_PREFIX}{stamp(when)}-{label}-{uuid.uuid4()}{CRASH_SUFFIX}"


def run_logs(output_dir: str | Path) -> list[Path]:
    """The run logs in ``output_dir``, oldest first."""
    folder = logs_dir(output_dir)
    if not folder.is_dir():
        return []
    found = [(m.group(1), int(m.group(2) or 1), p) for p in folder.iterdir() if (m := _RUN_LOG_RE.match(p.name))]
    return [p for *_, p in sorted(found)]


def crash_files(output_dir: str | Path) -> list[Path]:
    folder = logs_dir(output_dir)
    return sorted(folder.glob(f"{CRASH_PREFIX}*{CRASH_SUFFIX}")) if folder.is_dir() else []


def resource_monitor_path(output_dir: str | Path, when: datetime | None = None) -> Path:
    """``logs/resources-<YYYYmmdd-HHMMSS>.tsv``: the ``--resource-monitor`` samples of one run."""
    return logs_dir(output_dir) / f"resources-{stamp(when)}.tsv"
