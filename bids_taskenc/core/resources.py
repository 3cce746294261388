"""What a run may use of the machine: its CPUs, the memory it holds, and the memory ceiling's arithmetic.

One home for the rule that the responses' run readers (:mod:`bids_taskenc.responses.runs`), the ridge engine's
voxel batches (:mod:`bids_taskenc.encoding.device`), a fit's share of ``--mem``
(:mod:`bids_taskenc.workflow.resources`) and the up-front check (:mod:`bids_taskenc.workflow.memory`) apply:

* the ceiling is decimal (``--mem 16G`` is 16e9 bytes, as fMRIPrep converts), else a fraction of what is free;
* what a step may use is the ceiling less what is held already (:func:`room_bytes`);
* a step that works in equal pieces (runs read at once) takes as many as fit, and refuses when not one does
  (:func:`pieces_that_fit` returns 0; the caller names what was asked for in its own error).

Plain numbers in, plain numbers out: each layer raises its own error, with its own option names.
"""

from __future__ import annotations

import os
from collections.abc import Callable

#: Bytes in one GB of ``--mem`` and ``mem_gb`` (decimal, as fMRIPrep converts).
BYTES_PER_GB = 1e9


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a SLURM allocation), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def rss_bytes() -> int:
    """Resident memory of this process (0 where /proc is not there)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def memory_budget(mem_gb: float | None, free_bytes: Callable[[], float], fraction: float) -> int:
    """Bytes a step may hold: the ceiling ``mem_gb`` (GB = 1e9 bytes) when given, else ``fraction`` of what
    ``free_bytes()`` says is free now (called only then).

    >>> memory_budget(2.5, lambda: 0, 0.5), memory_budget(None, lambda: 8e9, 0.5)
    (2500000000, 4000000000)
    """
    if mem_gb is not None:
        if not mem_gb > 0:
            raise ValueError(f"mem_gb must be positive, got {mem_gb!r}")
        return int(mem_gb * BYTES_PER_GB)
    return int(fraction * free_bytes())


def room_bytes(ceiling_bytes: float, *held: float) -> float:
    """What is left of a ceiling (bytes) once ``held`` (bytes each: what the process holds, a step's fixed
    arrays) is taken; negative when they exceed it. Integers in, an integer out.

    >>> room_bytes(3_500_000_000, 1_000_000_000)
    2500000000
    """
    return ceiling_bytes - sum(held)


def pieces_that_fit(room: float, per_piece: float, wanted: int) -> int:
    """How many pieces of ``per_piece`` bytes (runs read at once) fit in ``room`` bytes, at most ``wanted``;
    0 when not one does (the caller's error says what it needs).

    >>> pieces_that_fit(2.5e9, 1e9, 4), pieces_that_fit(2.5e9, 1e9, 1), pieces_that_fit(0.5e9, 1e9, 4)
    (2, 1, 0)
    """
    if per_piece <= 0:
        return wanted
    if room < per_piece:
        return 0
    return int(max(1, min(wanted, room // per_piece)))
