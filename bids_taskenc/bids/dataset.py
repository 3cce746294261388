"""Open the input dataset with pybids and select what a run works on.

This module knows which participants, sessions, tasks and runs exist and
which ones the user asked for; it reads no image data.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..core.textfiles import UnreadableFileError, read_json, read_json_object
from ..errors import InputMissingError, NoFilesError, UsageError, ValidationError
from .files import check_present, missing_reason
from .filters import load_bids_filters, nothing_selected

__all__ = ["load_bids_filters"]  # its home is .filters; kept importable from here

log = logging.getLogger(__name__)

#: Columns that name the stimulus of a trial, in order of preference.
STIMULUS_COLUMNS = ("stim_file", "ImgName")


def strip_entity(label: str, key: str) -> str:
    """``'sub-CSI1'`` and ``'CSI1'`` both give ``'CSI1'``."""
    label = str(label).strip()
    return label[len(key) + 1 :] if label.startswith(f"{key}-") else label


@dataclass
class RunFiles:
    """The raw files of one functional run."""

    subject: str
    session: str | None
    task: str
    run: int | None
    bold: Path
    events: Path
    repetition_time: float  #: seconds, from the BOLD's JSON sidecar
    repetition_time_source: Path | None = None  #: the sidecar that gives it (BIDS inheritance: maybe a parent's)

    @property
    def entities(self) -> dict:
        return {"subject": self.subject, "session": self.session, "task": self.task, "run": self.run}

    @property
    def label(self) -> str:
        parts = [f"sub-{self.subject}"]
        if self.session:
            parts.append(f"ses-{self.session}")
        parts.append(f"task-{self.task}")
        if self.run is not None:
            parts.append(f"run-{self.run:02d}")
        return "_".join(parts)


def positive_seconds(value) -> float | None:
    """A sidecar's time in seconds when it is a finite number > 0 (a JSON number, not text or true), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def sidecar_defining(path: str | Path, root: str | Path, key: str) -> Path | None:
    """The JSON sidecar that gives ``path`` its ``key`` under BIDS inheritance: the nearest one (same folder,
    then each parent up to ``root``) whose entities are all the file's and whose suffix is the file's; None when
    none does (or one cannot be read: the value came from pybids all the same). For messages naming the file."""
    path, root = Path(path), Path(root)
    parts = path.name.split(".")[0].split("_")
    suffix, entities = parts[-1], set(parts[:-1])
    folder = path.parent
    while True:
        candidates = sorted(folder.glob(f"*{suffix}.json"), key=lambda p: -len(p.name))
        for sidecar in candidates:
            names = sidecar.name[: -len(".json")].split("_")
            if names[-1] != suffix or not set(names[:-1]) <= entities:
                continue
            try:
                if key in read_json_object(sidecar, "sidecar"):
                    return sidecar
            except UnreadableFileError:
                continue
        if folder == root or root not in folder.parents:
            return None
        folder = folder.parent


@dataclass
class Selection:
    """What the user asked for, as pybids filters."""

    participants: list[str] | None = None
    sessions: list[str] | None = None
    tasks: list[str] | None = None
    filters: dict = field(default_factory=dict)  # --bids-filter-file: query name -> entities (.filters)
    filter_file: Path | None = None  # where the filters came from (named when they select nothing)


def check_bids_dir(bids_dir: Path) -> Path:
    """The input folder exists and has a ``dataset_description.json``."""
    bids_dir = Path(bids_dir)
    if not bids_dir.exists():
        raise InputMissingError(f"{bids_dir}: the BIDS dataset folder does not exist")
    if not bids_dir.is_dir():
        raise InputMissingError(f"{bids_dir}: is not a folder")
    desc = bids_dir / "dataset_description.json"
    if not desc.is_file():
        raise ValidationError(f"{desc}: missing; {bids_dir} is not a BIDS dataset")
    try:
        meta = read_json_object(desc, "dataset_description.json")
    except UnreadableFileError as exc:
        raise ValidationError(str(exc)) from exc
    for key in ("Name", "BIDSVersion"):
        if key not in meta:
            raise ValidationError(f"{desc}: required field {key!r} is missing")
    return bids_dir.resolve()


def validate_file_names(layout, bids_dir: Path) -> None:
    """Check every file inside ``sub-*`` folders has a valid BIDS name or is listed in ``.bidsignore``.

    The BIDS schema's filename rules, as the official validator applies them
    (see :mod:`bids_taskenc.bids.validation`).
    """
    from .validation import invalid_file_names

    bad = invalid_file_names(bids_dir)
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValidationError(
            f"{bids_dir}{bad[0]}: not a valid BIDS file name{more} (BIDS schema; list files BIDS does not "
            "cover in .bidsignore); fix the dataset or use --skip-bids-validation"
        )


def first_unreadable_json(folder: Path, skip: tuple[str, ...] = ("derivatives", ".git")) -> str | None:
    """What is wrong with the first JSON file below ``folder`` that cannot be read (not UTF-8, not JSON, nested
    too deep), naming it; None when all read. pybids' own error names the dataset, or nothing at all."""
    for path in sorted(Path(folder).rglob("*.json")):
        if any(part in skip for part in path.relative_to(folder).parts[:-1]) or not path.is_file():
            continue
        try:
            read_json(path, "JSON sidecar")
        except UnreadableFileError as exc:
            return str(exc)
    return None


def open_layout(bids_dir: Path, *, validate: bool = True, database_dir: Path | None = None):
    """A pybids ``BIDSLayout`` of the raw dataset (derivatives not indexed).

    ``database_dir`` (``--bids-database-dir``): pybids' SQLite index of the dataset, read when it is there
    and written there otherwise (:func:`.database.layout_from_database`), so that the jobs of a cluster
    array share one index instead of each walking the dataset.
    """
    import bids

    bids_dir = check_bids_dir(bids_dir)
    try:
        if database_dir is not None:
            from .database import layout_from_database

            layout = layout_from_database(bids_dir, Path(database_dir))
        else:
            layout = bids.BIDSLayout(str(bids_dir), validate=False, derivatives=False)
    except (UsageError, InputMissingError):
        raise
    except Exception as exc:  # pybids raises several types for broken datasets
        bad = first_unreadable_json(bids_dir)
        if bad is not None:
            raise ValidationError(f"{bad} (pybids cannot index the dataset)") from exc
        raise ValidationError(f"{bids_dir}: pybids cannot index the dataset ({exc})") from exc
    if validate:
        validate_file_names(layout, bids_dir)
    return layout


def _events_columns(path: str) -> list[str]:
    try:
        return list(pd.read_csv(path, sep="\t", nrows=0).columns)
    except Exception as exc:
        raise ValidationError(f"{path}: cannot be read as TSV ({exc})") from exc


def stimulus_tasks(layout) -> list[str]:
    """Tasks whose events files name stimuli (``stim_file`` or ``ImgName``), with run entities.

    BOLD5000's ``task-localizer`` (block design, ``cond`` and ``image`` columns, no run
    entity) is left out this way; each task left out gets an INFO line saying why.
    """
    tasks = []
    for task in layout.get_tasks():
        events = layout.get(task=task, suffix="events", extension=".tsv")
        present = [e.path for e in events if missing_reason(e.path) is None]
        if events and not present:
            check_present(events[0].path, "events file")
        if not present:
            log.info("task-%s skipped: it has no events files", task)
            continue
        columns = _events_columns(present[0])
        if any(c in columns for c in STIMULUS_COLUMNS):
            tasks.append(task)
        else:
            log.info(
                "task-%s skipped: its events name no stimulus file (no %s column; %s has columns %s)",
                task,
                " or ".join(repr(c) for c in STIMULUS_COLUMNS),
                present[0],
                ", ".join(columns),
            )
    return tasks


def select_runs(layout, selection: Selection) -> list[RunFiles]:
    """Functional runs (BOLD + events) matching the selection.

    Raises
    ------
    UsageError
        An asked-for participant, session or task does not exist.
    NoFilesError
        The filters leave no run.
    """
    root = Path(layout.root)
    subjects = _selected_subjects(layout, selection, root)
    tasks = _selected_tasks(layout, selection, root)
    query = dict(selection.filters.get("bold", {}))
    query.update(subject=subjects, task=tasks, suffix="bold", extension=[".nii", ".nii.gz"])
    if selection.sessions:
        query["session"] = [strip_entity(s, "ses") for s in selection.sessions]
    try:
        bold_files = layout.get(**query)
    except Exception as exc:
        raise UsageError(f"{selection.filter_file}: --bids-filter-file: pybids rejects the filter ({exc})") from exc
    if not bold_files and selection.filters.get("bold"):
        sessions = f", sessions {query['session']}" if selection.sessions else ""
        raise nothing_selected(selection.filter_file, "bold", f"participants {subjects}, tasks {tasks}{sessions}")
    runs = [_run_files(layout, bf, selection, root) for bf in bold_files]
    if not runs:
        raise NoFilesError(f"{root}: the filters selected no BOLD runs (participants {subjects}, tasks {tasks})")
    runs.sort(key=lambda r: (r.subject, r.task, r.session or "", r.run or 0))
    return runs


def _selected_subjects(layout, selection: Selection, root: Path) -> list[str]:
    """The participants asked for (each must exist), else every one; a dataset without any is exit 18."""
    subjects = layout.get_subjects()
    if selection.participants:
        wanted = [strip_entity(p, "sub") for p in selection.participants]
        unknown = [p for p in wanted if p not in subjects]
        if unknown:
            raise UsageError(
                f"{root}: participant(s) {', '.join('sub-' + u for u in unknown)} not found "
                f"(the dataset has {', '.join('sub-' + s for s in subjects) or 'none'})"
            )
        subjects = wanted
    if not subjects:
        raise NoFilesError(f"{root}: no participants (sub-* folders) found")
    return subjects


def _selected_tasks(layout, selection: Selection, root: Path) -> list[str]:
    """The tasks asked for (each must exist), else every task whose events name stimuli (none: exit 18)."""
    all_tasks = layout.get_tasks()
    if selection.tasks:
        tasks = [strip_entity(t, "task") for t in selection.tasks]
        unknown = [t for t in tasks if t not in all_tasks]
        if unknown:
            raise UsageError(f"{root}: task(s) {', '.join(unknown)} not found (the dataset has {', '.join(all_tasks)})")
        return tasks
    tasks = stimulus_tasks(layout)
    if not tasks:
        raise NoFilesError(f"{root}: no task has events naming stimuli (a 'stim_file' or 'ImgName' column)")
    return tasks


def _run_files(layout, bf, selection: Selection, root: Path) -> RunFiles:
    """One BOLD run's files: its events (the ``events`` filter applied) and its TR, checked."""
    ents = bf.get_entities()
    own = {k: v for k, v in ents.items() if k in ("subject", "session", "task", "run", "acquisition")}
    events = layout.get(**{**own, **selection.filters.get("events", {}), "suffix": "events", "extension": ".tsv"})
    if not events and selection.filters.get("events"):
        raise nothing_selected(selection.filter_file, "events", f"{bf.path}")
    if not events:
        raise InputMissingError(f"{bf.path}: no events.tsv for this run")
    meta = layout.get_metadata(bf.path)
    tr_file = sidecar_defining(bf.path, root, "RepetitionTime")
    if "RepetitionTime" not in meta and tr_file is None:
        raise ValidationError(f"{bf.path}: RepetitionTime missing from its JSON sidecar")
    tr = positive_seconds(meta.get("RepetitionTime"))
    if tr is None:
        raise ValidationError(
            f"{tr_file or bf.path}: RepetitionTime {meta.get('RepetitionTime')!r} is not a positive number of "
            f"seconds (the TR of {bf.path})"
        )
    run = ents.get("run")
    return RunFiles(
        subject=ents["subject"],
        session=ents.get("session"),
        task=ents["task"],
        run=int(run) if run is not None else None,
        bold=Path(bf.path),
        events=Path(events[0].path),
        repetition_time=tr,
        repetition_time_source=tr_file,
    )
