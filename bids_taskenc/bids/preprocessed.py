"""Find each run's preprocessed BOLD, brain mask and confounds in fMRIPrep outputs.

Two namings are read:

* modern fMRIPrep (20.x and later):
  ``..._space-T1w_desc-preproc_bold.nii.gz``, ``..._space-T1w_desc-brain_mask.nii.gz``,
  ``..._desc-confounds_timeseries.tsv`` (``_desc-confounds_regressors.tsv`` before 20.2);
* fMRIPrep 1.x, as in BOLD5000's release on OpenNeuro (ds001499):
  ``..._bold_space-T1w_preproc.nii.gz``, ``..._bold_space-T1w_brainmask.nii.gz``,
  ``..._bold_confounds.tsv``.

pybids parses both (the 1.x files come out with suffixes ``preproc``,
``brainmask`` and ``confounds``).

Volume timing comes from the preprocessed BOLD's JSON sidecar (read with
pybids, so BIDS inheritance applies): fMRIPrep 20.2.4 and later write
``SliceTimingCorrected`` and, when slice timing was corrected, ``StartTime``,
the time (s) that every volume was shifted to (a fraction, by default 0.5, of
the slice acquisition range). Volume ``k`` then stands for the time
``k * RepetitionTime + StartTime`` after the run started; without
``StartTime`` (no correction, or fMRIPrep 1.x, which wrote no sidecar) the
reference is ``0``, the start of each volume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from ..errors import InputDataError, InputMissingError, UsageError
from .dataset import RunFiles, first_unreadable_json, positive_seconds, sidecar_defining
from .filters import nothing_selected

if TYPE_CHECKING:
    import numpy as np
    from bids import BIDSLayout

log = logging.getLogger(__name__)

_NIFTI = [".nii", ".nii.gz"]


@dataclass
class PreprocessedRun:
    """The preprocessed files of one run, in one space."""

    raw: RunFiles
    bold: Path
    mask: Path | None
    confounds: Path | None
    space: str
    naming: str  # 'modern' | 'legacy'
    #: seconds; volume k is the brain at ``k * raw.repetition_time + start_time`` (sidecar ``StartTime``, else 0)
    start_time: float = 0.0
    #: the sidecar's ``SliceTimingCorrected`` (None when it does not say)
    slice_timing_corrected: bool | None = None

    def volume_times(self, n_vols: int) -> np.ndarray:
        """Acquisition time (s from the run's start) each of ``n_vols`` volumes stands for."""
        import numpy as np

        return np.arange(n_vols) * self.raw.repetition_time + self.start_time


def open_derivatives(derivative_dirs: list[Path]) -> list[BIDSLayout]:
    """pybids layouts of the derivative folders (fMRIPrep)."""
    import bids

    layouts = []
    for folder in derivative_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputMissingError(f"{folder}: --derivatives folder does not exist")
        # fMRIPrep folders may lack dataset_description.json (ds001499's has none); pybids then
        # indexes them as a raw dataset, whose configuration has no `desc` entity: modern names
        # (`_desc-preproc_bold`) would go unrecognised. Both configurations parse every name.
        is_derivative = (folder / "dataset_description.json").is_file()
        options = {"is_derivative": True} if is_derivative else {"config": ["bids", "derivatives"]}
        try:
            layouts.append(bids.BIDSLayout(str(folder), validate=False, **options))
        except Exception as exc:
            bad = first_unreadable_json(folder, skip=(".git",))
            if bad is not None:
                raise InputDataError(f"{bad} (pybids cannot index the derivatives)") from exc
            raise InputMissingError(f"{folder}: pybids cannot index the derivatives ({exc})") from exc
    return layouts


def _query(layouts, run: RunFiles, **filters):
    ents = {
        k: v
        for k, v in (("subject", run.subject), ("session", run.session), ("task", run.task), ("run", run.run))
        if v is not None
    }
    hits = []
    for layout in layouts:
        hits += layout.get(**{**filters, **ents}, invalid_filters="allow")
    # pybids ignores entities a file lacks only when asked; drop files of other runs/sessions
    out = []
    for f in hits:
        e = f.get_entities()
        if run.session is None and "session" in e:
            continue
        if run.run is None and "run" in e:
            continue
        out.append(f)
    return out


def available_spaces(layouts: list[BIDSLayout], runs: list[RunFiles]) -> list[str]:
    """Spaces that have a preprocessed BOLD for the first run (sorted, ``T1w`` first)."""
    spaces = set()
    for f in _query(layouts, runs[0], suffix=["bold", "preproc"], extension=_NIFTI):
        e = f.get_entities()
        if "space" in e and (e.get("suffix") == "preproc" or e.get("desc") == "preproc"):
            spaces.add(e["space"])
    return sorted(spaces, key=lambda s: (s != "T1w", s))


def choose_space(layouts: list[BIDSLayout], runs: list[RunFiles], requested: str | None) -> str:
    """The ``--space`` to use: the requested one, else ``T1w`` when present, else the first found."""
    spaces = available_spaces(layouts, runs)
    if requested:
        if requested not in spaces:
            raise UsageError(
                f"--space {requested}: not in the derivatives for {runs[0].label} "
                f"(found: {', '.join(spaces) or 'none'})"
            )
        return requested
    if not spaces:
        roots = ", ".join(str(lay.root) for lay in layouts)
        raise InputMissingError(f"{roots}: no preprocessed BOLD for {runs[0].label}")
    return spaces[0]


@overload
def _one(files, what: str, run: RunFiles, required: Literal[True]) -> Path: ...
@overload
def _one(files, what: str, run: RunFiles, required: Literal[False]) -> Path | None: ...
def _one(files, what: str, run: RunFiles, required: bool) -> Path | None:
    files = sorted({Path(f.path) for f in files})
    if not files:
        if required:
            raise InputMissingError(f"{run.bold}: no preprocessed {what} in the derivatives for {run.label}")
        return None
    if len(files) > 1:
        log.warning("%s: several %s files match; using %s", run.label, what, files[0].name)
    return files[0]


def find_preprocessed(layouts: list[BIDSLayout], run: RunFiles, space: str, selection=None) -> PreprocessedRun:
    """Locate the preprocessed BOLD, mask and confounds of ``run`` in ``space``.

    ``selection`` (a :class:`~.dataset.Selection`): its ``--bids-filter-file`` query ``preproc`` narrows the
    BOLD and the brain mask (e.g. ``{"res": "2"}``); a query that leaves no BOLD is exit 18 naming the file.
    """
    extra = dict(selection.filters.get("preproc", {})) if selection is not None else {}
    try:
        return _find_preprocessed(layouts, run, space, extra)
    except InputMissingError:
        if extra:
            raise nothing_selected(selection.filter_file, "preproc", run.label) from None
        raise


def _find_preprocessed(layouts, run: RunFiles, space: str, extra: dict) -> PreprocessedRun:
    def narrowed(**fixed):  # the filter's entities, ours winning (the run's own entities, --space)
        return _query(layouts, run, **{**extra, **fixed})

    modern = narrowed(space=space, desc="preproc", suffix="bold", extension=_NIFTI)
    if modern:
        bold = _one(modern, "BOLD", run, True)
        mask = _one(narrowed(space=space, desc="brain", suffix="mask", extension=_NIFTI), "brain mask", run, False)
        confounds = _one(
            _query(layouts, run, desc="confounds", suffix=["timeseries", "regressors"], extension=".tsv"),
            "confounds",
            run,
            False,
        )
        naming = "modern"
    else:
        bold = _one(narrowed(space=space, suffix="preproc", extension=_NIFTI), "BOLD", run, True)
        mask = _one(narrowed(space=space, suffix="brainmask", extension=_NIFTI), "brain mask", run, False)
        confounds = _one(_query(layouts, run, suffix="confounds", extension=".tsv"), "confounds", run, False)
        naming = "legacy"
    start_time, corrected = _volume_timing(layouts, bold, run)
    return PreprocessedRun(
        raw=run,
        bold=bold,
        mask=mask,
        confounds=confounds,
        space=space,
        naming=naming,
        start_time=start_time,
        slice_timing_corrected=corrected,
    )


def _volume_timing(layouts, bold: Path, run: RunFiles) -> tuple[float, bool | None]:
    """``(StartTime or 0, SliceTimingCorrected or None)`` from the preprocessed BOLD's sidecar.

    A sidecar ``RepetitionTime`` that differs from the raw BOLD's is an error:
    one of the two timings would be wrong for every trial.
    """
    meta: dict[str, Any] = {}
    for layout in layouts:
        try:
            if layout.get_file(str(bold)) is not None:
                meta = layout.get_metadata(str(bold)) or {}
                break
        except Exception as exc:  # an unreadable sidecar: say which
            raise InputDataError(f"{bold}: cannot read its JSON sidecar ({exc})") from exc
    tr = meta.get("RepetitionTime")
    root = next((Path(lay.root) for lay in layouts if Path(lay.root) in bold.parents), bold.parent)
    if tr is not None:
        seconds = positive_seconds(tr)
        where = sidecar_defining(bold, root, "RepetitionTime") or f"the JSON sidecar of {bold}"
        if seconds is None:
            raise InputDataError(f"{where}: RepetitionTime {tr!r} is not a positive number of seconds (for {bold})")
        if abs(seconds - run.repetition_time) > 1e-6:
            raise InputDataError(
                f"{where}: RepetitionTime {seconds:g} s (of {bold}) differs from the raw BOLD's "
                f"{run.repetition_time:g} s ({run.repetition_time_source or run.bold})"
            )
    start = meta.get("StartTime", 0.0)
    if isinstance(start, bool) or not isinstance(start, (int, float)) or start != start:
        where = sidecar_defining(bold, root, "StartTime") or f"the JSON sidecar of {bold}"
        raise InputDataError(f"{where}: StartTime {start!r} is not a number of seconds (for {bold})")
    start = float(start)
    if not (abs(start) < run.repetition_time):
        where = sidecar_defining(bold, root, "StartTime") or f"the JSON sidecar of {bold}"
        raise InputDataError(
            f"{where}: StartTime {start:g} s (of {bold}) is not within one TR "
            f"({run.repetition_time:g} s) of the volume start"
        )
    corrected = meta.get("SliceTimingCorrected")
    return start, (bool(corrected) if corrected is not None else None)
