"""``participant_scale.py``'s data: the synthetic BOLD5000-counted participant, its BOLD files as int16,
and the time ``gzip -dc`` and zlib take to inflate them (the floor for reading).

Part of ``benchmarks/participant_scale.py`` (see its docstring).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

#: Fallback counts when the generator has no --bold5000-counts.
FALLBACK = {"n_sessions": 15, "runs_per_session": 10, "trials_per_run": 37, "n_repeated": 113}


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
    how: dict
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
        img: Any = nib.load(path)
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


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
