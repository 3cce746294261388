"""``participant_scale.py``'s child process: the app's timed participant run (``benchmarks/participant.py``)
with the reads, the contrasts and each step's RSS high-water mark recorded.

Part of ``benchmarks/participant_scale.py`` (see its docstring).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from scale_data import bold_files, inflate_seconds, tree_bytes

HERE = Path(__file__).resolve().parent
SPACES = ["scene3da", "edge2da", "objecta"]


def _hwm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _status_bytes(*keys: str) -> dict:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key = line.split(":", 1)[0]
            if key in keys:
                out[key] = int(line.split()[1]) * 1024
    return out


def _reset_hwm() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs`` 5); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def track_step_peaks(extra: dict) -> None:
    """Record the RSS high-water mark of every participant step (the app's ``Laps``), reset at each lap.

    ``extra["step_peak_rss_bytes"]`` maps each step to its peak (repeats of a
    step: the largest) and ``extra["step_end_rss_bytes"]`` to the resident
    memory when it ended; ``extra["peak_rss_bytes_tracked"]`` is the largest
    peak seen (``wait4``'s ``ru_maxrss`` no longer holds the whole run's peak
    once the mark is reset).
    """
    from bids_taskenc.workflow import timing

    if not _reset_hwm():
        return
    peaks, ends = extra.setdefault("step_peak_rss_bytes", {}), extra.setdefault("step_end_rss_bytes", {})
    original = timing.Laps.lap

    def lap(self, step, *args, **kwargs):
        now = _status_bytes("VmHWM", "VmRSS")
        peaks[step] = max(peaks.get(step, 0), now.get("VmHWM", 0))
        ends[step] = now.get("VmRSS", 0)
        extra["peak_rss_bytes_tracked"] = max(extra.get("peak_rss_bytes_tracked", 0), now.get("VmHWM", 0))
        _reset_hwm()
        return original(self, step, *args, **kwargs)

    timing.Laps.lap = lap  # type: ignore[method-assign]


def child(ns) -> dict:
    """In the child process: the timed app run of benchmarks/participant.py, plus read and contrast timings."""
    sys.path.insert(0, str(HERE))
    import participant as bench  # benchmarks/participant.py

    from bids_taskenc.encoding import contrasts
    from bids_taskenc.responses import bold, runs, travg

    lock = threading.Lock()
    extra = {"read_thread_seconds": 0.0, "read_calls": 0, "contrasts_seconds": 0.0}
    track_step_peaks(extra)

    original_read = bold.read_masked

    def read_masked(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original_read(*args, **kwargs)
        finally:
            with lock:
                extra["read_thread_seconds"] += time.perf_counter() - t0
                extra["read_calls"] += 1

    bold.read_masked = read_masked  # what load_run calls
    for name in ("add", "result"):
        method = getattr(contrasts.ContrastAccumulator, name)

        def timed(self, *args, _m=method, **kwargs):
            t0 = time.perf_counter()
            try:
                return _m(self, *args, **kwargs)
            finally:
                extra["contrasts_seconds"] += time.perf_counter() - t0

        setattr(contrasts.ContrastAccumulator, name, timed)
    original_responses = travg.tr_average_responses

    def responses(*args, **kwargs):
        if ns.read_threads:
            kwargs.setdefault("n_threads", ns.read_threads)
        kwargs.setdefault("mem_gb", ns.responses_mem_gb)
        out = original_responses(*args, **kwargs)
        extra["hwm_after_responses_bytes"] = _hwm_bytes()
        return out

    travg.tr_average_responses = responses  # what the registry's travg_model calls
    extra["read_threads"] = ns.read_threads or runs.default_read_threads()
    rns = argparse.Namespace(
        bids=ns.bids,
        work=ns.work,
        models=None,
        device="cpu",
        precision="exact",
        tasks=None,
        feature_spaces=ns.spaces,
        app_args=ns.app_args,
    )
    res = bench.cmd_run(rns)
    extra["peak_rss_bytes_tracked"] = max(
        extra.get("peak_rss_bytes_tracked", 0), _status_bytes("VmHWM").get("VmHWM", 0)
    )
    res.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in extra.items()})
    return res


def run_child(
    bids: Path, work: Path, spaces: list[str], app_args: list[str], read_threads: int | None, mem_gb: float | None
) -> dict:
    out_json = work.parent / f".{work.name}-child.json"
    cmd = [
        sys.executable,
        str(HERE / "participant_scale.py"),
        "_child",
        "--bids",
        str(bids),
        "--work",
        str(work),
        "--json",
        str(out_json),
        "--spaces",
        *spaces,
    ]
    if read_threads:
        cmd += ["--read-threads", str(read_threads)]
    if mem_gb:
        cmd += ["--responses-mem-gb", str(mem_gb)]
    cmd += ["--", *app_args]
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    res = json.loads(out_json.read_text()) if out_json.exists() else {}
    res["child_exit"] = proc.returncode
    # the child resets its high-water mark at each step and records each step's: the largest is the peak
    res["peak_rss_bytes"] = max(usage.ru_maxrss * 1024, res.get("peak_rss_bytes_tracked", 0))  # kB on Linux
    res["work_dir_bytes"] = tree_bytes(work / "work")
    res["output_bytes"] = tree_bytes(work / "derivatives")
    return res


def measure(bids: Path, participant: str, work: Path, ns) -> dict:
    files = bold_files(bids, participant)
    if not files:
        raise SystemExit(f"{bids}: no preprocessed task-5000scenes BOLD for sub-{participant}")
    rec = {
        "inflate": (
            inflate_seconds(files)
            if not ns.skip_inflate
            else {
                "gzip_dc_seconds": None,
                "zlib_seconds": None,
                "n_files": len(files),
                "raw_bytes": 0,
                "compressed_bytes": sum(f.stat().st_size for f in files),
            }
        )
    }
    feats = bids / "derivatives" / "features"
    spaces = ns.spaces or [f"user:{s}" for s in SPACES if (feats / s).is_dir()] + ["baseline:gabor"]
    app = ["--features-dir", str(feats), "--participant-label", participant]
    rois = bids / "derivatives" / "spm"
    if rois.is_dir():
        app += ["--roi-dir", str(rois)]
    app += ns.app_args
    rec["run"] = run_child(bids, work, spaces, app, ns.read_threads, ns.responses_mem_gb)
    return rec
