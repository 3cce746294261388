"""Is an input file really there and readable? Checked before a participant computes anything.

A DataLad / OpenNeuro clone holds, for every file whose content was never
fetched, a git-annex symbolic link into ``.git/annex/objects`` that points
nowhere (or, in an unlocked/adjusted clone, a small pointer file
``/annex/objects/...``); ``ls`` lists it, ``open()`` says "No such file or
directory". :func:`check_input_file` says that the content is not present and
how to get it, and, for NIfTI files, reads the header and checks that a
``.nii.gz`` is not truncated (cheaply: the gzip trailer records the length of
the uncompressed data, which the header predicts; only on a mismatch is the
file decompressed to make sure).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

from ..core.images import load_volume
from ..errors import InputDataError, InputMissingError

_ANNEX_MARK = "annex/objects/"
_POINTER_MAX = 1024


def _annex_hint(path: Path) -> str:
    return (
        f"the content of this git-annex file is not present (a DataLad/OpenNeuro clone that was never fetched); "
        f"get it with `datalad get {path}` (or `git annex get`)"
    )


def missing_reason(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file (None when it can): annexed content absent, broken link, absent."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        target = os.readlink(path)
        if _ANNEX_MARK in target.replace(os.sep, "/"):
            return _annex_hint(path)
        return f"broken symbolic link (to {target})"
    if not path.exists():
        return "does not exist"
    if path.is_dir():
        return "is a folder, not a file"
    try:
        if path.stat().st_size < _POINTER_MAX:
            with open(path, "rb") as fh:
                head = fh.read(_POINTER_MAX)
            if head.startswith(b"/annex/objects/"):
                return _annex_hint(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def check_present(path: str | Path, what: str) -> Path:
    """``path`` if it is a readable file, else :class:`InputMissingError` naming it and why."""
    reason = missing_reason(path)
    if reason is not None:
        raise InputMissingError(f"{path}: {what}: {reason}")
    return Path(path)


def _gzip_truncated(path: Path, expected: int) -> str | None:
    """None when the gzip stream is whole; else what is wrong."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() < 18:
            return "too short for a gzip file"
        fh.seek(-4, os.SEEK_END)
        isize = int.from_bytes(fh.read(4), "little")
    if isize == expected % 2**32:
        return None
    try:  # the trailer disagrees (or the file has several gzip members): decompress to be sure
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass
    except (EOFError, zlib.error, OSError) as exc:
        return f"truncated or corrupt gzip data ({exc})"
    return None


def check_nifti(path: str | Path, what: str) -> Path:
    """``path`` is present, its NIfTI header reads, and a ``.nii.gz`` is not cut short."""
    import nibabel as nib
    import numpy as np
    from nibabel.arrayproxy import ArrayProxy

    path = check_present(path, what)
    try:
        img = load_volume(path)
        header = img.header
        proxy = img.dataobj
        if not isinstance(proxy, ArrayProxy):  # load_volume maps the file without reading it: always a proxy
            raise ValueError(f"its data were read as {type(proxy).__name__}, not mapped from the file")
        # the array proxy's offset: a loaded header reports get_data_offset() == 0, not vox_offset
        expected = int(proxy.offset) + int(np.prod(img.shape)) * header.get_data_dtype().itemsize
    except (nib.filebasedimages.ImageFileError, EOFError, zlib.error, OSError, ValueError) as exc:
        raise InputDataError(f"{path}: {what} is not a readable NIfTI image ({type(exc).__name__}: {exc})") from exc
    if path.name.endswith(".gz"):
        problem = _gzip_truncated(path, expected)
        if problem:
            raise InputDataError(f"{path}: {what} is not a readable NIfTI image: {problem}")
    return path


#: Seconds per unit of a NIfTI header's time unit (``xyzt_units``); other units (unknown, Hz, ppm) give no TR.
_TIME_UNITS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}
#: How far a header's TR may be from the sidecar's (s): headers store float32 (0.72 reads 0.72000003).
TR_TOLERANCE = 1e-3


def header_repetition_time(path: str | Path) -> tuple[float | None, str]:
    """The TR a 4-D NIfTI header records, in seconds, and how it reads (``'pixdim[4] = 2000 msec'``).

    ``(None, why)`` where the header records none: not 4-D, a time step of 0, or time units that are not
    seconds, milliseconds or microseconds (``unknown``: many tools leave them unset, and the value means nothing).
    """

    header = load_volume(path).header
    if len(header.get_data_shape()) < 4:
        return None, "not a 4-D image"
    step = float(header.get_zooms()[3])
    unit = header.get_xyzt_units()[1]
    text = f"pixdim[4] = {step:g} {unit}"
    if unit not in _TIME_UNITS or not step > 0:
        return None, text
    return step * _TIME_UNITS[unit], text


def check_repetition_time(path: str | Path, what: str, seconds: float, source: str) -> None:
    """A 4-D NIfTI's header TR agrees with the sidecar's ``seconds`` (from ``source``), else an error naming both.

    A header without a usable TR (see :func:`header_repetition_time`) is not compared.
    """
    header_tr, text = header_repetition_time(path)
    if header_tr is not None and abs(header_tr - seconds) > TR_TOLERANCE:
        raise InputDataError(
            f"{path}: {what}'s NIfTI header gives a TR of {header_tr:g} s ({text}) but {source} says RepetitionTime "
            f"{seconds:g} s; the trials would be read from the wrong volumes; correct the one that is wrong"
        )
