"""The folders a run writes never overlap the folders it reads (docs/output-safety.md).

An output folder that was an input folder lost its data: ``OUT = B/derivatives/fmriprep`` had its ``sub-CSI1/``
(preprocessed BOLD, masks, confounds) replaced by our maps and fMRIPrep's ``dataset_description.json`` overwritten;
``OUT = B/derivatives/spm`` lost every ROI mask; ``--work-dir B/work`` wrote the cache into the raw dataset.
:func:`check_write_folders` refuses (exit 64, naming both folders) an output or work folder that is, contains or
lies inside any folder the run reads; the BIDS dataset itself may hold the outputs only under its ``derivatives/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import UsageError


def read_folders(
    bids_dir: Path,
    *,
    derivatives: Iterable[Path] = (),
    derivatives_given: bool = True,
    roi_dir: Path | None = None,
    roi_dir_given: bool = True,
    features_dir: Path | None = None,
    stimuli_dirs: Iterable[Path] = (),
    betas_dir: Path | None = None,
    mask: Path | None = None,
) -> list[tuple[str, Path]]:
    """``(what, folder)`` of every folder a run reads besides the BIDS dataset (given and default ones).

    ``derivatives_given`` / ``roi_dir_given`` False: those folders are the defaults, and the message says so.
    """
    default = " (the default of {})"
    folders = [
        (f"--derivatives folder {d}" + ("" if derivatives_given else default.format("--derivatives")), Path(d))
        for d in derivatives
    ]
    folders += [(f"--stimuli-dir folder {d}", Path(d)) for d in stimuli_dirs]
    if roi_dir is not None:
        folders.append(
            (f"--roi-dir folder {roi_dir}" + ("" if roi_dir_given else default.format("--roi-dir")), roi_dir)
        )
    for flag, folder in (("--features-dir", features_dir), ("--betas-dir", betas_dir)):
        if folder is not None:
            folders.append((f"{flag} folder {folder}", Path(folder)))
    if mask is not None:  # a file: its folder may hold the outputs' folder, not be or lie inside it
        folders.append((f"--mask file {mask}", Path(mask)))
    return folders


def _overlap(write: Path, read: Path) -> str | None:
    """How ``write`` overlaps ``read`` (both resolved), or None.

    A file read (``--mask``) is overlapped by its own folder and by any folder above it; a folder that merely lies
    beside it (inside the file's folder) is fine: ``--mask ~/mask.nii.gz`` with outputs in ``~/out``.
    """
    if read.is_file():
        if write == read.parent:
            return "is the folder of"
        return "contains" if write in read.parents else None
    if write == read:
        return "is"
    if read in write.parents:
        return "lies inside"
    if write in read.parents:
        return "contains"
    return None


def check_write_folder(flag: str, folder: Path, bids_dir: Path, reads: list[tuple[str, Path]]) -> Path:
    """``folder`` (resolved) when writing there cannot touch an input; else a :class:`UsageError` naming both.

    ``flag`` names the folder in the message (``output_dir``, ``--work-dir``). Inside ``bids_dir`` a run writes
    only into a folder of its own under ``bids_dir/derivatives/``, and never into a folder of ``reads``.
    """
    bids_dir, folder = Path(bids_dir).resolve(), Path(folder).resolve()
    example = bids_dir / "derivatives" / ("bids_taskenc" if flag == "output_dir" else "bids_taskenc_work")
    if folder == bids_dir or folder in bids_dir.parents:
        raise UsageError(
            f"{flag} {folder} {'is' if folder == bids_dir else 'contains'} the BIDS dataset {bids_dir}, which this "
            f"run reads; choose a folder outside it (e.g. {example})"
        )
    if bids_dir in folder.parents and (bids_dir / "derivatives") not in folder.parents:
        raise UsageError(
            f"{flag} {folder} lies inside the BIDS dataset {bids_dir}, which this run reads; inside it, a run "
            f"writes only into a folder of its own under {bids_dir / 'derivatives'} (e.g. {example})"
        )
    return check_no_overlap(flag, folder, reads, example)


def check_no_overlap(flag: str, folder: Path, reads: list[tuple[str, Path]], example: Path | None = None) -> Path:
    """``folder`` (resolved) unless it is, contains or lies inside a folder of ``reads`` (:class:`UsageError`)."""
    folder = Path(folder).resolve()
    for what, read in reads:
        how = _overlap(folder, Path(read).resolve())
        if how is not None:
            raise UsageError(
                f"{flag} {folder} {how} the {what}, which this run reads; choose a folder that neither is, contains "
                f"nor lies inside a folder the run reads"
                + (f" (e.g. {example})" if example and _overlap(example, Path(read).resolve()) is None else "")
            )
    return folder
