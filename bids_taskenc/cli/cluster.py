"""Command-line behaviour for runs on clusters: progress bars, ``--clean-workdir``, ``--resource-monitor``.

Progress bars (tqdm) are on when stderr is a terminal and off with ``-q`` or when stderr is a file (a SLURM
log would fill with carriage returns). ``--clean-workdir`` empties the work folder before a run, refusing a
folder that is or holds the input or output. ``--resource-monitor`` samples the process's resident memory,
CPU use and (once CUDA is in use) GPU memory every second into ``logs/resources-<time>.tsv`` and logs the
peaks, as fMRIPrep's option of that name keeps track of memory and CPU.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..errors import UsageError

log = logging.getLogger("bids_taskenc")


def show_progress(args: argparse.Namespace, stream=None) -> bool:
    """Progress bars: on when ``stream`` (stderr) is a terminal, off with ``-q``."""
    stream = sys.stderr if stream is None else stream
    if getattr(args, "quiet", 0) > 0:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


#: What a work folder of this app holds at its top level (the feature rows and the result cache); hidden
#: ``.bids_taskenc-*`` probes may be there too. ``--clean-workdir`` empties nothing else.
WORK_ENTRIES = frozenset({"cache", "features"})


def clean_work_dir(work_dir: Path, bids_dir: Path, output_dir: Path) -> int:
    """Remove everything inside ``work_dir`` (``--clean-workdir``); returns the number of entries removed.

    Only a folder that looks like this app's work folder is emptied: its entries are ``cache/`` and
    ``features/`` (and hidden ``.bids_taskenc-*`` probes). It runs before the dataset is opened, so this rule,
    not the later folder checks, is what keeps an input folder given by mistake (``-w derivatives/fmriprep``,
    ``-w ~``) from being emptied.

    Raises
    ------
    UsageError
        ``work_dir`` is the file system root, the home folder, is (or contains) the input or output folder, or
        holds anything but a work folder's entries.
    """
    work = Path(work_dir).resolve()
    if not work.exists():
        return 0
    if not work.is_dir():
        raise UsageError(f"{work}: --work-dir exists and is not a folder")
    protected = {Path(bids_dir).resolve(), Path(output_dir).resolve()}
    if (
        work == Path(work.anchor)
        or work == Path.home().resolve()
        or any(p == work or work in p.parents for p in protected)
    ):
        raise UsageError(f"{work}: --clean-workdir refuses to empty this folder (it is or holds the input or output)")
    foreign = sorted(
        e.name for e in work.iterdir() if e.name not in WORK_ENTRIES and not e.name.startswith(".bids_taskenc-")
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UsageError(
            f"{work}: --clean-workdir empties only a bids_taskenc work folder (cache/, features/), and this one "
            f"also holds {shown}; choose the work folder of an earlier run, or remove it yourself"
        )
    removed = 0
    for entry in work.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed += 1
    log.info("--clean-workdir: removed %d entries from %s", removed, work)
    return removed


def _rss_mb() -> float:
    """Resident memory of this process now, MB (Linux /proc; elsewhere the peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1e6 if sys.platform == "darwin" else peak / 1e3


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _gpu_mb() -> float | None:
    """GPU memory torch holds now (MB), or None when torch or CUDA is not in use (never imports torch)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.memory_reserved() / 1e6


class ResourceMonitor:
    """Samples memory and CPU every ``interval`` seconds in a thread; a context manager.

    The rows are kept in memory and written by :meth:`write` once the run ends (a run that stops before its
    output folder exists leaves no file). Columns: ``time_s`` (since the start), ``rss_mb``, ``cpu_percent``
    (process CPU time over wall time since the previous row: 100 = one core busy), ``gpu_mb`` (``n/a`` before
    CUDA is used).
    """

    COLUMNS = ("time_s", "rss_mb", "cpu_percent", "gpu_mb")

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.rows: list[tuple] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="resource-monitor", daemon=True)

    def __enter__(self):
        self._t0 = time.monotonic()
        self._last = (self._t0, _cpu_seconds())
        self.sample()
        self._thread.start()
        return self

    def sample(self) -> None:
        """One row: now, memory, CPU since the previous row, GPU memory."""
        with self._lock:
            now, cpu = time.monotonic(), _cpu_seconds()
            wall = now - self._last[0]
            percent = 100.0 * (cpu - self._last[1]) / wall if wall > 0 else 0.0
            self._last = (now, cpu)
            self.rows.append((now - self._t0, _rss_mb(), percent, _gpu_mb()))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()
        return False

    @property
    def peak_rss_mb(self) -> float:
        return max(r[1] for r in self.rows)

    @property
    def peak_gpu_mb(self) -> float | None:
        gpu = [r[3] for r in self.rows if r[3] is not None]
        return max(gpu) if gpu else None

    def write(self, path: Path) -> Path:
        """The samples as TSV at ``path`` (atomically); the peaks logged."""
        from ..outputs.atomic import write_text

        lines = ["\t".join(self.COLUMNS)]
        for t, rss, cpu, gpu in self.rows:
            lines.append(f"{t:.2f}\t{rss:.1f}\t{cpu:.1f}\t{'n/a' if gpu is None else f'{gpu:.1f}'}")
        path = write_text(Path(path), "\n".join(lines) + "\n")
        gpu = "" if self.peak_gpu_mb is None else f", peak GPU memory {self.peak_gpu_mb:.0f} MB"
        log.info(
            "resource monitor: peak memory %.0f MB%s, %d samples in %s", self.peak_rss_mb, gpu, len(self.rows), path
        )
        return path


@contextmanager
def monitored(args: argparse.Namespace, started: datetime, run_log_path=lambda: None):
    """Run the body under a :class:`ResourceMonitor` when ``--resource-monitor`` is given; write its TSV into the
    output folder's ``logs/`` (named by :func:`~..outputs.logs.resource_monitor_path`) if the run opened its run
    log there, i.e. the output folder passed the checks: a refused folder (an input) gets nothing.
    ``run_log_path()`` returns that log's path, or None."""
    if not getattr(args, "resource_monitor", False):
        yield None
        return
    from ..outputs.logs import resource_monitor_path

    monitor = ResourceMonitor()
    try:
        with monitor:
            yield monitor
    finally:
        opened = run_log_path()
        out = Path(opened).parent.parent if opened is not None else None
        if out is not None and out.is_dir():
            try:
                monitor.write(resource_monitor_path(out, started))
            except OSError as exc:
                log.warning("%s: cannot write the resource monitor's samples (%s)", out, exc)
