"""A stimulus as the events name it: the one normalisation that events, stimulus folders and feature tables share."""

from __future__ import annotations

from pathlib import PurePosixPath


def stimulus_key(value: object) -> str:
    """The stimulus as written (events' ``stim_file``/``ImgName``, a ``stimuli.tsv`` row), normalised: ``/``
    separators, no leading ``./``, no surrounding blanks. The folders are kept: ``other/forest23.jpg`` and
    ``forest23.jpg`` are two stimuli.

    >>> stimulus_key(".\\\\other\\\\forest23.jpg")
    'other/forest23.jpg'
    >>> stimulus_key(" n01608432_13826.JPEG ")
    'n01608432_13826.JPEG'
    """
    parts = [p for p in PurePosixPath(str(value).strip().replace("\\", "/")).parts if p != "."]
    return str(PurePosixPath(*parts)) if parts else ""
