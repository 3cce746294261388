"""How a BOLD5000-sized participant's time and memory grow with its voxels.

    python benchmarks/participant_scale.py [--quick] [--grids 44x52x44 ...] [--json FILE]
    python benchmarks/participant_scale.py --bids DIR [--participant CSI1]   # an existing dataset

For each grid it makes one synthetic participant with BOLD5000's counts (or
takes ``--bids``), runs the app's participant level on it in a child process
(``benchmarks/participant.py``'s timed ``run``) and prints, per grid: voxels,
the time of each step (reading the runs, building the responses, featurizing,
each feature space's fit, noise ceiling, contrasts, NIfTI maps, surfaces,
report), the child's peak RSS (``wait4``'s ``ru_maxrss``), the RSS high-water
mark right after the responses, the work folder's size, and, in the same run,
the time ``gzip -dc`` and Python's zlib (one thread each) take to inflate the
preprocessed BOLD files. The last line is ``read/inflate ratio: X.Xx, peak RSS
Y.Y GB``: responses step (reading included) over zlib's inflate time, and the
peak RSS, for the largest grid.

Data. When ``bids_taskenc-synthetic --help`` lists ``--grid`` and
``--bold5000-counts`` (added on another branch) the dataset is made by that
command; otherwise by ``make_synthetic_dataset(shape=GRID, n_sessions=15,
runs_per_session=10, trials_per_run=37, n_repeated=113)``: 150 runs of 194
volumes, 5,550 trials of 5,211 images (BOLD5000's CSI1: 142 runs, 5,254
trials, 4,916 images). The generator writes the preprocessed BOLD as float32;
BOLD5000's are int16 with a scale factor, so they are rewritten as scaled
int16 (``--keep-float32`` leaves them), not timed. The generator's brain mask is
an ellipsoid filling about half the box. Feature spaces: three user spaces of
``--n-features`` columns (one per planted cluster: 3D, 2D, semantic; contrasts
between them) and ``baseline:gabor``; ROI tables from the generator's ROIs;
surfaces (the generator's meshes); reports on. ``--quick`` uses small grids
and 512-column spaces.

Timings on a shared machine are noisy: run it on an idle one for numbers to
compare, and read the ratio, not the seconds, across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Grids (voxels, 3 mm boxes; the brain ellipsoid takes about half): about 50k, 100k and 200k brain voxels.
FULL_GRIDS = ["44x52x44", "56x66x56", "70x84x70"]
QUICK_GRIDS = ["24x28x24", "32x38x32", "40x47x40"]
#: Fallback counts when the generator has no --bold5000-counts.
FALLBACK = {"n_sessions": 15, "runs_per_session": 10, "trials_per_run": 37, "n_repeated": 113}
SPACES = ["scene3da", "edge2da", "objecta"]


def _grid(text: str) -> tuple[int, int, int]:
    parts = tuple(int(x) for x in re.split(r"[x, ]+", text.strip()))
    if len(parts) != 3 or min(parts) < 8:
        raise argparse.ArgumentTypeError(f"grid must be X x Y x Z voxels, each >= 8: {text!r}")
    return parts


def _synthetic_help() -> str:
    return subprocess.run(
        [sys.executable, "-m", "bids_taskenc.testing.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout


def _has(help_text: str, opt: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", help_text) is not None


def generate(root: Path, grid, n_features: int, seed: int, counts: dict) -> dict:
    """A one-participant dataset under ``root`` (``root/bids``); returns what was made and how."""
    if root.exists():
        shutil.rmtree(root)
    help_text = _synthetic_help()
    t0 = time.perf_counter()
    if _has(help_text, "--grid") and _has(help_text, "--bold5000-counts") and counts is FALLBACK:
        cmd = [
            sys.executable,
            "-m",
            "bids_taskenc.testing.cli",
            str(root / "bids"),
            "--participants",
            "1",
            "--bold5000-counts",
            "--grid",
            *map(str, grid),
            "--fmriprep-naming",
            "legacy",
            "--surfaces",
            "--seed",
            str(seed),
        ]
        if _has(help_text, "--n-features"):
            cmd += ["--n-features", str(n_features)]
        if _has(help_text, "--preproc-dtype"):  # int16 with a scale factor, as BOLD5000's: no rewrite needed
            cmd += ["--preproc-dtype", "int16"]
        subprocess.run(cmd, check=True)
        how = {"generator": "bids_taskenc-synthetic", "command": cmd[3:]}
        if not _has(help_text, "--n-features"):
            how["note"] = "the command has no --n-features: its default width"
    else:
        from bids_taskenc.testing import make_synthetic_dataset

        # make_synthetic_dataset puts the BIDS folder at root/bids
        make_synthetic_dataset(
            root,
            n_participants=1,
            shape=tuple(grid),
            n_features=n_features,
            fmriprep_naming="legacy",
            surfaces=True,
            seed=seed,
            **counts,
        )
        how = {
            "generator": "make_synthetic_dataset",
            "counts": counts,
            "note": "no --grid/--bold5000-counts in bids_taskenc-synthetic: 15 sessions x 10 runs x 37 trials",
        }
    how["seconds"] = round(time.perf_counter() - t0, 1)
    return how


def bold_files(bids: Path, participant: str) -> list[Path]:
    fmriprep = bids / "derivatives" / "fmriprep" / f"sub-{participant}"
    files = sorted(fmriprep.rglob("*task-5000scenes*_preproc*.nii.gz")) + sorted(
        fmriprep.rglob("*task-5000scenes*desc-preproc_bold.nii.gz")
    )
    return sorted(set(files))


def to_int16(files: list[Path], threads: int = 2) -> float:
    """Rewrite float BOLD files as int16 with nibabel's slope/intercept (how BOLD5000's are stored)."""
    import nibabel as nib
    import numpy as np

    def one(path: Path) -> None:
        img = nib.load(path)
        if img.get_data_dtype() == np.int16:
            return
        out = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine, img.header)
        out.set_data_dtype(np.int16)
        tmp = path.with_name(".tmp-" + path.name)
        nib.save(out, tmp)
        tmp.replace(path)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - t0


def inflate_seconds(files: list[Path]) -> dict:
    """One thread, file after file: ``gzip -dc > /dev/null`` and Python's zlib (the floor for reading)."""
    for f in files:  # same page-cache state for both and for the app: every file read once first
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass
    t0 = time.perf_counter()
    for f in files:
        with open(f, "rb") as fh:
            subprocess.run(["gzip", "-dc"], stdin=fh, stdout=subprocess.DEVNULL, check=True)
    t_gzip = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw = 0
    for f in files:
        d = zlib.decompressobj(31)
        raw += len(d.decompress(f.read_bytes()))
    t_zlib = time.perf_counter() - t0
    return {
        "gzip_dc_seconds": round(t_gzip, 2),
        "zlib_seconds": round(t_zlib, 2),
        "compressed_bytes": sum(f.stat().st_size for f in files),
        "raw_bytes": raw,
        "n_files": len(files),
    }


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


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

    timing.Laps.lap = lap


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
        str(Path(__file__).resolve()),
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
    res["work_dir_bytes"] = _tree_bytes(work / "work")
    res["output_bytes"] = _tree_bytes(work / "derivatives")
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


def summarize(grid: str, rec: dict) -> dict:
    run, inf = rec["run"], rec["inflate"]
    steps = run.get("steps_seconds", {})
    row = {
        "grid": grid,
        "voxels": run.get("n_voxels"),
        "images": run.get("n_images"),
        "runs": inf["n_files"],
        "bold_gz_gb": inf["compressed_bytes"] / 1e9,
        "raw_gb": inf["raw_bytes"] / 1e9,
        "gzip_dc_s": inf["gzip_dc_seconds"],
        "zlib_s": inf["zlib_seconds"],
        "read_threads": run.get("read_threads"),
        "read_thread_s": run.get("read_thread_seconds"),
        "responses_s": steps.get("responses"),
        "features_s": steps.get("features"),
        "fit_s": run.get("fit_seconds_per_space", {}),
        "noise_ceiling_s": steps.get("noise_ceiling"),
        "contrasts_s": run.get("contrasts_seconds"),
        "maps_s": steps.get("write_maps"),
        "surfaces_s": steps.get("surfaces"),
        "report_s": steps.get("report"),
        "app_s": run.get("app_seconds"),
        "rss_after_responses_gb": (run.get("hwm_after_responses_bytes") or 0) / 1e9,
        "peak_rss_gb": run["peak_rss_bytes"] / 1e9,
        "work_dir_gb": run["work_dir_bytes"] / 1e9,
        "exit": run.get("exit_code", run.get("child_exit")),
        "step_peak_rss_gb": {k: v / 1e9 for k, v in run.get("step_peak_rss_bytes", {}).items()},
        "step_end_rss_gb": {k: v / 1e9 for k, v in run.get("step_end_rss_bytes", {}).items()},
    }
    row["read_inflate_ratio"] = (row["responses_s"] / row["zlib_s"]) if row["responses_s"] and row["zlib_s"] else None
    return row


def print_table(rows: list[dict]) -> None:
    def f(v, nd=1):
        return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))

    head = [
        "grid",
        "voxels",
        "runs",
        "gz GB",
        "gzip -dc s",
        "zlib s",
        "threads",
        "read s (sum)",
        "responses s",
        "ratio",
        "features s",
        "fit s (each space)",
        "NC s",
        "contrasts s",
        "maps s",
        "surf s",
        "report s",
        "app s",
        "RSS@resp GB",
        "peak RSS GB",
        "work GB",
    ]
    print(" | ".join(head))
    for r in rows:
        fits = ", ".join(f"{k.split(':')[-1]} {v:.1f}" for k, v in r["fit_s"].items())
        print(
            " | ".join(
                [
                    r["grid"],
                    f(r["voxels"]),
                    f(r["runs"]),
                    f(r["bold_gz_gb"], 2),
                    f(r["gzip_dc_s"]),
                    f(r["zlib_s"]),
                    f(r["read_threads"]),
                    f(r["read_thread_s"]),
                    f(r["responses_s"]),
                    f(r["read_inflate_ratio"], 2),
                    f(r["features_s"]),
                    fits,
                    f(r["noise_ceiling_s"]),
                    f(r["contrasts_s"]),
                    f(r["maps_s"]),
                    f(r["surfaces_s"]),
                    f(r["report_s"]),
                    f(r["app_s"]),
                    f(r["rss_after_responses_gb"], 2),
                    f(r["peak_rss_gb"], 2),
                    f(r["work_dir_gb"], 2),
                ]
            )
        )


def print_step_peaks(rows: list[dict]) -> None:
    """Peak RSS of each participant step (GB), one column per grid."""
    steps = list(dict.fromkeys(k for r in rows for k in r.get("step_peak_rss_gb", {})))
    if not steps:
        return
    print(
        "peak RSS per step, GB (end-of-step RSS in brackets): step | "
        + " | ".join(f"{r['grid']} ({r['voxels']} voxels)" for r in rows)
    )
    for step in steps:
        cells = []
        for r in rows:
            peak, end = r.get("step_peak_rss_gb", {}).get(step), r.get("step_end_rss_gb", {}).get(step)
            cells.append("-" if peak is None else f"{peak:.2f} ({end:.2f})")
        print(f"  {step} | " + " | ".join(cells))


#: Steps of the app's participant log that run before the first fit and hold the single trials.
BEFORE_FITS = "split, noise ceiling, masks"


def memory_model(rows: list[dict], voxels: int = 200_000) -> dict | None:
    """Peak RSS split by phase, as lines against voxels (bytes per voxel), and what they give at ``voxels``.

    A straight line through the whole run's peaks overstates large grids: at
    small ones every voxel fits in one batch of the ridge fit, so the fit's
    working memory grows with the voxels, but its batches are capped (half the
    RAM available when it starts, or what ``--mem`` leaves). So three lines:

    * ``other``: the largest peak of the steps that are not fits (reading, the
      responses, the noise ceiling, features, maps, surfaces, report);
    * ``resident``: the RSS when the fits start (image means, test rows,
      contrast sums, features): what a fit cannot free;
    * ``fit_working``: the first fit's peak minus the RSS when it started,
      while one batch holds every voxel: the most a fit would ever take.

    At ``voxels`` the peak is ``max(other, resident + the fits' batches)``,
    the batches ``min(fit_working, budget)``; the smallest ``--mem`` that
    keeps every voxel in one batch is ``resident + fit_working``, and any
    ``--mem`` above ``max(other, resident + 1 GB)`` runs (in more batches).
    """
    pts = []
    for r in rows:
        peaks, ends = r.get("step_peak_rss_gb") or {}, r.get("step_end_rss_gb") or {}
        if not r.get("voxels") or not peaks:
            continue
        fits = [v for k, v in peaks.items() if k.startswith("fit ")]  # in the order they ran
        other = max(v for k, v in peaks.items() if not k.startswith("fit "))
        resident = max(ends.get(BEFORE_FITS, 0.0), ends.get("maps and tables", 0.0))
        first = fits[0] - ends.get(BEFORE_FITS, 0.0) if fits else 0.0
        pts.append((r["voxels"], other, resident, first))
    if len(pts) < 2:
        return None
    import numpy as np

    v = np.array([p[0] for p in pts], float)
    out = {"voxels": voxels, "from_voxels": [int(x) for x in v]}
    for i, name in ((1, "other_peak_gb"), (2, "resident_at_fits_gb"), (3, "fit_working_gb")):
        y = np.array([p[i] for p in pts])
        slope, icpt = np.polyfit(v, y, 1)
        out[name] = {
            "measured": [round(float(x), 3) for x in y],
            "bytes_per_voxel": round(float(slope * 1e9)),
            "intercept_gb": round(float(icpt), 3),
            "at_voxels_gb": round(float(icpt + slope * voxels), 2),
        }
    other, resident, working = (
        out[k]["at_voxels_gb"] for k in ("other_peak_gb", "resident_at_fits_gb", "fit_working_gb")
    )
    out["mem_one_batch_gb"] = round(resident + working, 2)
    out["mem_min_gb"] = round(max(other, resident + 1.0), 2)
    return out


def print_memory_model(model: dict) -> None:
    v = model["voxels"]
    print(f"MEMORY against voxels (lines through {model['from_voxels']} voxels; at {v:,} an extrapolation):")
    for key, what in (
        ("other_peak_gb", "peak of the steps other than fits"),
        ("resident_at_fits_gb", "RSS when the fits start"),
        ("fit_working_gb", "a fit's working memory, all voxels in one batch"),
    ):
        m = model[key]
        print(
            f"  {what}: measured {m['measured']} GB, {m['bytes_per_voxel']:,} bytes/voxel + "
            f"{m['intercept_gb']} GB; at {v:,} voxels {m['at_voxels_gb']} GB"
        )
    print(
        f"  at {v:,} voxels: --mem {model['mem_min_gb']} GB is enough (the fits then run in batches); "
        f"{model['mem_one_batch_gb']} GB would fit every voxel in one batch; without --mem the batches take "
        "half the RAM available when each fit starts"
    )


def extrapolate(rows: list[dict], voxels: int = 200_000) -> dict | None:
    """Least-squares line of peak RSS and work-dir size against voxels, at ``voxels`` (an extrapolation)."""
    pts = [(r["voxels"], r["peak_rss_gb"], r["work_dir_gb"]) for r in rows if r["voxels"]]
    if len(pts) < 2:
        return None
    import numpy as np

    v = np.array([p[0] for p in pts], float)
    out = {"voxels": voxels, "from_grids": [r["grid"] for r in rows]}
    for i, name in ((1, "peak_rss_gb"), (2, "work_dir_gb")):
        slope, icpt = np.polyfit(v, np.array([p[i] for p in pts]), 1)
        out[name] = round(float(icpt + slope * voxels), 2)
        out[name + "_per_100k_voxels"] = round(float(slope * 1e5), 2)
    return out


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    app_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    if argv and argv[0] == "_child":
        cp = argparse.ArgumentParser()
        cp.add_argument("_child")
        cp.add_argument("--bids", type=Path, required=True)
        cp.add_argument("--work", type=Path, required=True)
        cp.add_argument("--json", type=Path, required=True)
        cp.add_argument("--spaces", nargs="+", required=True)
        cp.add_argument("--read-threads", type=int)
        cp.add_argument("--responses-mem-gb", type=float)
        ns = cp.parse_args(argv)
        ns.app_args = app_args
        res = child(ns)
        ns.json.write_text(json.dumps(res))
        return 0 if res.get("exit_code") == 0 else 1

    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    ap.add_argument("--quick", action="store_true", help=f"grids {' '.join(QUICK_GRIDS)}, 512-column spaces")
    ap.add_argument("--grids", nargs="+", type=_grid, help=f"voxel grids (default {' '.join(FULL_GRIDS)})")
    ap.add_argument("--n-features", type=int, help="columns of each user space (default 2048, --quick 512)")
    ap.add_argument("--bids", type=Path, help="an existing dataset instead of synthetic ones (one participant)")
    ap.add_argument("--participant", default="CSI1")
    ap.add_argument(
        "--sessions",
        type=int,
        default=FALLBACK["n_sessions"],
        help="synthetic sessions (10 runs of 37 trials each; default 15, BOLD5000's)",
    )
    ap.add_argument("--read-threads", type=int, help="runs read at once (default: the app's default)")
    ap.add_argument("--responses-mem-gb", type=float, help="memory ceiling passed to the responses step")
    ap.add_argument(
        "--spaces",
        nargs="+",
        metavar="SPACE",
        help=f"feature spaces to fit (default: user:{', user:'.join(SPACES)} and baseline:gabor)",
    )
    ap.add_argument(
        "--skip-inflate",
        action="store_true",
        help="do not time gzip -dc and zlib on the inputs (minutes for a whole-brain participant)",
    )
    ap.add_argument("--keep-float32", action="store_true", help="leave the generator's float32 BOLD as it is")
    ap.add_argument(
        "--scratch",
        type=Path,
        default=Path("participant_scale_out"),
        help="folder for datasets and runs (replaced per grid)",
    )
    ap.add_argument("--keep", action="store_true", help="keep each grid's dataset and outputs")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--summary",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="print the tables and the memory model of saved --json files (their rows joined) and exit",
    )
    ns = ap.parse_args(argv)
    ns.app_args = app_args
    if ns.summary:
        rows = sorted((r for f in ns.summary for r in json.loads(f.read_text())["rows"]), key=lambda r: r["voxels"])
        print_step_peaks(rows)
        print_table(rows)
        model = memory_model(rows)
        if model:
            print_memory_model(model)
        return 0
    grids = ns.grids or [_grid(g) for g in (QUICK_GRIDS if ns.quick else FULL_GRIDS)]
    n_features = ns.n_features or (512 if ns.quick else 2048)
    # BOLD5000's 113 repeated images, in proportion to the sessions asked for
    counts = dict(FALLBACK, n_sessions=ns.sessions, n_repeated=max(2, round(FALLBACK["n_repeated"] * ns.sessions / 15)))
    counts = FALLBACK if counts == FALLBACK else counts
    ns.scratch.mkdir(parents=True, exist_ok=True)
    rows, records = [], []
    targets = [("given", ns.bids)] if ns.bids else [("x".join(map(str, g)), g) for g in grids]
    for label, target in targets:
        work = ns.scratch / f"run-{label}"
        if work.exists():
            shutil.rmtree(work)
        rec = {"grid": label}
        if ns.bids:
            bids = ns.bids
        else:
            root = ns.scratch / f"data-{label}"
            print(f"== {label}: generating", flush=True)
            rec["generate"] = generate(root, target, n_features, 0, counts)
            bids = root / "bids"
            if not ns.keep_float32:
                rec["to_int16_seconds"] = round(to_int16(bold_files(bids, ns.participant)), 1)
        print(f"== {label}: running", flush=True)
        rec.update(measure(bids, ns.participant, work, ns))
        row = summarize(label, rec)
        rows.append(row)
        records.append(rec)
        if not ns.keep:
            shutil.rmtree(work, ignore_errors=True)
            if not ns.bids:
                shutil.rmtree(ns.scratch / f"data-{label}", ignore_errors=True)
        print_table(rows)
    extra = extrapolate(rows)
    model = memory_model(rows)
    result = {
        "rows": rows,
        "records": records,
        "extrapolation": extra,
        "memory_model": model,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "n_features": n_features,
        "app_args": app_args,
    }
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps(result, indent=2, default=str))
    print()
    print_step_peaks(rows)
    print_table(rows)
    if extra:
        print(
            f"EXTRAPOLATION (least-squares line over {len(rows)} grids, not a measurement): at "
            f"{extra['voxels']:,} voxels peak RSS {extra['peak_rss_gb']} GB, work dir {extra['work_dir_gb']} GB"
        )
    if model:
        print_memory_model(model)
    last = rows[-1]
    ratio = last["read_inflate_ratio"]
    print(f"read/inflate ratio: {'nan' if ratio is None else f'{ratio:.1f}'}x, peak RSS {last['peak_rss_gb']:.1f} GB")
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
