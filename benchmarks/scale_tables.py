"""``participant_scale.py``'s tables: one row per grid, the RSS peaks per step, and memory against voxels.

Part of ``benchmarks/participant_scale.py`` (see its docstring).
"""

from __future__ import annotations


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
    out: dict = {"voxels": voxels, "from_voxels": [int(x) for x in v]}
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
