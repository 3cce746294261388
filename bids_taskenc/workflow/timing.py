"""Step timings for the run log: ``step <name> took <N> s`` lines at INFO, and a summary at the end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("bids_taskenc.timing")

#: (what, step, seconds) of every step timed in this process since :func:`reset`.
RECORDED: list[tuple[str, str, float]] = []


def reset() -> None:
    RECORDED.clear()


class Laps:
    """A stopwatch over consecutive steps: ``lap("responses")`` times everything since the previous lap."""

    def __init__(self, what: str, clock: Callable[[], float] = time.perf_counter):
        self.what = what
        self._clock = clock
        self._last = clock()

    def lap(self, step: str) -> float:
        now = self._clock()
        seconds, self._last = now - self._last, now
        RECORDED.append((self.what, step, seconds))
        log.info("%s: step %s took %.2f s", self.what, step, seconds)
        return seconds


def summary_lines() -> list[str]:
    """One line per timed step (repeats of a step summed), in first-seen order, for the end of the run log."""
    totals: dict[tuple[str, str], float] = {}
    for what, step, seconds in RECORDED:
        totals[(what, step)] = totals.get((what, step), 0.0) + seconds
    return [f"{what}: {step} {seconds:.2f} s" for (what, step), seconds in totals.items()]
