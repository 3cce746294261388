"""A whole BOLD5000-sized participant on the CPU with all 21 Taskonomy encoders: a figure to plan with.

    python benchmarks/participant_plan.py [--grids 18x18x12 24x28x24] [--target-voxels 51000]
        [--feature-images 32] [--precisions exact fast] [--json FILE] [--scratch DIR] [--keep]

Per grid it writes one synthetic participant with BOLD5000's counts (``bids_taskenc-synthetic
--bold5000-counts --grid X Y Z --preproc-dtype int16 --surfaces``: 142 runs of 194 volumes,
5,254 trials of 4,916 images, int16 BOLD as BOLD5000 stores it) and 21 seeded random checkpoints
in the published format (``make_random_checkpoint``: the real architecture, read offline from a
weights store), and runs the app's participant level on it in a child process with every
default analysis (``benchmarks/participant.py run``: each step timed), 21 ``taskonomy:`` spaces.

What is measured and what is scaled (the output says which, per line):

* Featurization is measured on a seeded sample of ``--feature-images`` stimuli inside the app's
  own call (``benchmarks/plan_features.py``), in each ``--precisions`` mode (``fast`` is the CPU's
  bf16 path where the CPU has native bf16, see ``features/cpu.py``; elsewhere it is fp32 and the
  table says so), after a warm-up on ``--warm-images`` other stimuli (weights loaded and laid
  out: timed once, not scaled). Scaled linearly to the participant's images:
  ``sample seconds x n_images / n_sample``, per encoder and in total (decode included). It is
  measured in the first grid's run only: it does not depend on voxels. The other rows of the
  feature matrices are seeded noise with the sample's column moments, so the fits run at full
  size (their time does not depend on the values; their maps mean nothing).
* Every other step runs at full size in images, trials, runs and spaces, at the grid's voxels.
  With two or more grids, the steps that grow with voxels (responses, each fit, noise ceiling,
  maps, surfaces, the rest of the participant: contrasts, ROI tables, sidecars) are read off a
  least-squares line against voxels at ``--target-voxels`` (default 51,000: the generator's
  BOLD5000-sized grid 44x52x44); a line below the largest measurement keeps the measurement. The
  others (indexing, weights check, trials, report, the app's own overhead) are the largest grid's.
  With one grid nothing is scaled in voxels and the table is at that grid's voxels.
* On the CPU the ridge engine computes the same in ``exact`` and ``fast`` (``encoding/device.py``:
  only CUDA uses TF32 under ``fast``), so the app runs once per grid (``--precision exact``) and
  only featurization differs between the columns.

Timings on a shared machine are noisy: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: Steps that grow with the voxels (scaled along a line through the grids).
VOXEL_STEPS = ["responses", "noise_ceiling", "write_maps", "surfaces", "rest_of_participant"]
#: Steps that do not (the largest grid's measurement).
FIXED_STEPS = ["index", "weights", "trials", "report"]
#: Steps whose work is one unit per feature space (scaled x 21/K when the app fits K spaces).
PER_SPACE_STEPS = {"weights", "write_maps", "surfaces"}
DEFAULT_GRIDS = ["18x18x12", "24x28x24"]


def _grid(text: str) -> tuple[int, int, int]:
    parts = tuple(int(x) for x in text.lower().replace(",", "x").split("x") if x.strip())
    if len(parts) != 3 or min(parts) < 6:
        raise argparse.ArgumentTypeError(f"grid must be X x Y x Z voxels, each >= 6: {text!r}")
    return parts[0], parts[1], parts[2]


def generate(root: Path, grid: tuple[int, int, int], seed: int) -> dict:
    """A BOLD5000-counted participant at ``grid`` in ``root/bids`` and 21 random checkpoints in ``root/models``."""
    import participant as bench  # benchmarks/participant.py

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    cmd = [sys.executable, "-m", "bids_taskenc.testing.cli", str(root / "bids"), "--participants", "1"]
    cmd += ["--bold5000-counts", "--grid", *map(str, grid), "--preproc-dtype", "int16", "--surfaces"]
    cmd += ["--seed", str(seed)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    weights = bench.make_weights(None, root / "models")
    return {
        "command": cmd[1:],
        "data_seconds": round(t_data, 1),
        "weights_seconds": round(time.perf_counter() - t0, 1),
        "n_checkpoints": len(weights),
    }


def paper_tasks() -> list[str]:
    from bids_taskenc.features.taskonomy import PAPER_TASKS

    return list(PAPER_TASKS)


def fit_tasks(k: int) -> list[str]:
    """``k`` of the paper's tasks, taken in turn from each group (3D, 2D, semantic, ...), so that the
    default 3D-vs-2D contrasts run with as few as two; all 21 in the paper's order when ``k >= 21``."""
    from bids_taskenc.features.taskonomy import TASK_GROUPS

    tasks = paper_tasks()
    if k >= len(tasks):
        return tasks
    groups: dict[str, list[str]] = {}
    for t in tasks:
        groups.setdefault(TASK_GROUPS[t], []).append(t)
    order = [g[i] for i in range(len(tasks)) for g in groups.values() if i < len(g)]
    return order[: max(1, k)]


def child(ns) -> dict:
    """In the child process: the app's timed participant run with featurization on a sample."""
    import participant as bench  # benchmarks/participant.py
    import plan_features

    record: dict = {}
    clock = plan_features.EncoderClock()
    clock.install()
    undo = plan_features.install(
        record,
        n_sample=ns.feature_images,
        n_warm=ns.warm_images,
        precisions=ns.precisions,
        seed=ns.seed,
        clock=clock,
        extra=tuple(f"taskonomy:{t}" for t in paper_tasks()),
        weights_dir=ns.models,
    )
    rois = ns.bids / "derivatives" / "spm"
    rns = argparse.Namespace(
        bids=ns.bids,
        work=ns.work,
        models=ns.models,
        device="cpu",
        precision="exact",
        tasks=fit_tasks(ns.fit_spaces),
        feature_spaces=None,
        app_args=["--roi-dir", str(rois)] if rois.is_dir() else [],
    )
    try:
        record["run"] = bench.cmd_run(rns)
    finally:
        undo()
        clock.restore()
    return record


def run_child(root: Path, work: Path, ns, n_sample: int) -> dict:
    """``child`` in a fresh process (its own imports and memory); its record."""
    out_json = work.parent / f".{work.name}-child.json"
    out_json.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "_child", "--bids", str(root / "bids")]
    cmd += ["--models", str(root / "models"), "--work", str(work), "--json", str(out_json)]
    cmd += ["--feature-images", str(n_sample), "--warm-images", str(ns.warm_images), "--seed", str(ns.seed)]
    cmd += ["--precisions", *ns.precisions, "--fit-spaces", str(ns.fit_spaces)]
    proc = subprocess.run(cmd)
    rec = json.loads(out_json.read_text()) if out_json.exists() else {}
    rec["child_exit"] = proc.returncode
    return rec


def line_at(points: Sequence[tuple[float, float]], x: float) -> tuple[float, str]:
    """Seconds at ``x`` voxels from a least-squares line through ``(voxels, seconds)`` points, and how."""
    import numpy as np

    xs = np.array([p[0] for p in points], float)
    ys = np.array([p[1] for p in points], float)
    top = float(ys[np.argmax(xs)])
    if len(points) < 2 or np.ptp(xs) == 0:
        return top, f"measured at {int(xs.max()):,} voxels (not scaled)"
    slope, icpt = np.polyfit(xs, ys, 1)
    value = float(icpt + slope * x)
    sizes = " and ".join(f"{int(v):,}" for v in xs)
    if value < ys.max():
        return float(ys.max()), f"line through {sizes} voxels gave {value:.1f} s at {int(x):,}: largest measured kept"
    return value, f"line through {sizes} voxels, at {int(x):,}"


def plan_features_rows(feat: dict, mode: str) -> tuple[list[tuple[str, float, str]], float]:
    """Rows (label, seconds, how) of one precision's featurization scaled to the participant's images."""
    m = feat["modes"][mode]
    n, k = feat["n_images"], feat["n_sample"]
    factor = n / k
    how = f"measured on {k} images, x {n:,}/{k}"
    rows = [(f"features {name.split(':')[-1]}", sec * factor, how) for name, sec in m["encoder_seconds"].items()]
    rows.append(("features: decode, batching, cache", m["decode_and_rest_seconds"] * factor, how))
    rows.append(("features: weights load + warm-up", m["warmup_seconds"], f"measured once ({feat['n_warm']} images)"))
    total = m["warmup_seconds"] + m["sample_seconds"] * factor
    return rows, total


def per_space(rows: list[tuple[str, float, str]], k: int, n_spaces: int) -> list[tuple[str, float, str]]:
    """Scale the per-space steps (weights check, maps, surfaces) measured with ``k`` spaces to ``n_spaces``."""
    if k >= n_spaces:
        return rows
    return [
        (label, sec * n_spaces / k, f"{how}; x {n_spaces}/{k} spaces")
        if label in PER_SPACE_STEPS
        else (label, sec, how)
        for label, sec, how in rows
    ]


def fit_rows(voxels: list[int], runs: list[dict], target: float, n_spaces: int) -> list[tuple[str, float, str]]:
    """Each fitted space's seconds at ``target`` voxels; with fewer than ``n_spaces`` fitted, one more row for
    the others (each 4,916 x 2,048 like the measured ones: their mean each)."""
    big = runs[voxels.index(max(voxels))]
    rows = []
    for space in big["fit_seconds_per_space"]:
        pts = [(v, r["fit_seconds_per_space"][space]) for v, r in zip(voxels, runs)]
        rows.append((f"fit {space.split(':')[-1]}", *line_at(pts, target)))
    k = len(rows)
    if 0 < k < n_spaces:
        mean = sum(r[1] for r in rows) / k
        how = f"the mean of the {k} fits above, x {n_spaces - k} (the same shape: 2,048 columns each)"
        rows.append((f"fit, the other {n_spaces - k} spaces", mean * (n_spaces - k), how))
    return rows


def plan(records: list[dict], target: float, n_spaces: int = 21) -> dict:
    """The planned seconds of each step at ``target`` voxels, per precision (see the module docstring)."""
    runs = [r["run"] for r in records]
    voxels = [r["n_voxels"] for r in runs]
    big = runs[voxels.index(max(voxels))]
    k = len(big["fit_seconds_per_space"])
    steps = [
        (step, *line_at([(v, r["steps_seconds"].get(step, 0.0)) for v, r in zip(voxels, runs)], target))
        for step in VOXEL_STEPS
    ]
    fixed = [(s, big["steps_seconds"].get(s, 0.0), "largest grid, not scaled") for s in FIXED_STEPS]
    timed = sum(v for key, v in big["steps_seconds"].items() if key != "participant")
    overhead = big["app_seconds"] - timed  # below 0 where a timed function ran inside another (counted twice)
    fixed.append(("app overhead (outside the timed steps)", max(0.0, overhead), "largest grid, not scaled"))
    fits = fit_rows(voxels, runs, target, n_spaces)
    feat = records[0]["features"]
    out = {
        "target_voxels": target,
        "grid_voxels": voxels,
        "n_images": feat["n_images"],
        "fitted_spaces": k,
        "n_spaces": n_spaces,
        "precisions": {},
    }
    shared = per_space(steps + fixed, k, n_spaces) + fits
    for mode in sorted(feat["modes"], key=["exact", "fast"].index):
        frows, ftotal = plan_features_rows(feat, mode)
        out["precisions"][mode] = {
            "precision_used": feat["modes"][mode]["precision_used"],
            "features_rows": frows,
            "features_total": ftotal,
            "total": ftotal + sum(r[1] for r in shared),
        }
    out["shared_rows"] = shared
    out["fit_total"] = sum(r[1] for r in fits)
    return out


def print_plan(p: dict) -> None:
    modes = list(p["precisions"])
    head = " | ".join(f"{m} ({', '.join(p['precisions'][m]['precision_used'])})" for m in modes)
    print(
        f"\nWHOLE PARTICIPANT ON THIS CPU: {p['n_images']:,} images, 21 Taskonomy encoders, "
        f"{p['target_voxels']:,.0f} voxels (grids run: {', '.join(f'{v:,}' for v in p['grid_voxels'])} voxels)"
    )
    print(f"step | {head} | how")
    labels = [r[0] for r in p["precisions"][modes[0]]["features_rows"]]
    for i, label in enumerate(labels):
        cells = " | ".join(f"{p['precisions'][m]['features_rows'][i][1]:.1f} s" for m in modes)
        print(f"{label} | {cells} | {p['precisions'][modes[0]]['features_rows'][i][2]}")
    cells = " | ".join(f"{p['precisions'][m]['features_total']:.0f} s" for m in modes)
    print(f"FEATURES TOTAL | {cells} | sum of the above")
    for label, sec, how in p["shared_rows"]:
        print(f"{label} | {sec:.1f} s | same | {how}")
    print(f"FIT TOTAL | {p['fit_total']:.0f} s | same | sum of the fits")
    if p["fitted_spaces"] < p["n_spaces"]:
        print(
            f"(the app fitted {p['fitted_spaces']} of the {p['n_spaces']} spaces; contrasts, ROI tables and the "
            f"report were measured with {p['fitted_spaces']} and are not scaled: with {p['n_spaces']} they take longer)"
        )
    cells = " | ".join(
        f"{p['precisions'][m]['total']:.0f} s ({p['precisions'][m]['total'] / 3600:.2f} h)" for m in modes
    )
    print(f"TOTAL | {cells} | every row above")


def print_measured(records: list[dict]) -> None:
    """The raw measurements of each grid's run (nothing scaled)."""
    for r in records:
        run = r["run"]
        steps = ", ".join(f"{k} {v:.1f}" for k, v in run["steps_seconds"].items())
        fits = ", ".join(f"{k.split(':')[-1]} {v:.1f}" for k, v in run["fit_seconds_per_space"].items())
        print(
            f"measured, grid {r['grid']}: {run['n_voxels']:,} voxels, {run['n_images']:,} images, exit "
            f"{run['exit_code']}, app {run['app_seconds']:.0f} s; steps (s): {steps}; fits (s): {fits}"
        )
        cpu = run.get("steps_cpu_seconds", {}).get("participant")
        if cpu:  # the share of the CPUs the participant got: on a busy machine the wall times are that much longer
            wall = run["steps_seconds"]["participant"]
            print(
                f"  participant step: {wall:.0f} s wall, {cpu:.0f} s of this process's CPU time ({cpu / wall:.2f} CPUs)"
            )
        for mode, m in (r.get("features") or {}).get("modes", {}).items():
            print(
                f"  features {mode} ({', '.join(m['precision_used'])}): {r['features']['n_sample']} images in "
                f"{m['sample_seconds']:.1f} s (encoders {sum(m['encoder_seconds'].values()):.1f} s), "
                f"warm-up {m['warmup_seconds']:.1f} s"
            )


def default_precisions() -> list[str]:
    from bids_taskenc.features.cpu import native_bf16

    return ["exact", "fast"] if native_bf16() else ["exact"]


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    ap.add_argument("mode", nargs="?", default="plan", choices=["plan", "_child"], help=argparse.SUPPRESS)
    ap.add_argument("--grids", nargs="+", type=_grid, help=f"voxel grids, 3 mm (default {' '.join(DEFAULT_GRIDS)})")
    ap.add_argument("--target-voxels", type=float, default=51_000, help="voxels the plan is for (default 51,000)")
    ap.add_argument("--feature-images", type=int, default=32, help="stimuli featurized, a seeded sample (32)")
    ap.add_argument("--warm-images", type=int, default=2, help="other stimuli featurized first, untimed in the scale")
    ap.add_argument("--precisions", nargs="+", choices=["exact", "fast"], help="default: both where bf16 is native")
    ap.add_argument(
        "--fit-spaces",
        type=int,
        default=21,
        help="Taskonomy spaces the app fits (default 21, all); fewer: the per-space steps are scaled x 21/K",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scratch", type=Path, default=Path("participant_plan_out"), help="datasets and runs")
    ap.add_argument("--keep", action="store_true", help="keep the datasets and outputs")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--summary", type=Path, metavar="JSON", help="plan again from a saved --json (nothing is run)")
    ap.add_argument("--bids", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--models", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    ns.precisions = ns.precisions or default_precisions()
    return ns


def run_grids(ns) -> list[dict]:
    records = []
    for i, grid in enumerate(ns.grids or [_grid(g) for g in DEFAULT_GRIDS]):
        label = "x".join(map(str, grid))
        root, work = ns.scratch / f"data-{label}", ns.scratch / f"run-{label}"
        print(f"== {label}: generating", flush=True)
        gen = generate(root, grid, ns.seed)
        print(f"== {label}: running the app (21 encoders)", flush=True)
        rec = run_child(root, work, ns, ns.feature_images if i == 0 else 0)
        rec.update(grid=label, generate=gen, load_average_after=os.getloadavg())
        records.append(rec)
        if not ns.keep:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
        if rec["child_exit"] != 0 or "run" not in rec:
            raise SystemExit(f"grid {label}: the app's run failed (exit {rec['child_exit']})")
    return records


def main(argv=None) -> int:
    ns = parse(list(sys.argv[1:] if argv is None else argv))
    if ns.mode == "_child":
        res = child(ns)
        ns.json.write_text(json.dumps(res, default=str))
        return 0 if res.get("run", {}).get("exit_code") == 0 else 1
    if ns.summary:  # re-plan saved measurements (e.g. at another --target-voxels)
        result = json.loads(ns.summary.read_text())
    else:
        ns.scratch.mkdir(parents=True, exist_ok=True)
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        records = run_grids(ns)
        result = {
            "argv": sys.argv,
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "wall_seconds": round(time.perf_counter() - t0, 1),
            "records": records,
        }
        if ns.json:  # the measurements first: a failure below loses nothing
            ns.json.parent.mkdir(parents=True, exist_ok=True)
            ns.json.write_text(json.dumps(result, indent=2, default=str))
    result["plan"] = plan(result["records"], ns.target_voxels, len(paper_tasks()))
    print_measured(result["records"])
    print_plan(result["plan"])
    print(
        f"load average (1, 5, 15 min): before {result['load_average_before']}, after {result['load_average_after']}; "
        f"{result['cpu_count']} CPUs; {result['wall_seconds']} s of benchmark"
    )
    if ns.json and not ns.summary:
        ns.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
