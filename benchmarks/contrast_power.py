"""Power and false-discovery proportion of the 3D-vs-2D contrast maps at BOLD5000's size.

Issue 12 §1: the percentile-bootstrap p of the contrasts has a floor of
2/(B+1), so Benjamini-Hochberg over tens of thousands of voxels declared
nothing, however strong the difference. This script measures, for the
analytic p (Williams' t for a pair, the normal-theory group t for group
means; ``--contrast-p analytic``, the default) and the old bootstrap p
(1,000 resamples, ``--contrast-p bootstrap``), the fraction of true voxels
declared at q < 0.05 with the right sign (power) and the fraction of declared
voxels that are not true (FDP).

Scenarios (``--scenario``, several allowed; default ``planted shape``):

* ``planted``: the issue's simulation, 20,000 voxels, 700 test images, 100 or
  400 voxels where r(y, A) = 0.45 and r(y, B) = 0.05, the rest r = 0.2 for both.
* ``shape``: a direct simulation of one BOLD5000-sized participant: 46,536
  voxels, 737 test images (15% of 4,916), three 3D and three 2D feature
  spaces; the 3D spaces drive one region of 552 voxels (test r from 0.1 up to
  0.69), the 2D spaces another; the spaces of a group share a latent, so their
  predictions are correlated (as Taskonomy spaces of one group are), and the
  other voxels are predicted by nothing. Contrasts: the 3D mean vs the 2D mean
  (group t) and one 3D space vs one 2D space (Williams' t). Predictions are
  made and added one space at a time, as the app does.
* ``dataset``: the synthetic BIDS generator at BOLD5000's size
  (``bids_taskenc-synthetic --grid 44 52 44 --bold5000-counts``, one
  participant, ~51,000 voxels, 142 runs, 5,254 trials) and a participant-level
  run of the app on its feature spaces; reads the contrast q maps against the
  planted truth (``--noise-sd`` sets the generator's noise: at its default
  the regions are so strong and large, 4,394 voxels, that even the old
  bootstrap p reaches BH; 1.5 gives weaker, realistic r). Slow (building alone is ~12 minutes and ~6 GB on one core);
  ``--keep DIR`` keeps the dataset and outputs.

Run: ``python benchmarks/contrast_power.py`` (planted + shape: a few minutes on
two cores, most of it the old bootstrap) or ``--scenario dataset``.

Measured (seed 0, 2 shared CPU cores), power / FDP at q < 0.05:

* planted, 100 true: analytic 1.00 / 0.074; old bootstrap 0 declared (smallest q 0.28).
  400 true: analytic 1.00 / 0.034; old bootstrap 0 declared (smallest q 0.091).
* shape: group t 0.87 (3D) and 0.86 (2D) / 0.050, 1.00 among true voxels with r >= 0.3;
  Williams' t 0.87 / 0.86 / 0.046; old bootstrap 0 declared (smallest q 0.088).
* dataset (build 450-750 s, app run ~8 min; 50,640 voxels, 737 test images): noise 0.5 (driven r
  ~0.9): analytic 1.00 / 1.00 / 0.047, old bootstrap 1.00 / 1.00 / 0.046; noise 1.5 (r up to 0.64):
  analytic 1.00 / 1.00 / 0.044, old bootstrap 1.00 / 1.00 / 0.040. The generator's regions hold
  4,394 strong voxels, more than the 2,024 that BH needs at the bootstrap's floor, so it does not
  show the failure; the old run warns all the same.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bids_taskenc.encoding.contrasts import Contrast, ContrastAccumulator

N_BOOT_OLD = 1000
FDR = 0.05


def score(
    q: np.ndarray, diff: np.ndarray, truth_pos: np.ndarray, truth_neg: np.ndarray, strong: np.ndarray | None = None
) -> dict:
    """Power (right sign, q < FDR) on each side of the truth, and the FDP of all declared voxels.

    ``strong``: also the power among these true voxels (e.g. those with a large true difference).
    """
    sig = q < FDR
    hits = (sig & truth_pos & (diff > 0)) | (sig & truth_neg & (diff < 0))
    out = {"declared": int(sig.sum()), "min_q": float(np.min(q)), "fdp": float((sig & ~hits).sum() / max(sig.sum(), 1))}
    if truth_pos.any():
        out["power_A>B"] = float((sig & truth_pos & (diff > 0)).sum() / truth_pos.sum())
    if truth_neg.any():
        out["power_B>A"] = float((sig & truth_neg & (diff < 0)).sum() / truth_neg.sum())
    if strong is not None:
        out["power_strong"] = float(hits[strong].mean())
    return out


def _line(label: str, res: dict) -> str:
    parts = [f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in res.items()]
    return f"  {label:<34} " + ", ".join(parts)


def run_accumulator(y, spaces, contrasts, make_pred, *, p_method, n_bootstrap, seed=0):
    """Add the spaces' predictions one at a time (as the app does); return {contrast: result}."""
    acc = ContrastAccumulator(y, contrasts, n_bootstrap=n_bootstrap, p_method=p_method, seed=seed)
    for space in spaces:
        acc.add(space, make_pred(space))
    return {c.name: acc.result(c.name, FDR) for c in contrasts}


def _methods(old: bool) -> list[tuple[str, str, int]]:
    out = [("analytic", "analytic", 0)]
    return out + ([(f"old bootstrap p (B = {N_BOOT_OLD})", "bootstrap", N_BOOT_OLD)] if old else [])


def scenario_planted(seed: int, old: bool = True) -> None:
    n, v = 700, 20_000
    print(
        f"planted: {v} voxels, {n} test images, r(y, A) = 0.45 vs r(y, B) = 0.05 in the true voxels, "
        f"0.2 vs 0.2 elsewhere"
    )
    for n_true in (100, 400):
        rng = np.random.default_rng(seed + n_true)
        y = rng.standard_normal((n, v), dtype=np.float32)
        truth = np.arange(v) < n_true
        r_a = np.where(truth, 0.45, 0.2).astype(np.float32)
        r_b = np.where(truth, 0.05, 0.2).astype(np.float32)
        noise = {s: rng.standard_normal((n, v), dtype=np.float32) for s in "ab"}
        preds = {"a": r_a * y + np.sqrt(1 - r_a**2) * noise["a"], "b": r_b * y + np.sqrt(1 - r_b**2) * noise["b"]}
        contrast = [Contrast("aVSb", ("a",), ("b",))]
        for label, method, n_boot in _methods(old):
            t0 = time.perf_counter()
            res = run_accumulator(y, "ab", contrast, preds.get, p_method=method, n_bootstrap=n_boot)["aVSb"]
            out = score(res.q, res.difference, truth, np.zeros(v, bool))
            out["seconds"] = round(time.perf_counter() - t0, 1)
            print(_line(f"{n_true} true, {label}", out))


def scenario_shape(seed: int, old: bool = True, n_voxels: int = 46_536, n_test: int = 737, region: int = 552) -> None:
    print(
        f"shape: {n_voxels} voxels, {n_test} test images, 3 3D and 3 2D spaces, a 3D region and a 2D region of "
        f"{region} voxels each (test r 0.1-0.69; power_strong: true voxels with r >= 0.3)"
    )
    rng = np.random.default_rng(seed)
    v, n = n_voxels, n_test
    in_3d = np.zeros(v, bool)
    in_2d = np.zeros(v, bool)
    in_3d[:region] = True
    in_2d[region : 2 * region] = True
    latent = {g: rng.standard_normal((n, v), dtype=np.float32) for g in ("3D", "2D")}
    rho = rng.uniform(0.1 / 0.95, 0.69 / 0.95, v).astype(np.float32)
    drive = np.where(in_3d, 1, 0)[None] * latent["3D"] + np.where(in_2d, 1, 0)[None] * latent["2D"]
    driven = in_3d | in_2d
    y = np.where(driven, rho, 0)[None] * drive + np.sqrt(1 - np.where(driven, rho, 0) ** 2)[None] * rng.standard_normal(
        (n, v), dtype=np.float32
    )
    del drive
    spaces = {f"scene3d{k}": "3D" for k in "abc"} | {f"edge2d{k}": "2D" for k in "abc"}
    share = 0.95  # prediction = 0.95 latent of its group + own noise: r(pred, pred') = 0.9 within a group

    def make_pred(space: str) -> np.ndarray:
        own = np.random.default_rng([seed, list(spaces).index(space)]).standard_normal((n, v), dtype=np.float32)
        return share * latent[spaces[space]] + np.sqrt(1 - share**2) * own

    contrasts = [
        Contrast(
            "group3DVSgroup2D",
            tuple(s for s, g in spaces.items() if g == "3D"),
            tuple(s for s, g in spaces.items() if g == "2D"),
        ),
        Contrast("scene3daVSedge2da", ("scene3da",), ("edge2da",)),
    ]
    strong = driven & (rho * share >= 0.3)
    for label, method, n_boot in _methods(old):
        t0 = time.perf_counter()
        results = run_accumulator(y, list(spaces), contrasts, make_pred, p_method=method, n_bootstrap=n_boot)
        seconds = round(time.perf_counter() - t0, 1)
        for name, res in results.items():
            out = score(res.q, res.difference, in_3d, in_2d, strong)
            out["seconds"] = seconds
            print(_line(f"{name}, {label} ({res.method})", out))


def scenario_dataset(seed: int, keep: Path | None, old: bool = True, noise_sd: float = 0.5) -> None:
    import nibabel as nib

    from bids_taskenc.cli.run import main as app_main
    from bids_taskenc.outputs.naming import derivative_path
    from bids_taskenc.testing.synthetic import BOLD5000_COUNTS, BOLD5000_GRID, make_synthetic_dataset

    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="contrast_power_"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ds = make_synthetic_dataset(
        root / "data", n_participants=1, shape=BOLD5000_GRID, seed=seed, noise_sd=noise_sd, **BOLD5000_COUNTS
    )
    print(f"dataset: built in {time.perf_counter() - t0:.0f} s at {ds.bids_dir}")
    sub = ds.participants[0]
    for method in ("analytic", "bootstrap") if old else ("analytic",):
        out = root / f"out-{method}"
        t0 = time.perf_counter()
        code = app_main(
            [
                str(ds.bids_dir),
                str(out),
                "participant",
                "--features-dir",
                str(ds.features_dir),
                "--work-dir",
                str(root / "work"),
                "--no-reports",
                "--contrast-p",
                method,
                "--contrast-bootstrap",
                str(N_BOOT_OLD),
                "--feature-spaces",
                *[f"user:{s}" for s, c in ds.feature_spaces.items() if c in ("scene", "edge")],
            ]
        )
        print(f"dataset: participant run ({method} p) exit {code} in {time.perf_counter() - t0:.0f} s")
        mask = ds.brain_masks[sub]
        scene, edge = ds.truth_masks[sub]["scene"][mask], ds.truth_masks[sub]["edge"][mask]
        meta = json.loads(
            next((out / f"sub-{sub}" / "func").glob("*_desc-group3DVSgroup2D_stat-p_statmap.json")).read_text()
        )
        print(f"  {mask.sum()} voxels, {meta['Contrast']['NTest']} test images")
        for name in ("group3DVSgroup2D",):
            maps = {
                stat: np.asarray(
                    nib.load(
                        derivative_path(
                            out,
                            sub=sub,
                            task="5000scenes",
                            space="T1w",
                            desc=name,
                            stat=stat,
                            suffix="statmap",
                            extension=".nii.gz",
                        )
                    ).dataobj
                )[mask]
                for stat in ("q", "rdiff")
            }
            print(
                _line(
                    f"{name}, {method} p ({meta['Contrast']['PValueMethod']})",
                    score(maps["q"], maps["rdiff"], scene, edge),
                )
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", nargs="+", choices=["planted", "shape", "dataset"], default=["planted", "shape"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, metavar="DIR", help="dataset scenario: build and run in DIR, keep it")
    parser.add_argument("--no-old", action="store_true", help="skip the old bootstrap p (most of the time)")
    parser.add_argument(
        "--noise-sd",
        type=float,
        default=0.5,
        help="dataset scenario: the generator's BOLD noise (default 0.5: driven r ~0.9)",
    )
    args = parser.parse_args(argv)
    for scenario in args.scenario:
        t0 = time.perf_counter()
        if scenario == "planted":
            scenario_planted(args.seed, not args.no_old)
        elif scenario == "shape":
            scenario_shape(args.seed, not args.no_old)
        else:
            scenario_dataset(args.seed, args.keep, not args.no_old, args.noise_sd)
        print(f"  ({scenario}: {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
