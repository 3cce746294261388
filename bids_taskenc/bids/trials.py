"""Events files -> the ``Trials`` table: one row per image presentation.

Reads BIDS ``stim_file`` or BOLD5000's own columns (``ImgName``, ``ImgType``
with ``rep_`` marking a repeated showing), and finds every stimulus file.

``Trials`` columns
------------------
participant, session, task, run : run entities (session/run may be None)
trial : 1-based trial index within the run
onset, duration : seconds
image_id : the stimulus as the events give it (a path relative to the stimuli folder, ``/`` separated, no
    leading ``./``): the key that features are looked up by and repeats are counted by; two images of one
    file name in two folders are two images
stimulus_path : absolute path of the image file (None when no images are needed)
repeat_index : 0 for the first showing of an image to this participant, 1, 2, ... after
run_key : label of the run (``sub-X_ses-Y_task-T_run-NN``)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..core.stimuli import stimulus_key
from ..errors import InputDataError, InputMissingError
from .dataset import RunFiles

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def read_events(run: RunFiles) -> pd.DataFrame:
    """One run's trials (image presentations) from its events file.

    Rows without a stimulus (``n/a``, empty: fixation, instructions) are left out.
    """
    path = run.events
    try:
        events = pd.read_csv(path, sep="\t", na_values=["n/a", "N/A", ""], keep_default_na=False)
    except Exception as exc:
        raise InputDataError(f"{path}: cannot be read as TSV ({exc})") from exc
    for col in ("onset", "duration"):
        if col not in events.columns:
            raise InputDataError(f"{path}: required column {col!r} missing")
    column = next((c for c in ("stim_file", "ImgName") if c in events.columns and events[c].notna().any()), None)
    if column is None:
        raise InputDataError(f"{path}: no stimulus column ('stim_file' or 'ImgName')")
    events = events[events[column].notna()].copy()
    if events.empty:
        raise InputDataError(f"{path}: no trial names a stimulus")
    for col in ("onset", "duration"):  # pandas may read text columns with its string dtype, numpy can't judge
        numbers = pd.to_numeric(events[col], errors="coerce")
        bad = numbers.isna() & (events[col].notna() if col == "duration" else True)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputDataError(
                f"{path}: {col!r} must be numbers for every trial (row {row + 1} of the trials "
                f"has {events[col].iloc[row]!r})"
            )
        wrong = ~np.isfinite(numbers) | (numbers < 0) if col == "duration" else ~np.isfinite(numbers)
        wrong &= numbers.notna()
        if wrong.any():
            at = wrong.to_numpy().nonzero()[0][0]
            raise InputDataError(
                f"{path}: {col!r} {numbers.iloc[at]:g} on line {int(events.index[at]) + 2} is not "
                f"{'a duration (finite, >= 0)' if col == 'duration' else 'a finite time'} in seconds"
            )
        events[col] = numbers
    _refuse_duplicate_trials(path, events, column)
    events = events.sort_values("onset", kind="stable")
    return pd.DataFrame(
        {
            "participant": run.subject,
            "session": run.session,
            "task": run.task,
            "run": run.run,
            "trial": np.arange(1, len(events) + 1),
            "onset": events["onset"].astype(float).to_numpy(),
            "duration": events["duration"].astype(float).to_numpy(),
            "image_id": [stimulus_key(v) for v in events[column]],
            "declared_repeat": events["ImgType"].astype(str).str.startswith("rep_").to_numpy()
            if "ImgType" in events.columns
            else False,
            "run_key": run.label,
        }
    )


def _refuse_duplicate_trials(path: Path, events: pd.DataFrame, column: str) -> None:
    """Two rows with one onset and one stimulus (an exact copy, or a copy with another response) are one trial
    written twice: counted, it would be a repeated showing with an identical response and inflate the noise
    ceiling. Names the two lines of the file."""
    key = pd.DataFrame({"onset": events["onset"], "stimulus": [stimulus_key(v) for v in events[column]]})
    dup = key.duplicated(keep=False)
    if not dup.any():
        return
    first = key[dup].iloc[0]
    same = key.index[(key["onset"] == first["onset"]) & (key["stimulus"] == first["stimulus"])]
    lines = [int(i) + 2 for i in same[:2]]  # the header is line 1; the index is the row's place in the file
    exact = events.loc[same[0]].equals(events.loc[same[1]])
    raise InputDataError(
        f"{path}: lines {lines[0]} and {lines[1]} are {'the same row' if exact else 'the same trial'} "
        f"(onset {first['onset']:g} s, stimulus {first['stimulus']!r}); a trial written twice would count as a "
        f"repeated showing with {'an identical' if exact else 'a copied'} response; remove the duplicate"
        + (f" ({int(dup.sum()) - 2} more duplicated rows)" if dup.sum() > 2 else "")
    )


def build_trials(runs: Iterable[RunFiles]) -> pd.DataFrame:
    """All runs' trials, one table, in run order, with ``repeat_index``.

    ``repeat_index`` counts earlier showings of the same image to the same
    participant (in session/run/onset order). Where the events declare repeats
    (BOLD5000's ``ImgType`` ``rep_...``), the declaration is compared with the
    count once per participant and task (:func:`report_declared_repeats`): the
    count is what the analysis uses. ``declared_repeat`` (the events' own mark) is
    kept for ``--repeats drop-repeats`` (Wang et al.'s rule;
    :mod:`bids_taskenc.responses.repeats`).
    """
    frames = [read_events(r) for r in runs]
    if not frames:
        return pd.DataFrame()
    trials = pd.concat(frames, ignore_index=True)
    trials["repeat_index"] = trials.groupby(["participant", "task", "image_id"]).cumcount()
    report_declared_repeats(trials)
    trials["declared_repeat"] = trials["declared_repeat"].astype(bool)
    return trials


def report_declared_repeats(trials: pd.DataFrame) -> None:
    """One message per participant and task where ``ImgType``'s ``rep_`` differs from the order of showings.

    ds001499 (BOLD5000 release 1) marks all but one showing of each repeated image ``rep_``, but not always the
    later ones (in 77 of CSI1's 113 repeated images the first showing in time carries ``rep_``): the same number
    of marks as the order gives, in other places. That is expected and an INFO line says which rule is used.
    Any other disagreement (a mark on an image shown once, a repeated image with more or fewer marks) is a
    WARNING. Neither changes the analysis: ``repeat_index`` counts showings in session/run/onset order, and
    ``--repeats`` (every showing averaged by default) says what is done with them.
    """
    declared = trials["declared_repeat"].astype(bool)
    if not declared.any():
        return
    for (participant, task), t in trials.assign(declared_repeat=declared).groupby(["participant", "task"]):
        if ((t["repeat_index"] > 0) == t["declared_repeat"]).all():
            continue
        per_image = t.groupby("image_id")["declared_repeat"].agg(["size", "sum"])
        repeated = int((per_image["size"] > 1).sum())
        first_marked = int(t.loc[(t["repeat_index"] == 0) & t["declared_repeat"], "image_id"].nunique())
        if (per_image["sum"] == per_image["size"] - 1).all():
            log.info(
                "sub-%s task-%s: ImgType 'rep_' marks all but one showing of each of the %d repeated images, but in "
                "%d of them the first showing in time carries it (expected for ds001499, BOLD5000 release 1); the "
                "analysis counts repeats in session/run/onset order",
                participant,
                task,
                repeated,
                first_marked,
            )
        else:
            wrong = per_image[per_image["sum"] != per_image["size"] - 1]
            log.warning(
                "sub-%s task-%s: ImgType 'rep_' does not mark all but one showing of %d image(s) (e.g. %s: %d of "
                "%d showings marked); the analysis counts repeats in session/run/onset order, not by 'rep_'",
                participant,
                task,
                len(wrong),
                wrong.index[0],
                int(wrong["sum"].iloc[0]),
                int(wrong["size"].iloc[0]),
            )


def index_stimuli(stimuli_dirs: Iterable[Path]) -> dict[str, list[Path]]:
    """Every image file below the folders, by file name (several files may share one name).

    The BOLD5000 release ships ``Scene_Stimuli/Presented_Stimuli/{COCO,ImageNet,Scene}/``:
    searching recursively by name finds them wherever they are.
    """
    index: dict[str, list[Path]] = {}
    for folder in stimuli_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputMissingError(f"{folder}: stimuli folder does not exist")
        for path in sorted(folder.rglob("*")):
            # a dangling link (git-annex content not fetched) is indexed too, so the check says so
            if path.suffix.lower() in IMAGE_EXTENSIONS and (path.is_file() or path.is_symlink()):
                index.setdefault(path.name, []).append(path.absolute())
    return index


def _same_content(paths: list[Path]) -> bool:
    """The files hold the same bytes (copies of one image); False when one cannot be read."""
    import hashlib

    try:
        return len({hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}) == 1
    except OSError:
        return False


def _resolve(key: str, stimuli_dirs: list[Path], index: dict[str, list[Path]]) -> tuple[Path | None, list[Path]]:
    """``(path, [])`` for the one file ``key`` names, ``(None, [])`` when none does, ``(None, files)`` when
    several different files could be meant.

    ``key`` is the path the events give: relative to a stimuli folder (BIDS ``stim_file``), else the one file
    below the folders whose path ends with it (``forest23.jpg`` finds ``Scene/forest23.jpg``,
    ``other/forest23.jpg`` finds ``x/other/forest23.jpg`` but never ``forest23.jpg``).
    """
    parts = PurePosixPath(key).parts
    if not parts:
        return None, []
    exact = [Path(d).absolute() / key for d in stimuli_dirs]
    found = list(dict.fromkeys(p for p in exact if p.is_file() or p.is_symlink()))
    if not found:
        n = len(parts)
        found = [p for p in index.get(parts[-1], []) if p.parts[-n:] == parts]
    if not found and len(parts) > 1 and parts[0] == "stimuli":  # "stimuli/x.jpg": the folder named as well
        return _resolve(str(PurePosixPath(*parts[1:])), stimuli_dirs, index)
    if len(found) > 1 and not _same_content(found):
        return None, found
    if not found:
        return None, []
    path = found[0]
    return (path.resolve() if path.exists() else path), []


def attach_stimulus_paths(
    trials: pd.DataFrame, stimuli_dirs: list[Path], events_by_run: dict[str, Path]
) -> pd.DataFrame:
    """Add ``stimulus_path``: the file each trial's stimulus names (see :func:`_resolve`).

    Raises
    ------
    InputMissingError
        Naming the events file and the first missing stimulus.
    InputDataError
        A stimulus the events name could be either of two different files (naming both).
    """
    index = index_stimuli(stimuli_dirs)
    trials = trials.copy()
    paths: dict[str, Path | None] = {}
    for key, run_key in trials.drop_duplicates("image_id")[["image_id", "run_key"]].itertuples(index=False):
        path, ambiguous = _resolve(key, stimuli_dirs, index)
        if ambiguous:
            raise InputDataError(
                f"{events_by_run[run_key]}: stimulus {key!r} is ambiguous: {ambiguous[0]} and {ambiguous[1]} "
                f"are different images{f' ({len(ambiguous) - 2} more)' if len(ambiguous) > 2 else ''}; give its "
                "folder in the events (a path relative to the stimuli folder) or keep one --stimuli-dir"
            )
        paths[key] = path
    trials["stimulus_path"] = trials["image_id"].map(paths)
    missing = trials[trials["stimulus_path"].isna()]
    if len(missing):
        first = missing.iloc[0]
        n = missing["image_id"].nunique()
        where = ", ".join(str(d) for d in stimuli_dirs)
        raise InputMissingError(
            f"{events_by_run[first['run_key']]}: stimulus {first['image_id']!r} not found in {where}"
            + (f" ({n - 1} more missing)" if n > 1 else "")
        )
    return trials
