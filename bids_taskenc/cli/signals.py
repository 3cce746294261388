"""SIGTERM and SIGHUP end a run the way Ctrl-C does: every temporary file and folder is removed on the way out.

SLURM sends SIGTERM at a job's time limit (then SIGKILL after ``KillWait``, 30 s by default), ``docker stop`` and
Kubernetes do the same, and a closed terminal sends SIGHUP. Python's default for both is to end the process at
once, which skips every ``finally``: a work-cache entry being written stayed as a ``.<key>.<id>`` folder (the
size of the participant's responses, GBs for BOLD5000) and a participant's staging folder stayed in the output
folder. :func:`terminating_like_interrupt` makes them raise :class:`Terminated`, a :class:`KeyboardInterrupt`,
so the same clean-up runs as for Ctrl-C, and the exit code is ``128 + signal number`` (143 for SIGTERM, 129 for
SIGHUP) as a shell reports a process ended by that signal.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The signals handled like Ctrl-C (SIGINT, which Python already turns into KeyboardInterrupt).
SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """The run was asked to stop by a signal; ``signum`` is which, ``exit_code`` what the process returns."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(signal_name(signum))


def _raise(signum, frame):
    # one stop is enough: a second signal must not interrupt the clean-up the first one started (SIGKILL still can)
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


@contextmanager
def terminating_like_interrupt() -> Iterator[None]:
    """Within the block, :data:`SIGNALS` raise :class:`Terminated` in the main thread; the previous handlers are
    restored after it. Outside the main thread (a caller's worker thread) nothing is changed: Python delivers
    signals to the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def signal_name(signum: int) -> str:
    """``15`` -> ``'SIGTERM'``."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
