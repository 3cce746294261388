"""One line for an exception: what the run log, the crash file and the summary say about a fault."""

from __future__ import annotations

from ..errors import listed_exit_code


def describe_error(exc: BaseException) -> str:
    """The file and what is wrong where known (an exception of ours: :data:`~bids_taskenc.errors.EXIT_CODES` lists
    it), else the exception's type and the first line of its message."""
    if isinstance(exc, Exception) and listed_exit_code(exc) is not None and str(exc).strip():
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
