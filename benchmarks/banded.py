"""Benchmark the banded ridge engine against himalaya's banded (multiple-kernel) ridge.

Shape W1 (the single-space W1 of ``benchmarks/ridge.py`` with two sets): 4,916
stimuli (85/15 train/test split), two feature sets of 2,048 columns each (two
Taskonomy latents), 5,000 voxels, 17 alphas, 9 band-penalty ratios (half a
decade apart, 1/100 … 100), 7-fold CV. The joint model has 4,096 columns,
more than a fold's 3,582 training samples, so both sides work with the n×n
samples-side kernels. ``--quick`` scales it down for a 2-core CPU.

Timed, on the same synthetic data, folds, alpha grid and band-weight grid:

* ours: :func:`bids_taskenc.encoding.fit_banded_ridge` in ``--precision``
  (CV over every (ratio, alpha), refit with each voxel's choice, test-set
  r/R²/p and the per-set R² split), from host arrays;
* himalaya ``MultipleKernelRidgeCV(kernels="precomputed",
  solver="random_search")`` with ``n_iter`` = the same band weights, linear
  kernels computed inside the timing, ``fit_intercept=True``, correlation
  scoring, then ``predict`` on the test set (its fastest banded solver when
  features outnumber a fold's samples; ``--himalaya-solver banded`` times
  ``BandedRidgeCV`` instead). Backend ``torch_cuda`` on CUDA, ``torch`` on CPU.

himalaya centres but does not standardise per fold, so ours runs with
``standardize=False`` on features standardised once on the training set (the
same model), and the fraction of voxels where both choose the same (ratio,
alpha) is printed. Precision: himalaya's torch backend works in float32
throughout; ours in ``fast`` does its decompositions and the products with
the targets in float32 (``cv_solver='hold-out'``: the decompositions and the
small per-fold systems in float64; ``cholesky``: everything in float64).
``--cv-solver per-fold hold-out cholesky`` times our CV solvers
(``fit_banded_ridge(cv_solver=...)``) before himalaya; the ratio is against the
fastest. ``--standardize`` also times ours with per-fold standardisation (the app's default, a different model from
himalaya's). ``--threads N`` sets torch's thread count for both engines (one
process, so both run with the same threads); the load average is printed
before and after, as the machine may be shared.

After our solvers, a *floor* for each exact strategy, timed on this machine and shape
(:func:`strategy_floors`, best of a few): per-fold, every fold's validation predictions of every (ratio, alpha),
one (n_val × n_t) @ (n_t × v) product each (every engine that scores the whole grid exactly on every fold forms
them: a prediction is a sum over the fold's n_t training samples), plus one eigendecomposition of the fold's
n_t × n_t kernel per (ratio, fold), in float32 and in float64; hold-out, per (ratio, alpha, fold) one
(n_val × n) @ (n × v) product over all n training rows in float64 (in float32 it does not keep the exact
choices), the n_val × n_val systems, and one float64 eigendecomposition of the n × n kernel per ratio.
``--reference`` also runs the exact search (per-fold, double) and prints, for each solver timed, the share of
voxels whose (ratio, alpha) is the exact search's. With himalaya timed (or ``--himalaya-seconds``), the line
``4x himalaya ... needs <= ...`` sets both against a quarter of himalaya's time. The last line is the speed
ratio against our faster solver, ``ratio himalaya/ours (per-fold): 3.2x``.

Run: ``python benchmarks/banded.py --quick``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from bids_taskenc.encoding import band_weight_grid, fit_banded_ridge, kfold_indices, train_test_split_indices
from bids_taskenc.encoding.banded import REGISTRY as CV_SOLVERS

W1 = dict(n=4916, p=2048, v=5_000, n_alphas=17, folds=7)
QUICK = dict(n=1500, p=512, v=2_000, n_alphas=17, folds=7)


def simulate(n: int, p: int, v: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two correlated feature sets (decaying spectra, a shared part) and responses mixing them.

    Returns XA (n, p), XB (n, p) and Y (n, v), float32. Voxels go from driven by
    A to driven by B, at mixed SNR.
    """
    rng = np.random.default_rng(seed)
    k = min(p, 256)
    shared = rng.standard_normal((n, k)).astype(np.float32) * np.geomspace(2.0, 0.1, k).astype(np.float32)

    def one_set():
        own = rng.standard_normal((n, k)).astype(np.float32) * np.geomspace(3.0, 0.1, k).astype(np.float32)
        basis = rng.standard_normal((2 * k, p)).astype(np.float32) / np.sqrt(2 * k)
        return np.hstack([own, shared]) @ basis + 0.3 * rng.standard_normal((n, p)).astype(np.float32)

    xa, xb = one_set(), one_set()
    mix = np.linspace(0.0, 1.0, v).astype(np.float32)
    sa = xa @ (rng.standard_normal((p, v), dtype=np.float32) / np.sqrt(p))
    sb = xb @ (rng.standard_normal((p, v), dtype=np.float32) / np.sqrt(p))
    signal = (1 - mix) * sa / sa.std(0) + mix * sb / sb.std(0)
    signal /= signal.std(0) + 1e-12
    snr = np.geomspace(1.0, 0.05, v).astype(np.float32)[rng.permutation(v)]
    y = snr * signal + rng.standard_normal((n, v), dtype=np.float32)
    return xa, xb, y.astype(np.float32)


def strategy_floors(n_train, folds, v, n_grid, n_alphas, device="cpu", seed=0) -> dict:
    """Seconds each exact CV strategy needs at least on this machine, from timed pieces (best of a few).

    * per-fold (float32, ``fast``): every fold's validation predictions of every (ratio, alpha), one
      (n_val × n_t) @ (n_t × v) float32 product each, and one float32 eigh of the fold's n_t × n_t kernel per
      (ratio, fold); ``per_fold_double_s`` the same in float64 (``exact``/``double``).
    * hold-out: per (ratio, alpha, fold) the right-hand sides, one (n_val × n) @ (n × v) product over all n
      training rows, in float64 (its float32 products move the choices, see ``--reference``); the n_val × n_val
      systems (their matrix, one (n_val × n) @ (n × n_val) product, a Cholesky and a solve with v right-hand
      sides, float64); and one float64 eigh of the whole n × n kernel per ratio. ``holdout_f32_s`` is the same
      with float32 products (the ``fast`` path, which does not keep the choices).

    Returns a dict of the piece timings (``*_one_s``) and the floors (``*_s``).
    """
    n_val = n_train // folds
    n_t = n_train - n_val
    gen = torch.Generator().manual_seed(seed)
    t = {}
    for dtype, tag in ((torch.float32, "32"), (torch.float64, "64")):
        # full rank with no repeated eigenvalues (as two sets of more columns than samples): nothing to deflate
        x = torch.randn(n_train, n_train + n_train // 8, generator=gen, dtype=torch.float64).to(device, dtype)
        kernel_full = x @ x.T
        kernel = kernel_full[:n_t, :n_t].contiguous()
        left = torch.randn(n_val, n_train, generator=gen, dtype=torch.float64).to(device, dtype)
        right = torch.randn(n_train, v, generator=gen, dtype=torch.float64).to(device, dtype)
        left_t, right_t = left[:, :n_t].contiguous(), right[:n_t]
        torch.linalg.eigh(kernel[:64, :64])  # warm-up
        repeats = 1 if tag == "64" else 2
        t[f"eigh_fold{tag}_one_s"] = _best_of(functools.partial(torch.linalg.eigh, kernel), repeats, device)
        t[f"product_fold{tag}_one_s"] = _best_of(functools.partial(torch.matmul, left_t, right_t), 3, device)
        t[f"product_all{tag}_one_s"] = _best_of(functools.partial(torch.matmul, left, right), 3, device)
        del x, left_t
    k64 = kernel_full  # float64, from the last pass
    t["eigh_full64_one_s"] = _best_of(lambda: torch.linalg.eigh(k64), 1, device)
    ev = left  # float64
    rhs = right[:n_val].contiguous()

    def system():
        m = ev @ ev.T  # the system's matrix is one such product
        m.diagonal().add_(float(n_train))  # positive definite, as μ N_vv is
        return torch.cholesky_solve(rhs, torch.linalg.cholesky(m))

    t["system64_one_s"] = _best_of(system, 3, device)
    n_pred = n_grid * folds * n_alphas
    per_fold_s = n_pred * t["product_fold32_one_s"] + n_grid * folds * t["eigh_fold32_one_s"]
    per_fold_double_s = n_pred * t["product_fold64_one_s"] + n_grid * folds * t["eigh_fold64_one_s"]
    hold_fixed = n_pred * t["system64_one_s"] + n_grid * t["eigh_full64_one_s"]
    return dict(
        t,
        n_t=n_t,
        n_val=n_val,
        predictions_s=n_pred * t["product_fold32_one_s"],
        per_fold_s=per_fold_s,
        per_fold_double_s=per_fold_double_s,
        holdout_s=n_pred * t["product_all64_one_s"] + hold_fixed,
        holdout_f32_s=n_pred * t["product_all32_one_s"] + hold_fixed,
    )


def _best_of(fn, repeats: int, device: str) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_ours(train, ytr, test, yte, grid, alphas, folds, device, precision, standardize=False, solver="per-fold"):
    kw = dict(
        band_weights=grid,
        alphas=alphas,
        n_folds=folds,
        device=device,
        precision=precision,
        seed=0,
        standardize=standardize,
        cv_solver=solver,
        # himalaya's correlation_score: the same criterion, so that the (ratio, alpha) choices can be compared
        # (the app's default criterion, r2, orders the grid differently on flat CV curves)
        cv_score="r",
    )
    fit_banded_ridge(
        [x[:64] for x in train], ytr[:64, :32], [x[:8] for x in test], yte[:8, :32], **{**kw, "n_folds": 2}
    )  # warm-up
    t0 = time.perf_counter()
    res = fit_banded_ridge(train, ytr, test, yte, **kw)
    return time.perf_counter() - t0, res


def time_himalaya(train, ytr, test, grid, alphas, folds, device, solver):
    from himalaya.backend import set_backend
    from himalaya.scoring import correlation_score

    backend = set_backend("torch_cuda" if device.startswith("cuda") else "torch", on_error="raise")
    cv = kfold_indices(ytr.shape[0], folds, seed=0)
    params = dict(n_iter=grid, alphas=alphas, score_func=correlation_score, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _sync(device)
        t0 = time.perf_counter()
        xs = [backend.asarray(x) for x in train]
        xt = [backend.asarray(x) for x in test]
        y = backend.asarray(ytr)
        if solver == "kernel":
            from himalaya.kernel_ridge import MultipleKernelRidgeCV

            model = MultipleKernelRidgeCV(
                kernels="precomputed", solver="random_search", fit_intercept=True, cv=cv, solver_params=params
            )
            model.fit(backend.stack([x @ x.T for x in xs]), y)
            pred = model.predict(backend.stack([t @ x.T for t, x in zip(xt, xs)]))
            deltas = model.deltas_
        else:
            from himalaya.ridge import BandedRidgeCV

            model = BandedRidgeCV(
                groups="input", solver="random_search", fit_intercept=True, cv=cv, solver_params=params
            )
            model.fit(xs, y)
            pred = model.predict(xt)
            deltas = model.deltas_
        _sync(device)
        elapsed = time.perf_counter() - t0
    return elapsed, backend.to_numpy(deltas), backend.to_numpy(pred)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"scaled-down shape {QUICK} for CPUs")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--precision", default="fast", choices=["exact", "fast", "double"])
    parser.add_argument("--n", type=int, help="stimuli (train + test)")
    parser.add_argument("--p", type=int, help="features per set")
    parser.add_argument("--v", type=int, help="voxels")
    parser.add_argument(
        "--himalaya-solver",
        default="kernel",
        choices=["kernel", "banded"],
        help="MultipleKernelRidgeCV on linear kernels (default) or BandedRidgeCV",
    )
    parser.add_argument("--no-himalaya", action="store_true")
    parser.add_argument(
        "--cv-solver",
        nargs="+",
        default=["per-fold"],
        choices=CV_SOLVERS.names(),
        help="our CV solver(s), timed one after the other; the ratio is against the fastest",
    )
    parser.add_argument(
        "--standardize",
        action="store_true",
        help="also time ours with per-fold standardisation (the app's default; not himalaya's model)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also run the exact search (per-fold, double) and print the share of voxels where each solver "
        "chooses the same (ratio, alpha)",
    )
    parser.add_argument(
        "--himalaya-seconds",
        type=float,
        help="with --no-himalaya: himalaya's time measured before (e.g. 913 at W1, 2 threads), for the 4x line",
    )
    parser.add_argument(
        "--floors-only", action="store_true", help="print the floors of the exact strategies only (no fits)"
    )
    parser.add_argument("--threads", type=int, help="torch intra-op threads for both engines (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write the numbers here (seconds, floors, ratio)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    shape = dict(QUICK if args.quick else W1)
    for key in ("n", "p", "v"):
        if getattr(args, key):
            shape[key] = getattr(args, key)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    alphas = np.logspace(0, 8, shape["n_alphas"])
    grid = band_weight_grid(2)

    xa, xb, y = simulate(shape["n"], shape["p"], shape["v"])
    train_idx, test_idx = train_test_split_indices(shape["n"], 0.15, seed=0)
    # standardise once on the training set (himalaya does not standardise per fold)
    mean = np.concatenate([xa, xb], 1)[train_idx].mean(0)
    sd = np.concatenate([xa, xb], 1)[train_idx].std(0)
    p = shape["p"]
    xa = ((xa - mean[:p]) / sd[:p]).astype(np.float32)
    xb = ((xb - mean[p:]) / sd[p:]).astype(np.float32)
    train = [xa[train_idx], xb[train_idx]]
    test = [xa[test_idx], xb[test_idx]]
    ytr, yte = y[train_idx], y[test_idx]
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    if not device.startswith("cuda") and hasattr(os, "getloadavg"):
        where += ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    out = dict(
        shape={**shape, "n_train": len(train_idx), "n_test": len(test_idx), "ratios": int(grid.shape[0])},
        device=device,
        where=where,
        torch=torch.__version__,
        precision=args.precision,
        ours={},
    )
    print(
        f"shape: n_train={len(train_idx)} n_test={len(test_idx)} sets=2x{p} v={shape['v']} "
        f"ratios={grid.shape[0]} alphas={shape['n_alphas']} folds={shape['folds']}; device={device} ({where}); "
        f"torch {torch.__version__}",
        flush=True,
    )

    if args.floors_only:
        fl = strategy_floors(len(train_idx), shape["folds"], shape["v"], grid.shape[0], shape["n_alphas"], device)
        _print_floors(fl, grid.shape[0], shape)
        if args.himalaya_seconds:
            goal = args.himalaya_seconds / 4
            print(f"4x himalaya ({args.himalaya_seconds:.1f} s, given) needs <= {goal:.1f} s", flush=True)
        _print_load()
        _write_json(args.json, {**out, "floor": fl})
        return
    if args.standardize:  # the app's default model: per-fold standardisation, one decomposition per fold and ratio
        t_std, res_std = time_ours(train, ytr, test, yte, grid, alphas, shape["folds"], device, args.precision, True)
        stages = ", ".join(f"{k} {v:.2f}" for k, v in res_std.timings.items() if k != "total")
        print(f"ours ({args.precision}, standardize=True, per-fold): {t_std:8.2f} s   [{stages}]", flush=True)
        out["ours"]["per-fold-standardized"] = dict(seconds=t_std, stages=res_std.timings)
    t_ours, res, fastest = float("inf"), None, ""
    results = {}
    for solver in args.cv_solver:
        t_solver, res_solver = time_ours(
            train, ytr, test, yte, grid, alphas, shape["folds"], device, args.precision, solver=solver
        )
        stages = ", ".join(f"{k} {v:.2f}" for k, v in res_solver.timings.items() if k != "total")
        print(f"ours ({args.precision}, cv_solver={solver}): {t_solver:8.2f} s   [{stages}]", flush=True)
        out["ours"][solver] = dict(seconds=t_solver, stages=res_solver.timings)
        results[solver] = res_solver
        if not fastest or t_solver < t_ours:
            t_ours, res, fastest = t_solver, res_solver, solver
    out.update(ours_seconds=t_ours, ours_fastest_solver=fastest)
    if args.reference:
        out["same_choice_as_exact"] = _compare_with_exact(
            train, ytr, test, yte, grid, alphas, shape["folds"], device, results
        )
    fl = strategy_floors(len(train_idx), shape["folds"], shape["v"], grid.shape[0], shape["n_alphas"], device)
    _print_floors(fl, grid.shape[0], shape)
    out["floor"] = fl
    if args.no_himalaya:
        if args.himalaya_seconds:
            _print_four_times(args.himalaya_seconds, fl, t_ours, fastest, "given")
        _print_load()
        _write_json(args.json, out)
        return
    t_him, deltas, pred = time_himalaya(train, ytr, test, grid, alphas, shape["folds"], device, args.himalaya_solver)
    assert res is not None  # at least one solver was timed
    same = np.isclose(np.exp(deltas), np.exp(res.deltas), rtol=1e-3).all(0)
    r_him = np.array([np.corrcoef(pred[:, j], yte[:, j])[0, 1] for j in range(yte.shape[1])])
    print(
        f"himalaya {'MultipleKernelRidgeCV' if args.himalaya_solver == 'kernel' else 'BandedRidgeCV'} "
        f"({'torch_cuda' if device.startswith('cuda') else 'torch'}): {t_him:8.2f} s   "
        f"(same ratio and alpha as ours on {100 * same.mean():.1f}% of voxels; "
        f"median |r diff| {np.nanmedian(np.abs(r_him - res.r)):.1e})"
    )
    _print_four_times(t_him, fl, t_ours, fastest, "timed")
    _print_load()
    out.update(
        himalaya=dict(
            solver=args.himalaya_solver,
            seconds=t_him,
            same_choice_fraction=float(same.mean()),
            median_abs_r_diff=float(np.nanmedian(np.abs(r_him - res.r))),
        ),
        ratio_himalaya_over_ours=t_him / t_ours,
    )
    _write_json(args.json, out)
    print(f"ratio himalaya/ours ({fastest}): {t_him / t_ours:.1f}x")


def _compare_with_exact(train, ytr, test, yte, grid, alphas, folds, device, results) -> dict:
    """Share of voxels where each solver's (ratio, alpha) is the exact search's (per-fold, float64)."""
    t_ref, ref = time_ours(train, ytr, test, yte, grid, alphas, folds, device, "double", solver="per-fold")
    print(f"exact search (double, cv_solver=per-fold): {t_ref:8.2f} s", flush=True)
    same = {}
    for solver, res in results.items():
        hit = (res.grid_index == ref.grid_index) & (res.alpha == ref.alpha)
        same[solver] = float(hit.mean())
        print(f"  same (ratio, alpha) as the exact search, {solver}: {100 * hit.mean():.2f}% of voxels", flush=True)
    return same


def _print_floors(fl: dict, n_grid: int, shape: dict) -> None:
    n_pred = n_grid * shape["folds"] * shape["n_alphas"]
    n_val, n_t, v = fl["n_val"], fl["n_t"], shape["v"]
    print(
        f"floor per-fold, float32 ({n_pred} products {n_val}x{n_t} @ {n_t}x{v} of "
        f"{fl['product_fold32_one_s']:.3g} s = {fl['predictions_s']:.1f} s, and {n_grid * shape['folds']} eighs "
        f"{n_t}x{n_t} of {fl['eigh_fold32_one_s']:.3g} s): {fl['per_fold_s']:.1f} s; in float64 "
        f"({fl['product_fold64_one_s']:.3g} s, {fl['eigh_fold64_one_s']:.3g} s): {fl['per_fold_double_s']:.1f} s",
        flush=True,
    )
    n = n_t + n_val
    print(
        f"floor hold-out, float64 ({n_pred} products {n_val}x{n} @ {n}x{v} of {fl['product_all64_one_s']:.3g} s, "
        f"{n_pred} {n_val}x{n_val} systems of {fl['system64_one_s']:.3g} s, {n_grid} eighs {n}x{n} of "
        f"{fl['eigh_full64_one_s']:.3g} s): {fl['holdout_s']:.1f} s; with float32 products "
        f"({fl['product_all32_one_s']:.3g} s; not the exact choices): {fl['holdout_f32_s']:.1f} s",
        flush=True,
    )


def _print_four_times(t_him: float, fl: dict, t_ours: float, fastest: str, how: str) -> None:
    goal = t_him / 4
    print(
        f"4x himalaya ({how}: {t_him:.1f} s) needs <= {goal:.1f} s: ours ({fastest}) {t_ours:.1f} s; "
        f"floors per-fold {fl['per_fold_s']:.1f} s (float32), hold-out {fl['holdout_s']:.1f} s (float64): "
        f"himalaya/floor {t_him / fl['per_fold_s']:.2f}x and {t_him / fl['holdout_s']:.2f}x",
        flush=True,
    )


def _print_load() -> None:
    if hasattr(os, "getloadavg"):
        print("load average at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()), flush=True)


def _write_json(path: Path | None, out: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
