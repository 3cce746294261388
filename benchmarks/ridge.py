"""Benchmark the voxelwise ridge engine against himalaya and scikit-learn.

Shape W1 is BOLD5000-like: 4,916 stimuli (85/15 train/test split), 2,048
features (a Taskonomy latent), 50,000 voxels, 17 alphas, 7-fold CV.
``--quick`` scales it down so that a 2-core CPU finishes in well under two
minutes.

Timed, on the same synthetic data and the same folds:

* ours: :func:`bids_taskenc.encoding.fit_encoding_model` in ``--precision``
  (CV over the alpha grid, refit, test-set r/R²/p/FDR), from host arrays;
* himalaya ``RidgeCV`` (``fit_intercept=True``, correlation scoring) on the
  same device, backend ``torch_cuda`` on CUDA, ``torch`` on CPU;
* scikit-learn ``RidgeCV(alpha_per_target=True)`` (efficient leave-one-out,
  its only mode with one alpha per target), by default only with ``--quick``.

Also reported: the fraction of voxels where ours picks the same alpha as our
float64 reference (``precision='double'``), and where it agrees with
himalaya. The last line is the speed ratio, ``ratio himalaya/ours: 3.2x``.

``--precision`` takes several modes (``--precision fast exact``): each is timed
on the same data, against one float64 reference and one himalaya run.
``--json FILE`` also writes every number (the GPU check reads it).

Run: ``python benchmarks/ridge.py --quick`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bids_taskenc.encoding import fit_encoding_model, kfold_indices, train_test_split_indices
from bids_taskenc.testing.encoding_data import correlated_encoding_data

W1 = dict(n=4916, p=2048, v=50_000, n_alphas=17, folds=7)
QUICK = dict(n=1200, p=512, v=4_000, n_alphas=17, folds=7)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_ours(Xtr, Ytr, Xte, Yte, alphas, folds, device, precision, repeats):
    kw = dict(alphas=alphas, n_folds=folds, device=device, precision=precision, seed=0)
    fit_encoding_model(Xtr[:64], Ytr[:64, :64], Xte[:8], Yte[:8, :64], **{**kw, "n_folds": 2})  # warm-up
    best, res = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fit_encoding_model(Xtr, Ytr, Xte, Yte, **kw)
        best = min(best, time.perf_counter() - t0)
    return best, res


def time_himalaya(Xtr, Ytr, alphas, folds, device, repeats):
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV
    from himalaya.scoring import correlation_score

    backend = set_backend("torch_cuda" if device.startswith("cuda") else "torch", on_error="raise")
    X = backend.asarray(Xtr)
    Y = backend.asarray(Ytr)
    cv = kfold_indices(Xtr.shape[0], folds, seed=0)
    params = {"score_func": correlation_score, "warn": False}
    # warm-up
    RidgeCV(alphas=alphas, fit_intercept=True, cv=2, solver_params=params).fit(X[:64], Y[:64, :64])
    best, model = np.inf, None
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        model = RidgeCV(alphas=alphas, fit_intercept=True, cv=cv, solver_params=params).fit(X, Y)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    assert model is not None  # repeats >= 1
    return best, backend.to_numpy(model.best_alphas_)


def time_sklearn(Xtr, Ytr, alphas):
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    Xs = StandardScaler().fit_transform(Xtr)
    RidgeCV(alphas=alphas, alpha_per_target=True).fit(Xs, Ytr)
    return time.perf_counter() - t0


def parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"scaled-down shape {QUICK} for CPUs")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument(
        "--precision",
        nargs="+",
        default=["fast"],
        choices=["exact", "fast", "double"],
        help="one or more modes, timed one after the other on the same data (default fast)",
    )
    parser.add_argument("--n", type=int, help="stimuli (train + test)")
    parser.add_argument("--p", type=int, help="features")
    parser.add_argument("--v", type=int, help="voxels")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs; the best is reported")
    parser.add_argument("--no-himalaya", action="store_true")
    parser.add_argument("--sklearn", action="store_true", help="also time scikit-learn outside --quick")
    parser.add_argument("--no-sklearn", action="store_true")
    parser.add_argument("--no-reference", action="store_true", help="skip the float64 reference fit")
    parser.add_argument("--json", type=Path, help="also write the numbers here (seconds, agreements, ratios)")
    return parser.parse_args(argv)


def compare_with_double(args, data, alphas, shape, device, results: dict, out: dict) -> None:
    """Each mode's alphas and r against the float64 fit (timed here unless ``double`` was a mode)."""
    ref = results.get("double")
    if ref is None:
        Xtr, Ytr, Xte, Yte = data
        t_ref, ref = time_ours(Xtr, Ytr, Xte, Yte, alphas, shape["folds"], device, "double", 1)
        print(f"ours (double, reference):  {t_ref:8.3f} s")
        out["reference_double_seconds"] = round(t_ref, 4)
    for precision, res in results.items():
        if precision == "double":
            continue
        same = float(np.mean(res.alpha == ref.alpha))
        adjacent = float(np.mean(np.abs(np.log10(res.alpha) - np.log10(ref.alpha)) <= 0.5 + 1e-6))
        max_dr = float(np.abs(res.r - ref.r).max())
        print(
            f"alpha agreement {precision} vs float64: {100 * same:.2f}% same, "
            f"{100 * adjacent:.2f}% within one grid step; max |r diff| {max_dr:.2e}"
        )
        out["ours"][precision].update(
            alpha_same_as_double=round(same, 5),
            alpha_within_one_step_of_double=round(adjacent, 5),
            max_abs_r_diff_vs_double=max_dr,
        )


def compare_with_others(args, data, alphas, shape, device, results: dict, out: dict) -> None:
    """scikit-learn (``--quick`` or ``--sklearn``) and himalaya on the same data, and their ratios over ours."""
    Xtr, Ytr = data[0], data[1]
    first = next(iter(results))
    t_first = out["ours"][first]["seconds"]
    if (args.quick or args.sklearn) and not args.no_sklearn:
        t_sk = time_sklearn(Xtr, Ytr, alphas)
        print(
            f"sklearn RidgeCV (LOO, per-target alpha, CPU): {t_sk:8.2f} s   ratio sklearn/ours: {t_sk / t_first:.1f}x"
        )
        out["sklearn_seconds"] = round(t_sk, 4)
    if args.no_himalaya:
        return
    backend = "torch_cuda" if device.startswith("cuda") else "torch"
    t_him, him_alpha = time_himalaya(Xtr, Ytr, alphas, shape["folds"], device, args.repeats)
    same = 100 * np.mean(np.isclose(him_alpha, results[first].alpha, rtol=1e-4))
    print(
        f"himalaya RidgeCV ({backend}): {t_him:8.3f} s   "
        f"(same alpha as ours ({first}) on {same:.1f}% "
        "of voxels; it centres but does not standardise features per fold)"
    )
    out["himalaya"] = {"backend": backend, "seconds": round(t_him, 4)}
    for precision in results:
        ratio = t_him / out["ours"][precision]["seconds"]
        out["ours"][precision]["ratio_himalaya_over_ours"] = round(ratio, 3)
    print(f"ratio himalaya/ours: {t_him / t_first:.1f}x")


def main(argv=None) -> dict:
    args = parse(argv)
    shape = dict(QUICK if args.quick else W1)
    for key in ("n", "p", "v"):
        if getattr(args, key):
            shape[key] = getattr(args, key)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    alphas = np.logspace(0, 8, shape["n_alphas"])
    X, Y = correlated_encoding_data(shape["n"], shape["p"], shape["v"])
    train, test = train_test_split_indices(shape["n"], 0.15, seed=0)
    data = (X[train], Y[train], X[test], Y[test])
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"shape: n_train={len(train)} n_test={len(test)} p={shape['p']} v={shape['v']} "
        f"alphas={shape['n_alphas']} folds={shape['folds']}; device={device} ({where}); torch {torch.__version__}"
    )
    out: dict = {
        "shape": {**shape, "n_train": int(len(train)), "n_test": int(len(test))},
        "device": device,
        "device_name": where,
        "torch": torch.__version__,
        "repeats": args.repeats,
        "ours": {},
    }
    results = {}
    for precision in dict.fromkeys(args.precision):
        t_ours, res = time_ours(
            data[0], data[1], data[2], data[3], alphas, shape["folds"], device, precision, args.repeats
        )
        results[precision] = res
        stages = ", ".join(f"{k} {v:.2f}" for k, v in res.timings.items() if k != "total")
        print(f"ours ({precision}):{'':{max(1, 14 - len(precision))}}{t_ours:8.3f} s   [{stages}]")
        out["ours"][precision] = {
            "seconds": round(t_ours, 4),
            "stages": {k: round(v, 4) for k, v in res.timings.items()},
        }
    if not args.no_reference:
        compare_with_double(args, data, alphas, shape, device, results, out)
    compare_with_others(args, data, alphas, shape, device, results, out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
