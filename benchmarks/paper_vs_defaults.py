"""Our defaults against ``--preset paper`` (Wang et al.'s 2019 code) on a synthetic dataset with a planted truth.

One participant of the app's synthetic BOLD5000-shaped dataset (``bids_taskenc.testing.make_synthetic_dataset``:
three clusters of feature spaces drive their planted regions, a null space drives nothing) is fitted by the whole
participant workflow with

* ``defaults``: our defaults (the command line's);
* ``paper``: ``preset_settings("paper")``, every choice of the paper's code;
* one run per difference, our defaults with that one choice of the paper's (``--only-presets`` skips them),

and every map is read back against the truth: per feature space the voxels declared at q < 0.05 (detections),
power inside the planted region, false-discovery proportion (FDP), mean test R² of the driven and of the null
voxels, and, against the defaults, the correlation of the r maps over the brain and the voxels declared by one
run only (inside / outside the truth). docs/paper.md holds a measured output.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/paper_vs_defaults.py [--noise-sd 1.5] [--trials-per-run 37] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_taskenc.outputs.naming import derivative_path
from bids_taskenc.testing import make_synthetic_dataset
from bids_taskenc.workflow import ParticipantSettings, run_participant
from bids_taskenc.workflow.presets import PRESETS, preset_settings

FDR = 0.05
SUB = "CSI1"


def machine() -> str:
    """CPU model and count (``/proc/cpuinfo`` where there is one)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next(x.split(":", 1)[1].strip() for x in lines if x.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} CPU(s), Python {platform.python_version()}"


def single_choices() -> dict[str, ParticipantSettings]:
    """Our defaults with one of the paper's choices each (the ones that differ from ours)."""
    base = ParticipantSettings()
    out = {}
    for key, value in PRESETS["paper"].values.items():
        section, _, field = key.partition(".")
        if getattr(getattr(base, section), field) == value:
            continue  # a choice we share (response model, lags, test fraction, FDR level)
        out[f"only {field}={value}"] = base.replace(**{section: getattr(base, section).replace(**{field: value})})
    return out


def read_map(out: Path, label: str, stat: str) -> np.ndarray:
    path = derivative_path(
        out, sub=SUB, task="5000scenes", space="T1w", desc=label, stat=stat, suffix="statmap", extension=".nii.gz"
    )
    return np.asarray(nib.load(path).dataobj, dtype=np.float64)


def fit_run(ds, settings: ParticipantSettings, out: Path, work: Path) -> float:
    from bids_taskenc.workflow import FeatureSettings, OutputSettings

    settings = settings.replace(
        features=FeatureSettings(features_dir=ds.features_dir),
        outputs=OutputSettings(work_dir=work),
        comparisons=settings.comparisons.replace(contrast_bootstrap=0),
    )
    t0 = time.perf_counter()
    run_participant(ds.bids_dir, out, SUB, settings)
    return time.perf_counter() - t0


def space_rows(ds, out: Path, reference: Path | None) -> list[dict]:
    brain = ds.brain_masks[SUB]
    rows = []
    for space, cluster in ds.feature_spaces.items():
        q, r, r2 = (read_map(out, space, s)[brain] for s in ("q", "r", "rsquared"))
        truth = ds.truth_masks[SUB][cluster][brain] if cluster else np.zeros(brain.sum(), bool)
        sig = q < FDR
        row = {
            "space": space,
            "cluster": cluster or "null",
            "detections": int(sig.sum()),
            "power": float((sig & truth).sum() / truth.sum()) if truth.any() else float("nan"),
            "fdp": float((sig & ~truth).sum() / max(sig.sum(), 1)),
            "r2_driven": float(r2[truth].mean()) if truth.any() else float("nan"),
            "r2_null": float(r2[~truth].mean()),
            "neg_r_declared": int((sig & (r < 0)).sum()),
        }
        if reference is not None:
            q0, r0 = (read_map(reference, space, s)[brain] for s in ("q", "r"))
            sig0 = q0 < FDR
            row["r_map_corr"] = float(np.corrcoef(r, r0)[0, 1])
            row["only_here_in_truth"] = int((sig & ~sig0 & truth).sum())
            row["only_here_outside"] = int((sig & ~sig0 & ~truth).sum())
            row["only_defaults_in_truth"] = int((sig0 & ~sig & truth).sum())
            row["only_defaults_outside"] = int((sig0 & ~sig & ~truth).sum())
        rows.append(row)
    return rows


def summary(name: str, rows: list[dict], seconds: float) -> str:
    """One line over every space and dataset seed: driven spaces' power and FDP, the null space's detections."""
    driven = [w for w in rows if w["cluster"] != "null"]
    null = [w for w in rows if w["cluster"] == "null"]
    line = (
        f"{name:<28} {sum(w['detections'] for w in driven):>6} {np.mean([w['power'] for w in driven]):>6.3f} "
        f"{np.mean([w['fdp'] for w in driven]):>6.3f} {np.mean([w['r2_driven'] for w in driven]):>9.4f} "
        f"{np.mean([w['r2_null'] for w in rows]):>8.4f} {sum(w['detections'] for w in null):>5} "
        f"{sum(w['neg_r_declared'] for w in rows):>4}"
    )
    if "r_map_corr" in rows[0]:
        line += (
            f" {np.mean([w['r_map_corr'] for w in rows]):>7.3f} {sum(w['only_here_in_truth'] for w in rows):>5}"
            f" {sum(w['only_here_outside'] for w in rows):>5} {sum(w['only_defaults_in_truth'] for w in rows):>5}"
            f" {sum(w['only_defaults_outside'] for w in rows):>5}"
        )
    return line + f" {seconds:>6.1f}"


SUMMARY_HEAD = (
    f"{'run':<28} {'det':>6} {'power':>6} {'FDP':>6} {'R2 drv':>9} {'R2 null':>8} {'null':>5} {'r<0':>4}"
    f" {'corr r':>7} {'+in':>5} {'+out':>5} {'-in':>5} {'-out':>5} {'sec':>6}"
)


def show(name: str, rows: list[dict], seconds: float) -> None:
    print(f"\n## {name} ({seconds:.1f} s)")
    head = (
        f"{'space':<10} {'cluster':<8} {'det':>5} {'power':>6} {'FDP':>6} {'R2 driven':>10} {'R2 null':>9} {'r<0':>4}"
    )
    compare = "r_map_corr" in rows[0]
    if compare:
        head += f" {'corr r':>7} {'+in':>4} {'+out':>4} {'-in':>4} {'-out':>4}"
    print(head)
    for w in rows:
        line = (
            f"{w['space']:<10} {w['cluster']:<8} {w['detections']:>5} {w['power']:>6.3f} {w['fdp']:>6.3f} "
            f"{w['r2_driven']:>10.4f} {w['r2_null']:>9.4f} {w['neg_r_declared']:>4}"
        )
        if compare:
            line += (
                f" {w['r_map_corr']:>7.3f} {w['only_here_in_truth']:>4} {w['only_here_outside']:>4}"
                f" {w['only_defaults_in_truth']:>4} {w['only_defaults_outside']:>4}"
            )
        print(line)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--noise-sd", type=float, default=1.5, help="the generator's noise (its default is 0.5)")
    p.add_argument("--sessions", type=int, default=3)
    p.add_argument("--runs-per-session", type=int, default=4)
    p.add_argument("--trials-per-run", type=int, default=37)
    p.add_argument("--repeated", type=int, default=12, help="images shown four times")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="datasets' seeds (the fits use seed 0)")
    p.add_argument("--per-space", action="store_true", help="also a table per feature space, dataset and run")
    p.add_argument("--only-presets", action="store_true", help="defaults and paper only, not each choice alone")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    print(f"# paper_vs_defaults: {' '.join(sys.argv)}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine()}")
    runs = {"defaults": ParticipantSettings(), "paper": preset_settings("paper")}
    if not args.only_presets:
        runs.update(single_choices())
    rows: dict[str, list[dict]] = {name: [] for name in runs}
    seconds: dict[str, float] = dict.fromkeys(runs, 0.0)
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            ds = make_synthetic_dataset(
                tmp / "data",
                n_participants=1,
                n_sessions=args.sessions,
                runs_per_session=args.runs_per_session,
                trials_per_run=args.trials_per_run,
                n_repeated=args.repeated,
                noise_sd=args.noise_sd,
                seed=seed,
            )
            print(
                f"# dataset seed {seed}: {int(ds.brain_masks[SUB].sum())} brain voxels, {len(ds.image_names)} images, "
                f"{sum(int(m.sum()) for m in ds.truth_masks[SUB].values())} planted voxels, noise sd {args.noise_sd}"
            )
            reference = None
            for i, (name, settings) in enumerate(runs.items()):
                out = tmp / f"out{i}"
                t = fit_run(ds, settings, out, tmp / f"work{i}")
                found = space_rows(ds, out, reference)
                rows[name] += found
                seconds[name] += t
                if args.per_space:
                    show(f"{name}, dataset seed {seed}", found, t)
                reference = reference or out
    print(f"\n## summed over {len(args.seeds)} dataset(s) and the feature spaces")
    print(SUMMARY_HEAD)
    for name in runs:
        print(summary(name, rows[name], seconds[name]))
    print(
        "\ncolumns: det = voxels at q < 0.05 of the driven spaces; power, FDP = their mean over the driven spaces "
        "(power: share of the planted region declared; FDP: share of the declared outside it); R2 drv = mean test "
        "R² of the planted voxels (driven spaces), R2 null = of the other voxels (all spaces); null = voxels the "
        "null space declared; r<0 = declared voxels with negative r; corr r = mean correlation of the r maps with "
        "the defaults' over the brain; +in/+out = declared here but not by the defaults, inside/outside the truth; "
        "-in/-out = declared by the defaults only; sec = seconds of the participant runs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
