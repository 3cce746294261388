"""Events files -> the ``Trials`` table: one row per image presentation.

Reads BIDS ``stim_file`` or BOLD5000's own columns (``ImgName``, ``ImgType``
with ``rep_`` marking a repeated showing), and finds every stimulus file.

``Trials`` columns
------------------
participant, session, task, run : run entities (session/run may be None)
trial : 1-based trial index within the run
onset, duration : seconds
image_id : the stimulus file name (no folder): the key features are looked up by
stimulus_path : absolute path of the image file (None when no images are needed)
repeat_index : 0 for the first showing of an image to this participant, 1, 2, ... after
run_key : label of the run (``sub-X_ses-Y_task-T_run-NN``)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from ..errors import InputDataError, InputMissingError
from .dataset import RunFiles

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def _image_name(value: str) -> str:
    return PurePath(str(value).strip().replace("\\", "/")).name


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
        events[col] = numbers
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
            "image_id": [_image_name(v) for v in events[column]],
            "declared_repeat": events["ImgType"].astype(str).str.startswith("rep_").to_numpy()
            if "ImgType" in events.columns
            else False,
            "run_key": run.label,
        }
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


def index_stimuli(stimuli_dirs: Iterable[Path]) -> dict[str, Path]:
    """Every image file below the folders, by file name.

    The BOLD5000 release ships ``Scene_Stimuli/Presented_Stimuli/{COCO,ImageNet,Scene}/``:
    searching recursively by name finds them wherever they are.
    """
    index: dict[str, Path] = {}
    for folder in stimuli_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputMissingError(f"{folder}: stimuli folder does not exist")
        for path in folder.rglob("*"):
            # a dangling link (git-annex content not fetched) is indexed too, so the check says so
            if path.suffix.lower() in IMAGE_EXTENSIONS and (path.is_file() or path.is_symlink()):
                if path.name in index and index[path.name] != path:
                    log.debug("stimulus %s found twice; using %s", path.name, index[path.name])
                    continue
                index[path.name] = path.resolve() if path.exists() else path.absolute()
    return index


def attach_stimulus_paths(
    trials: pd.DataFrame, stimuli_dirs: list[Path], events_by_run: dict[str, Path]
) -> pd.DataFrame:
    """Add ``stimulus_path``; a stimulus the events name but no folder holds is an error.

    Raises
    ------
    InputMissingError
        Naming the events file and the first missing stimulus.
    """
    index = index_stimuli(stimuli_dirs)
    trials = trials.copy()
    trials["stimulus_path"] = trials["image_id"].map(index)
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
