"""Find precomputed single-trial betas (e.g. BOLD5000 release 2.0's GLMsingle outputs).

Two namings are read below ``betas_dir`` (searched recursively), one 4-D
NIfTI per session (the 4th axis is the trial) with a TSV beside it that
names the stimulus of each volume, one row per volume, in volume order:

* BIDS-derivative style::

    sub-CSI1/ses-01/func/sub-CSI1_ses-01_task-5000scenes_space-T1w_desc-singletrial_betas.nii.gz
    sub-CSI1/ses-01/func/sub-CSI1_ses-01_task-5000scenes_space-T1w_desc-singletrial_betas.tsv

* the BOLD5000 release 2.0 file name, with a TSV of the same stem beside it::

    CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-01.nii.gz
    CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-01.tsv

The TSV needs a ``stimulus`` column (``stim_file`` or ``ImgName`` are accepted
too; only the file name is kept); ``onset``, ``duration`` and ``run`` columns
are optional. Rows whose stimulus is ``n/a`` mark volumes to leave out.
See ``docs/responses.md``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from ..core.images import load_volume
from ..errors import InputDataError, InputMissingError, UsageError

log = logging.getLogger(__name__)

STIMULUS_COLUMNS = ("stimulus", "stim_file", "ImgName")
#: Preferred beta type when a session has several release files (the release's recommended one).
PREFERRED_RELEASE_TYPE = "TYPED-FITHRF-GLMDENOISE-RR"


@dataclass
class BetaFile:
    """One session's single-trial betas and the table naming their stimuli."""

    path: Path
    tsv: Path
    subject: str
    session: str | None
    task: str | None
    naming: str  # 'bids' | 'release'
    table: pd.DataFrame  # one row per volume: stimulus, onset, duration, run (NaN/None where absent)

    @property
    def n_volumes(self) -> int:
        return len(self.table)


def _strip(label: str, prefix: str) -> str:
    label = str(label)
    return label[len(prefix) :] if label.startswith(prefix) else label


def _stem(path: Path) -> str:
    name = path.name
    return name[:-7] if name.endswith(".nii.gz") else name[:-4]


def _match(path: Path, subject: str):
    """``(naming, session, task, type)`` for a beta file of ``subject``, else None."""
    sub = re.escape(subject)
    m = re.fullmatch(
        rf"sub-{sub}(?:_ses-(?P<ses>[a-zA-Z0-9]+))?(?:_task-(?P<task>[a-zA-Z0-9]+))?"
        rf"(?:_[a-zA-Z]+-[a-zA-Z0-9]+)*_betas\.nii(?:\.gz)?",
        path.name,
    )
    if m:
        return "bids", m["ses"], m["task"], None
    m = re.fullmatch(
        rf"(?:sub-)?{sub}_GLMbetas-(?P<type>[A-Za-z0-9-]+?)_ses-(?P<ses>[a-zA-Z0-9]+)\.nii(?:\.gz)?", path.name
    )
    if m:
        return "release", m["ses"], None, m["type"]
    return None


def read_beta_table(tsv: Path, nifti: Path) -> pd.DataFrame:
    """The TSV of a beta file: ``stimulus`` (file name or None), ``onset``, ``duration``, ``run``."""
    try:
        table = pd.read_csv(tsv, sep="\t", na_values=["n/a", "N/A", ""], keep_default_na=False)
    except Exception as exc:
        raise InputDataError(f"{tsv}: cannot be read as TSV ({exc})") from exc
    column = next((c for c in STIMULUS_COLUMNS if c in table.columns), None)
    if column is None:
        raise InputDataError(
            f"{tsv}: no stimulus column (one of {', '.join(STIMULUS_COLUMNS)}) naming "
            f"the stimulus of each volume of {nifti.name}"
        )
    stim = [None if pd.isna(v) else PurePath(str(v).strip().replace("\\", "/")).name for v in table[column]]
    out = pd.DataFrame({"stimulus": stim})
    for col in ("onset", "duration"):
        out[col] = pd.to_numeric(table[col], errors="coerce") if col in table.columns else np.nan
    out["run"] = (
        table["run"].astype(str).str.replace("run-", "", regex=False).where(table["run"].notna(), None)
        if "run" in table.columns
        else None
    )
    return out


def find_beta_files(
    betas_dir: str | Path | None, subject: str, sessions: Iterable[str] | None = None
) -> list[BetaFile]:
    """One participant's beta files, one per session, sorted by session.

    Parameters
    ----------
    betas_dir : path
        Folder searched recursively (see the module docstring for the namings).
    subject : str
        Participant label, with or without ``sub-``.
    sessions : list of str, optional
        Session labels (with or without ``ses-``) to keep.

    Raises
    ------
    UsageError
        No folder given.
    InputMissingError
        The folder, any beta file of the participant, or a beta file's TSV is missing.
    InputDataError
        A TSV lacks a stimulus column, its row count differs from the volumes
        of its NIfTI, or a session has several beta files that cannot be told apart.
    """
    if betas_dir is None:  # the settings refuse this first; a Python caller may not have them
        raise UsageError("--betas-dir must be given when the responses are betas (layout: docs/responses.md)")
    betas_dir = Path(betas_dir)
    if not betas_dir.is_dir():
        raise InputMissingError(f"{betas_dir}: --betas-dir folder does not exist")
    subject = _strip(subject, "sub-")
    wanted = None if sessions is None else {_strip(s, "ses-") for s in sessions}
    found: dict[str | None, list] = {}
    for path in sorted(betas_dir.rglob("*.nii*")):
        m = _match(path, subject)
        if m is None or not path.is_file():
            continue
        naming, ses, task, btype = m
        if wanted is not None and ses not in wanted:
            continue
        found.setdefault(ses, []).append((path, naming, task, btype))
    if not found:
        raise InputMissingError(
            f"{betas_dir}: no single-trial beta file for sub-{subject}"
            + (f" in session(s) {', '.join(sorted(wanted))}" if wanted else "")
            + f" (expected sub-{subject}_ses-<label>_..._betas.nii.gz or {subject}_GLMbetas-<type>_ses-<label>.nii.gz)"
        )
    if wanted:
        missing = sorted(wanted - set(found))
        if missing:
            raise InputMissingError(f"{betas_dir}: no beta file for sub-{subject} session(s) {', '.join(missing)}")

    out = []
    for ses in sorted(found, key=lambda s: (s is None, s or "")):
        cands = found[ses]
        if len(cands) > 1:
            preferred = [c for c in cands if c[3] == PREFERRED_RELEASE_TYPE]
            if len(preferred) != 1:
                names = ", ".join(c[0].name for c in cands)
                raise InputDataError(
                    f"{cands[0][0].parent}: several beta files for sub-{subject} ses-{ses}: {names}; "
                    "keep one per session"
                )
            log.info("sub-%s ses-%s: several beta files; using %s", subject, ses, preferred[0][0].name)
            cands = preferred
        path, naming, task, _ = cands[0]
        tsv = path.with_name(_stem(path) + ".tsv")
        if not tsv.is_file():
            raise InputMissingError(f"{path}: no TSV naming the stimulus of each volume; expected {tsv}")
        table = read_beta_table(tsv, path)
        shape = load_volume(path).shape
        n_vols = shape[3] if len(shape) == 4 else (1 if len(shape) == 3 else None)
        if n_vols is None:
            raise InputDataError(f"{path}: expected a 4-D NIfTI of betas (x, y, z, trial), got shape {shape}")
        if len(table) != n_vols:
            raise InputDataError(
                f"{tsv}: {len(table)} rows but {path.name} has {n_vols} volumes; the TSV needs one row per volume"
            )
        out.append(BetaFile(path=path, tsv=tsv, subject=subject, session=ses, task=task, naming=naming, table=table))
    return out
