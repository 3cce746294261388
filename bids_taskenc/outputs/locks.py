"""Locks on an output folder: what must not run at once does not (docs/output-safety.md).

Two locks, both ``flock`` locks, which the kernel releases when their process ends (a ``kill -9`` leaves no stale
lock behind):

* ``<output_dir>/.sub-<label>.lock``, exclusive, held by a participant's run from start to finish: two runs of
  the same participant would each merge into the folder the other is replacing. The file is removed on release
  (a run that finds the file it locked unlinked or replaced locks the new one), so a finished run leaves none.
* the output folder itself (a lock on the folder, no file), held shared by each participant while it swaps its
  folder in (participants run in parallel) and exclusively by the group level for its whole run, so the group
  never reads a participant half-swapped or replaces its own outputs while another group run writes them. The
  group level also refuses to start while any participant's lock is held: its result would mix the old and the
  new outputs of that participant.

A second run that finds a lock taken stops with :class:`OutputBusyError` naming the lock and what holds it
(participants wait for a running group level instead: their work is done and only the swap is left).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import TaskencError

log = logging.getLogger(__name__)


class OutputBusyError(TaskencError):
    """Another run holds a lock on the output folder (exit 1; the message names the lock)."""


def participant_lock_path(output_dir: Path, participant: str) -> Path:
    return Path(output_dir) / f".sub-{participant}.lock"


def _unsupported(exc: OSError) -> bool:
    """A file system without (these) locks: some network file systems, or flock on a folder over NFS (EBADF)."""
    return exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.EBADF)


@contextmanager
def participant_lock(output_dir: Path, participant: str) -> Iterator[None]:
    """Hold the exclusive lock of one participant's outputs, or raise :class:`OutputBusyError`."""
    path = participant_lock_path(output_dir, participant)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusyError(
                f"{path}: sub-{participant} is being run by another bids_taskenc process on {output_dir}; "
                "wait for it to finish (two runs of one participant would overwrite each other's outputs)"
            ) from None
        except OSError as exc:
            if not _unsupported(exc):
                os.close(fd)
                raise
            log.warning(
                "%s: the file system takes no locks (%s); do not run sub-%s twice at once", path, exc, participant
            )
            break
        try:  # the file we locked may have been removed by the run that just released it: lock the current one
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def output_lock(output_dir: Path, *, exclusive: bool, who: str) -> Iterator[None]:
    """Hold the output-wide lock: shared (a participant's swap, waiting for a group run) or exclusive (the group
    level, never waiting: :class:`OutputBusyError`). ``who`` says in a message who waits."""
    path = Path(output_dir)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            if exclusive:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.warning("%s: waiting for the group level running on %s to finish", who, output_dir)
                    fcntl.flock(fd, fcntl.LOCK_SH)
        except BlockingIOError:
            raise OutputBusyError(
                f"{path}: another bids_taskenc run is writing to this output folder (a participant swapping its "
                "outputs in, or a group run); run the group level when it has finished"
            ) from None
        except OSError as exc:
            if not _unsupported(exc):
                raise
            log.warning("%s: the file system takes no locks (%s); %s runs unprotected", path, exc, who)
        yield
    finally:
        os.close(fd)


def busy_participants(output_dir: Path) -> list[str]:
    """Labels of participants whose lock another process holds now."""
    busy = []
    for path in sorted(Path(output_dir).glob(".sub-*.lock")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            busy.append(path.name[len(".sub-") : -len(".lock")])
        except OSError:
            pass
        finally:
            os.close(fd)
    return busy
