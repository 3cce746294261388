"""Do two builds of bids_taskenc write the same derivatives?  Proof that a refactoring changed no result.

``run DEST`` builds the demo's synthetic dataset (2 participants, MNI 5 mm) under ``DEST`` and runs the participant
level (every demo space, a 3D-vs-2D variance partitioning, a 3D-vs-2D contrast) and the group level with the
``bids_taskenc`` that ``--pythonpath`` (or the current environment) imports.  ``compare A B`` walks both output
trees and compares, file by file:

* NIfTI and GIFTI: the data arrays (NaN equals NaN), affines, shapes and dtypes;
* TSV: the tables, column by column (numbers as float64, NaN equals NaN);
* JSON sidecars: every key except provenance that changes from run to run (software versions, ``GeneratedBy``), with
  each run's own folder written as ``<ROOT>`` in every string (so command lines and paths compare too);
* HTML, SVG, PNG, figures: present in both (their text carries times and paths); run logs are skipped.

Usage, old build against new::

    git worktree add /work/old <old-commit>
    python benchmarks/same_outputs.py run /tmp/old --pythonpath /work/old
    python benchmarks/same_outputs.py run /tmp/new --pythonpath .
    python benchmarks/same_outputs.py compare /tmp/old/out /tmp/new/out

The last line says ``identical: N files`` or names what differs; the exit status is 0 only when nothing does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

# Provenance: differs between any two runs by design, so it is not part of "the same result".
VOLATILE_KEYS = {"SoftwareVersions", "GeneratedBy"}
PRESENCE_ONLY = {".html", ".svg", ".png", ".log", ".txt", ".md", ".bib", ".css", ".js"}


def _run(cmd: list[str], env: dict, cwd: Path) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=cwd)


def run_build(dest: Path, pythonpath: str | None) -> Path:
    """Build the demo dataset under ``dest`` and run both levels; return the output folder."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    if pythonpath:
        env["PYTHONPATH"] = str(Path(pythonpath).resolve())
    py = sys.executable
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    # ``python -c`` puts the working folder first on sys.path, ahead of PYTHONPATH: run from ``dest`` so that a
    # checkout in the caller's folder never shadows the one asked for
    bids, out, work = dest / "bids", dest / "out", dest / "work"
    features = bids / "derivatives" / "features"
    _run(
        [
            py,
            "-c",
            "import bids_taskenc.testing.cli as c, sys; sys.exit(c.main())",
            str(bids),
            "--participants",
            "2",
            "--template",
            "MNI152NLin2009cAsym",
        ],
        env,
        dest,
    )
    spaces = subprocess.run(
        [py, "-m", "bids_taskenc.testing.demo", str(features)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=dest,
    ).stdout.split()
    cli = [py, "-c", "import bids_taskenc.cli.run as r, sys; sys.exit(r.main())"]
    _run(
        cli
        + [
            str(bids),
            str(out),
            "participant",
            "--space",
            "MNI152NLin2009cAsym",
            "--features-dir",
            str(features),
            "--work-dir",
            str(work),
            "--seed",
            "0",
            "--offline",
            "--variance-partitioning",
            "group:3D",
            "group:2D",
            "--feature-spaces",
            *spaces,
        ],
        env,
        dest,
    )
    _run(cli + [str(bids), str(out), "group", "--offline"], env, dest)
    return out


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _compare_nifti(a: Path, b: Path) -> str | None:
    ia, ib = nib.load(a), nib.load(b)
    if not np.array_equal(ia.affine, ib.affine):
        return "affine differs"
    da, db = np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj)
    if not _same_array(da, db):
        return _describe_difference(da, db)
    return None


def _compare_gifti(a: Path, b: Path) -> str | None:
    ga, gb = nib.load(a), nib.load(b)
    if len(ga.darrays) != len(gb.darrays):
        return "number of data arrays differs"
    for i, (x, y) in enumerate(zip(ga.darrays, gb.darrays)):
        if not _same_array(x.data, y.data):
            return f"data array {i}: {_describe_difference(x.data, y.data)}"
    return None


def _describe_difference(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"shape/dtype {a.shape}/{a.dtype} vs {b.shape}/{b.dtype}"
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    nan_mismatch = int((np.isnan(fa) != np.isnan(fb)).sum())
    both = ~np.isnan(fa) & ~np.isnan(fb)
    diff = np.abs(fa[both] - fb[both])
    return (
        f"{int((diff > 0).sum())} values differ (max |diff| {diff.max() if diff.size else 0:.3g}), "
        f"{nan_mismatch} NaN mismatches"
    )


def _compare_tsv(a: Path, b: Path) -> str | None:
    ta = pd.read_csv(a, sep="\t", keep_default_na=True)
    tb = pd.read_csv(b, sep="\t", keep_default_na=True)
    if list(ta.columns) != list(tb.columns) or len(ta) != len(tb):
        return f"columns/rows {list(ta.columns)}x{len(ta)} vs {list(tb.columns)}x{len(tb)}"
    for col in ta.columns:
        x, y = ta[col], tb[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            if not np.array_equal(x.to_numpy(float), y.to_numpy(float), equal_nan=True):
                return f"column {col}: {_describe_difference(x.to_numpy(float), y.to_numpy(float))}"
        elif not x.astype(str).equals(y.astype(str)):
            return f"column {col} differs"
    return None


def _strip(value, root: str):
    """``value`` without volatile keys, with the run's folder (``root``) written as ``<ROOT>`` in every string."""
    if isinstance(value, dict):
        return {k: _strip(v, root) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<ROOT>")
    return value


def _compare_json(a: Path, b: Path, roots: tuple[str, str]) -> str | None:
    ja = _strip(json.loads(a.read_text()), roots[0])
    jb = _strip(json.loads(b.read_text()), roots[1])
    if ja != jb:
        keys = sorted(k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k)) if isinstance(ja, dict) else []
        return f"keys differ: {keys[:8]}"
    return None


def compare_trees(a: Path, b: Path) -> list[str]:
    """Every difference between the output trees ``a`` and ``b``, one line each (empty: the same)."""
    # run logs are named by their start time; their text is not a result
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.relative_to(a).parts[0] != "logs"}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.relative_to(b).parts[0] != "logs"}
    roots = (str(a.resolve().parent), str(b.resolve().parent))
    problems = [f"only in {a}: {p}" for p in sorted(files_a - files_b)]
    problems += [f"only in {b}: {p}" for p in sorted(files_b - files_a)]
    checked = 0
    for rel in sorted(files_a & files_b):
        if rel.parts[0] == "figures":
            continue
        name = rel.name
        if name.endswith((".nii", ".nii.gz")):
            why = _compare_nifti(a / rel, b / rel)
        elif name.endswith(".gii"):
            why = _compare_gifti(a / rel, b / rel)
        elif name.endswith(".tsv"):
            why = _compare_tsv(a / rel, b / rel)
        elif name.endswith(".json"):
            why = _compare_json(a / rel, b / rel, roots)
        elif Path(name).suffix in PRESENCE_ONLY:
            continue
        else:
            why = None if (a / rel).read_bytes() == (b / rel).read_bytes() else "bytes differ"
        checked += 1
        if why:
            problems.append(f"{rel}: {why}")
    print(f"compared {checked} files by content ({len(files_a & files_b)} present in both)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="build the demo dataset and run both levels under DEST")
    run.add_argument("dest", type=Path)
    run.add_argument("--pythonpath", help="checkout whose bids_taskenc to run (default: the installed one)")
    cmp = sub.add_parser("compare", help="compare two output folders")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        print(f"outputs: {run_build(args.dest, args.pythonpath)}")
        return 0
    problems = compare_trees(args.a, args.b)
    for line in problems:
        print(line)
    print(f"identical: {len(problems) == 0}; {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
