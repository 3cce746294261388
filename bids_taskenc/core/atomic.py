"""Atomic writes: write to a temporary name beside the target, then rename.

A run killed half-way never leaves a truncated file behind; readers (and reruns) see either the old file or the
complete new one. This is the one home of the rule: derivatives (:mod:`bids_taskenc.outputs.atomic` builds its
writers on it), the work cache, the feature cache, user feature folders, the weights store and test checkpoints.

Files get the mode a plain ``open()`` gives under the process umask (0644 under umask 022), not ``mkstemp``'s
private 0600, so collaborators, web servers and a shared cache can read them. A failed write (a full disk, a
read-only folder) names the file it was writing.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def reserve_temp(folder: str | Path, prefix: str, suffix: str = "") -> Path:
    """Create an empty, new file ``folder/<prefix><random><suffix>`` with the umask's mode.

    Like :func:`tempfile.mkstemp` (exclusive creation, never an existing file or
    link) but with mode ``0666 & ~umask``, the mode ``open()`` would give.
    """
    folder = Path(folder)
    for _ in range(100):
        tmp = folder / f"{prefix}{uuid.uuid4().hex[:12]}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder))


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` with ``path`` as its file name when it names none ("[Errno 28] No space left on device")."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


@contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    The temporary name ends in ``suffix``; by default in the target's extensions
    (``.nii.gz`` etc.) so libraries that dispatch on the suffix still work. An
    :class:`OSError` without a file name (``ENOSPC`` from a write) is re-raised
    naming ``path``. The temporary file is gone afterwards, whatever happened.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix is None:
            suffix = "." + path.name.split(".", 1)[-1] if "." in path.name else ""
        tmp = reserve_temp(path.parent, f".{path.name}.", suffix)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        named = _named(exc, path)
        if named is exc:
            raise
        raise named from exc
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap the two existing paths ``a`` and ``b`` in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    False where the system or the file system cannot (then nothing was changed).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def replace_folder(staged: str | Path, final: str | Path, trash: str | Path | None = None) -> None:
    """Move the complete folder ``staged`` to ``final``, replacing what was there.

    Where the system can (Linux), the two folders are exchanged in one atomic step and the old one, now at
    ``staged``, is moved to ``trash``: at every instant ``final`` is the complete old folder or the complete new
    one, even if the process is killed (``kill -9``) in between. Elsewhere it takes two renames (old to ``trash``,
    ``staged`` to ``final``); a process killed between them leaves the old folder at ``trash``, from which the next
    run restores it. ``trash`` default: a hidden name beside ``final``, deleted afterwards; given, the caller
    deletes it (e.g. with the staging folder that holds it).
    """
    staged, final = Path(staged), Path(final)
    if not final.exists():
        staged.rename(final)
        return
    own_trash = trash is None
    trash = Path(trash) if trash is not None else final.parent / f".{final.name}.old.{uuid.uuid4().hex[:12]}"
    if _exchange(staged, final):
        staged.rename(trash)
    else:
        final.rename(trash)
        staged.rename(final)
    if own_trash:
        shutil.rmtree(trash, ignore_errors=True)
