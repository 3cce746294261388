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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_child import SPACES, child, measure  # noqa: E402
from scale_data import FALLBACK, bold_files, generate, to_int16  # noqa: E402
from scale_tables import (  # noqa: E402
    extrapolate,
    memory_model,
    print_memory_model,
    print_step_peaks,
    print_table,
    summarize,
)

HERE = Path(__file__).resolve().parent
#: Grids (voxels, 3 mm boxes; the brain ellipsoid takes about half): about 50k, 100k and 200k brain voxels.
FULL_GRIDS = ["44x52x44", "56x66x56", "70x84x70"]
QUICK_GRIDS = ["24x28x24", "32x38x32", "40x47x40"]


def _grid(text: str) -> tuple[int, int, int]:
    parts = tuple(int(x) for x in re.split(r"[x, ]+", text.strip()))
    if len(parts) != 3 or min(parts) < 8:
        raise argparse.ArgumentTypeError(f"grid must be X x Y x Z voxels, each >= 8: {text!r}")
    return parts


def child_main(argv: list[str], app_args: list[str]) -> int:
    """``participant_scale.py _child ...``: the timed app run, its record to ``--json``."""
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


def parser() -> argparse.ArgumentParser:
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
    return ap


def print_summary(files: list[Path]) -> int:
    """``--summary``: the tables and the memory model of saved ``--json`` files."""
    rows = sorted((r for f in files for r in json.loads(f.read_text())["rows"]), key=lambda r: r["voxels"])
    print_step_peaks(rows)
    print_table(rows)
    model = memory_model(rows)
    if model:
        print_memory_model(model)
    return 0


def run_targets(ns, n_features: int, counts: dict) -> tuple[list[dict], list[dict]]:
    """Each grid (or the ``--bids`` dataset): make the data, run the app, one summary row; rows and records."""
    grids = ns.grids or [_grid(g) for g in (QUICK_GRIDS if ns.quick else FULL_GRIDS)]
    rows, records = [], []
    targets = [("given", ns.bids)] if ns.bids else [("x".join(map(str, g)), g) for g in grids]
    for label, target in targets:
        work = ns.scratch / f"run-{label}"
        if work.exists():
            shutil.rmtree(work)
        rec: dict = {"grid": label}
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
        rows.append(summarize(label, rec))
        records.append(rec)
        if not ns.keep:
            shutil.rmtree(work, ignore_errors=True)
            if not ns.bids:
                shutil.rmtree(ns.scratch / f"data-{label}", ignore_errors=True)
        print_table(rows)
    return rows, records


def report(rows: list[dict], extra: dict | None, model: dict | None) -> int:
    """The closing tables, the extrapolation, the memory model and the ``read/inflate ratio`` line."""
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


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    app_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    if argv and argv[0] == "_child":
        return child_main(argv, app_args)
    ns = parser().parse_args(argv)
    ns.app_args = app_args
    if ns.summary:
        return print_summary(ns.summary)
    n_features = ns.n_features or (512 if ns.quick else 2048)
    # BOLD5000's 113 repeated images, in proportion to the sessions asked for
    counts = dict(FALLBACK, n_sessions=ns.sessions, n_repeated=max(2, round(FALLBACK["n_repeated"] * ns.sessions / 15)))
    counts = FALLBACK if counts == FALLBACK else counts
    ns.scratch.mkdir(parents=True, exist_ok=True)
    rows, records = run_targets(ns, n_features, counts)
    extra, model = extrapolate(rows), memory_model(rows)
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
    return report(rows, extra, model)


if __name__ == "__main__":
    sys.exit(main())
