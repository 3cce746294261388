"""The run's log file and crash files: records buffered until the output folder exists, then everything (DEBUG
included) in ``logs/bids_taskenc-<time>.log``; a fault's traceback in ``logs/crash-<time>-<who>-<uuid>.txt``
(names: :mod:`bids_taskenc.outputs.logs`).
"""

from __future__ import annotations

import logging
import platform
import shlex
import sys
import traceback
from datetime import datetime
from pathlib import Path

from ..__about__ import __version__
from ..workflow.faults import describe_error

log = logging.getLogger("bids_taskenc")

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Buffer(logging.Handler):
    """Keeps records until the run log file can be opened (the output folder may not exist yet)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


class RunLog:
    """The run's log file ``logs/bids_taskenc-<time>.log``: every record, DEBUG included.

    Records are buffered from the start of the run; :meth:`open` (called once the
    output folder exists) writes them and every later one to the file. A run
    that fails before it has an output folder leaves no log file (its one error
    line on stderr says why).
    """

    def __init__(self):
        self.started = datetime.now()
        self.path: Path | None = None
        self._buffer = _Buffer()
        self._file: logging.Handler | None = None
        logging.getLogger().addHandler(self._buffer)

    def open(self, output_dir: Path) -> Path | None:
        from ..outputs.logs import run_log_path

        if self._file is not None:
            return self.path
        try:
            path = run_log_path(output_dir, self.started)
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as exc:
            log.warning("%s: cannot write the run log (%s)", output_dir, describe_error(exc))
            return None
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
        for record in self._buffer.records:
            handler.handle(record)
        root = logging.getLogger()
        root.removeHandler(self._buffer)
        root.addHandler(handler)
        self._buffer.records.clear()
        self._file, self.path = handler, path
        return path

    def note(self, message: str, level: int = logging.INFO) -> None:
        """A line printed on stderr, recorded in the log file only."""
        record = logging.LogRecord("bids_taskenc", level, __file__, 0, message, None, None)
        (self._file or self._buffer).handle(record)

    def close(self) -> None:
        root = logging.getLogger()
        root.removeHandler(self._buffer)
        if self._file is not None:
            root.removeHandler(self._file)
            self._file.close()
            self._file = None


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format=_FORMAT, datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    # our own progress lines at INFO on stderr even without -v (-q: warnings, -qq: errors only); everything of
    # ours reaches the run log
    shown = min(level, logging.INFO) if verbosity >= 0 else logging.WARNING if verbosity == -1 else logging.ERROR
    for handler in logging.getLogger().handlers:
        handler.setLevel(shown)
    logging.getLogger("bids_taskenc").setLevel(logging.DEBUG)
    for noisy in ("bids", "nibabel", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def write_crash_file(output_dir: Path, who: str, exc: BaseException, argv: list[str]) -> Path | None:
    """``logs/crash-<time>-<who>-<uuid>.txt`` with the traceback of ``exc``; None if it cannot be written."""
    from ..outputs.atomic import write_text
    from ..outputs.logs import crash_file_path

    path = crash_file_path(output_dir, who)
    text = "\n".join(
        [
            f"bids_taskenc {__version__} crash report",
            f"when: {datetime.now().isoformat(timespec='seconds')}",
            f"who: {who}",
            f"command: {shlex.join(['bids_taskenc', *argv])}",
            f"python: {platform.python_version()} on {platform.platform()}",
            f"error: {describe_error(exc)}",
            "",
            "".join(traceback.format_exception(exc)),
        ]
    )
    try:
        return write_text(path, text)
    except OSError as err:
        log.warning("%s: cannot write the crash file (%s)", path, describe_error(err))
        return None
