"""The CV solvers of banded ridge that score every fold from the whole training set's model
(``cv_solver='hold-out'`` and ``'cholesky'``), and the pool that runs the decompositions."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import ridge as _ridge
from .. import stats as _stats
from .kernels import (
    _chunks,
    _columns_any,
    _features_full_basis,
    _full_kernels,
    _kernel_basis,
    _spd_factor,
    _spd_inverse,
    _spd_solve,
)
from .split import _r2_split_torch


def _decompose_all(jobs, device):
    """Run decomposition jobs, one per thread on CPU, each with single-threaded LAPACK.

    As :func:`~bids_taskenc.encoding.fit._run_all`, but the intra-op thread
    count is 1 while the pool runs (restored after): MKL's own threads inside
    each worker oversubscribe the cores, and on a shared 2-core machine that
    made a 1,024-column float64 eigh 0.29 s instead of 0.13 s per worker (0.15
    vs 0.12 s when the machine was quiet).
    """
    n_threads = torch.get_num_threads()
    workers = min(len(jobs), n_threads)
    if device.type != "cpu" or workers < 2:
        return [job() for job in jobs]
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda job: job(), jobs))
    finally:
        torch.set_num_threads(n_threads)


# --------------------------------------------------------------------------- hold-out CV from one decomposition


def _holdout_fold_scores(basis_e, basis_e64, lam, kind, ys, folds_t, alphas_t, cv_score, hdtype):
    """CV score (a, v) of every alpha, summed over folds, from the whole training set's decomposition.

    With features centred (not scaled) per fold, fold ``f``'s model is the
    whole training set's with its validation rows ``v`` held out, the
    centring being an unpenalised intercept. For one alpha ``μ``, with
    ``M = [[K + μI, 1], [1ᵀ, 0]]`` (``K`` the kernel of the whole training
    set) and ``N = M⁻¹``, the fold's validation predictions and residuals are

    ``ŷ_v = -N_vv⁻¹ (N y⁽ᶠ⁾)_v`` (``y⁽ᶠ⁾`` = ``y`` with the rows ``v`` set to 0),
    ``y_v - ŷ_v = N_vv⁻¹ (N y)_v``

    (the Schur complement of the kept rows and the intercept). With
    ``P = K (K + μI)⁻¹ = E diag(w) Eᵀ`` from the decomposition (samples side:
    ``E = Q``, ``w = λ/(λ+μ)``; features side: ``E = X V``, ``w = 1/(λ+μ)``),
    ``ã = μ A⁻¹ 1 = 1 - P 1`` and ``σ = 1ᵀ ã``:

    ``μ N_vv = I - P_vv - ã_v ã_vᵀ / σ`` (samples side: ``Q_v diag(μ/(λ+μ)) Q_vᵀ - …``, no cancellation),
    ``μ (N y)_v = Q_v diag(μ/(λ+μ)) Qᵀ y - ã_v (ãᵀ y) / σ``,
    ``-μ (N y⁽ᶠ⁾)_v = E_v diag(w) Eᵀ y⁽ᶠ⁾ + ã_v (ãᵀ y⁽ᶠ⁾) / σ``.

    One (n_val × n_val) Cholesky per fold and alpha replaces a decomposition
    of the fold. Both right-hand sides are exact; the residual form is taken
    where most of the spectrum is fitted (mean ``λ/(λ+μ)`` above 1/2, samples
    side), whose terms then carry the small weights, the prediction form
    elsewhere, so that neither is a difference of nearly equal numbers.
    """
    n = basis_e.shape[0]
    lam = lam.to(torch.float64)
    mus = alphas_t.to(torch.float64)
    den = lam.unsqueeze(0) + mus.unsqueeze(1)  # (a, r)
    if kind == "samples":
        w_fit, w_res = lam.unsqueeze(0) / den, mus.unsqueeze(1) / den
        resid_form = (w_fit.mean(1) > 0.5).tolist()
    else:
        w_fit, w_res = 1.0 / den, None
        resid_form = [False] * mus.numel()
    e = basis_e
    ys = ys.to(hdtype)
    n_alphas = mus.numel()
    ones = torch.ones(n, dtype=torch.float64, device=e.device)
    e1 = basis_e64.T @ ones
    if kind == "samples":
        a_t64 = basis_e64 @ (w_res.T * e1.unsqueeze(1))  # (n, a): ã per alpha
    else:
        a_t64 = ones.unsqueeze(1) - basis_e64 @ (w_fit.T * e1.unsqueeze(1))
    sig64 = a_t64.sum(0)
    a_t, sig = a_t64.to(hdtype), sig64.to(hdtype)
    w_all = e.T @ ys  # (r, v)
    aty = a_t.T @ ys  # (a, v)
    beta_full = aty / sig.unsqueeze(1)
    groups = [
        (torch.tensor([i for i in range(n_alphas) if resid_form[i] == res], dtype=torch.int64, device=e.device), res)
        for res in (True, False)
    ]
    groups = [(idx, res) for idx, res in groups if idx.numel()]
    scores = torch.zeros((n_alphas, ys.shape[1]), dtype=hdtype, device=e.device)
    for _, va in folds_t:
        ev = e[va]
        ev64 = basis_e64[va]
        yv = ys[va]
        av = a_t[va]
        av64 = a_t64[va]
        # μ N_vv for every alpha at once, float64: (a, n_val, n_val)
        if kind == "samples":
            bm = (ev64.unsqueeze(0) * w_res.unsqueeze(1)) @ ev64.T
        else:
            eye = torch.eye(len(va), dtype=torch.float64, device=e.device)
            bm = eye - (ev64.unsqueeze(0) * w_fit.unsqueeze(1)) @ ev64.T
        bm -= av64.T.unsqueeze(2) * av64.T.unsqueeze(1) / sig64.view(-1, 1, 1)
        del ev64
        chol64, info = torch.linalg.cholesky_ex(bm)
        chol = chol64.to(hdtype)
        del chol64
        w_f = w_all - ev.T @ yv if any(not res for _, res in groups) else None
        for idx, res in groups:
            if res:  # μ (N y)_v, whose solution is the residual
                rhs = (ev.unsqueeze(0) * w_res[idx].to(hdtype).unsqueeze(1)) @ w_all
                rhs -= av[:, idx].T.unsqueeze(2) * beta_full[idx].unsqueeze(1)
            else:  # -μ (N y⁽ᶠ⁾)_v, whose solution is the prediction
                beta_f = (aty[idx] - av[:, idx].T @ yv) / sig[idx].unsqueeze(1)
                rhs = (ev.unsqueeze(0) * w_fit[idx].to(hdtype).unsqueeze(1)) @ w_f
                rhs += av[:, idx].T.unsqueeze(2) * beta_f.unsqueeze(1)
            sol = torch.cholesky_solve(rhs, chol[idx])
            bad = torch.nonzero(info[idx] != 0).squeeze(1)
            if bad.numel():  # not positive definite to rounding: LU
                sol[bad] = torch.linalg.solve(bm[idx[bad]], rhs[bad].to(torch.float64)).to(hdtype)
            del rhs
            scores[idx] += _holdout_score(yv, sol, res, cv_score)
            del sol
        del bm, chol, w_f
    return scores


def _holdout_score(yv, sol, is_residual, cv_score):
    """Validation scores (a, v) of ``yv`` (n_val, v) from ``sol`` (a, n_val, v): residuals or predictions."""
    y_mean = yv.mean(0)
    yc = yv - y_mean
    ss_y = (yc * yc).sum(0)
    y_ok = _stats.varying_columns_torch(yv, torch.sqrt(ss_y))
    if cv_score == "r":
        pc = yc.unsqueeze(0) - sol if is_residual else sol  # the residuals' mean goes with the centring below
        pc = pc - pc.mean(1, keepdim=True)
        cov = (yc.unsqueeze(0) * pc).sum(1)
        denom = (pc * pc).sum(1) * ss_y
        good = (denom > 0) & y_ok
        return torch.where(
            good, cov / torch.sqrt(torch.where(good, denom, torch.ones_like(denom))), torch.zeros_like(cov)
        )
    res = sol if is_residual else yv.unsqueeze(0) - sol
    ss_res = (res * res).sum(1)
    if cv_score == "negmse":
        return -ss_res / yv.shape[0]
    return torch.where(y_ok, 1.0 - ss_res / torch.where(y_ok, ss_y, torch.ones_like(ss_y)), torch.zeros_like(ss_res))


def _holdout_cv_refit(
    xs,
    xs_test,
    bands,
    grid,
    alphas_t,
    folds,
    centred,
    batches,
    Y_test,
    n_sets,
    dtype,
    cv_score,
    return_predictions,
    clock,
    progress,
    *,
    kind,
    hdtype,
    eigh_dtype,
    workers,
):
    """CV over (γ, α) and the test-set refit, one decomposition of the whole training set per γ.

    See :func:`_holdout_fold_scores`. Grid rows are scored in order; a voxel's
    test predictions (per set) are kept from the row that is best so far
    (strictly better than the earlier rows: ties to the earlier row), so the
    refit costs no further decomposition.
    """
    dev = xs.device
    n_grid = grid.shape[0]
    n_voxels = batches[-1].stop
    n_test = xs_test.shape[0]
    folds_t = [(torch.from_numpy(tr).to(dev), torch.from_numpy(va).to(dev)) for tr, va in folds]
    per_weight = torch.empty((n_grid, n_voxels), dtype=hdtype, device=dev)
    best_alpha_g = torch.empty((n_grid, n_voxels), dtype=torch.int64, device=dev)
    best = torch.full((n_voxels,), -torch.inf, dtype=hdtype, device=dev)
    g_best = torch.zeros(n_voxels, dtype=torch.int64, device=dev)
    parts_host = np.zeros((n_sets, n_test, n_voxels), np.float32)
    if kind == "samples":
        kernels = _full_kernels(xs, xs_test, bands)
    else:
        gram_xs = xs.T @ xs
    clock.lap("setup")
    bar = tqdm(total=n_grid, disable=not progress, desc="banded ridge CV", unit="ratio")
    for chunk in _chunks(range(n_grid), workers):
        if kind == "samples":
            jobs = [
                functools.partial(_kernel_basis, kernels, grid[g], torch.float64, band_u=True, eigh_dtype=eigh_dtype)
                for g in chunk
            ]
        else:
            jobs = [
                functools.partial(_features_full_basis, xs, gram_xs, xs_test, grid[g], bands, torch.float64, eigh_dtype)
                for g in chunk
            ]
        fulls = _decompose_all(jobs, dev)
        clock.lap("decompose")
        for g, (full, band_u) in zip(chunk, fulls):
            # float64 basis for the (n_val × n_val) systems, the compute dtype for the products with the targets
            e64 = full.q if kind == "samples" else xs @ full.proj.T
            e = e64.to(hdtype)
            band_u = [u.to(hdtype) for u in band_u]
            for cols in batches:
                ys = centred(cols)[0].to(hdtype)
                mean_scores = _holdout_fold_scores(e, e64, full.eigvals, kind, ys, folds_t, alphas_t, cv_score, hdtype)
                mean_scores /= len(folds)
                a_idx = _ridge.select_alphas(mean_scores)
                score = torch.gather(mean_scores, 0, a_idx.unsqueeze(0)).squeeze(0)
                per_weight[g, cols] = score
                best_alpha_g[g, cols] = a_idx
                better = score > best[cols]
                if bool(better.any()):
                    sel = torch.nonzero(better).squeeze(1)
                    w = e.T @ ys[:, sel]
                    scale = 1.0 / (full.eigvals.unsqueeze(1) + alphas_t[a_idx[sel]].unsqueeze(0))
                    _keep_test_parts(parts_host, cols, sel, band_u, w * scale.to(hdtype))
                    best[cols] = torch.where(better, score, best[cols])
                    g_best[cols] = torch.where(better, torch.full_like(g_best[cols], g), g_best[cols])
            bar.update(1)
        del fulls
        clock.lap("cv")
    bar.close()
    a_best = torch.gather(best_alpha_g, 0, g_best.unsqueeze(0)).squeeze(0)
    scored = _scores_from_parts(parts_host, batches, centred, Y_test, dtype, dev, return_predictions)
    clock.lap("refit")
    return (a_best, g_best, best, per_weight, *scored)


def _keep_test_parts(parts_host, cols, sel, set_maps, coefs) -> None:
    """Store, for the voxels ``sel`` of batch ``cols``, each set's test predictions ``set_maps[b] @ coefs``.

    ``parts_host`` (n_sets, n_test, v) float32 on the host; ``coefs`` (r, len(sel)) the voxels' coefficients in the
    basis ``set_maps`` (n_test, r) apply to.
    """
    vox = np.arange(cols.start, cols.stop)[sel.cpu().numpy()]
    for b, m in enumerate(set_maps):
        parts_host[b][:, vox] = (m @ coefs).to(torch.float32).cpu().numpy()


def _scores_from_parts(parts_host, batches, centred, Y_test, dtype, dev, return_predictions):
    """Test-set r, R², ok, R² split, intercept and (optional) predictions from the per-set test predictions.

    ``parts_host`` (n_sets, n_test, v) float32 holds each set's share of the centred test predictions.
    """
    n_sets, n_test, n_voxels = parts_host.shape
    r = np.zeros(n_voxels, np.float32)
    r2 = np.zeros(n_voxels, np.float32)
    ok = np.zeros(n_voxels, bool)
    split = np.zeros((n_sets, n_voxels), np.float32)
    intercept = np.zeros(n_voxels, np.float32)
    predictions = np.empty((n_test, n_voxels), np.float32) if return_predictions else None
    for cols in batches:
        y_mean = centred(cols)[2]
        parts = [torch.from_numpy(parts_host[b][:, cols]).to(device=dev, dtype=dtype) for b in range(n_sets)]
        pred = sum(parts)
        yt = _columns_any(Y_test, cols, dev, dtype)
        if not bool(torch.isfinite(yt).all()):
            raise ValueError("Y_test contains NaN or inf")
        yt = yt - y_mean
        rb, okb, _, _ = _stats.pearson_torch(yt, pred)
        r[cols] = rb.cpu().numpy()
        r2[cols] = _stats.r2_torch(yt, pred).cpu().numpy()
        ok[cols] = okb.cpu().numpy()
        split[:, cols] = _r2_split_torch(yt, parts).cpu().numpy()
        intercept[cols] = y_mean.cpu().numpy()
        if return_predictions:
            predictions[:, cols] = (pred + y_mean).cpu().numpy()
    return r, r2, ok, split, intercept, predictions


# --------------------------------------------------------------------------- hold-out CV from Cholesky factors


def _cholesky_cv_refit(
    xs,
    xs_test,
    bands,
    grid,
    alphas_t,
    folds,
    centred,
    batches,
    Y_test,
    n_sets,
    dtype,
    cv_score,
    return_predictions,
    clock,
    progress,
):
    """CV over (γ, α) and the test-set refit, one Cholesky factor of the whole training set per (γ, α).

    The hold-out identities of :func:`_holdout_fold_scores` with ``A = K_γ + αI`` factored instead of
    diagonalised: ``u = A⁻¹ 1``, ``s = 1ᵀ u``, the samples block of the bordered inverse ``N = A⁻¹ - u uᵀ / s``
    (the centring as an unpenalised intercept), and fold ``f``'s validation residuals ``N_vv⁻¹ (N y)_v``. Per
    (γ, α): one n × n Cholesky and its inverse, one (n × n) @ (n × v) product, and per fold one n_val × n_val
    Cholesky and solve; no eigendecomposition. The kernels and everything after the targets are centred are
    float64 in every precision: where α is large the residuals are nearly the targets, and the predictions,
    their difference, would be lost in float32. With more than one voxel batch the targets of a batch are
    loaded again for each (γ, α).

    The grid is visited by γ (in order) and, within a γ, from the largest α down, keeping strict improvements:
    the other solvers' rule (each γ's best α, exact ties to the larger; then the best γ, ties to the earlier).
    A voxel's test predictions (per set) are kept from its best (γ, α) so far, from ``A⁻¹ Y`` already at hand.
    """
    dev, f64 = xs.device, torch.float64
    n_grid, n_alphas = grid.shape[0], alphas_t.numel()
    n_voxels = batches[-1].stop
    folds_t = [torch.from_numpy(va).to(dev) for _, va in folds]
    kernels = _full_kernels(xs.to(f64), xs_test.to(f64), bands)
    per_weight = torch.full((n_grid, n_voxels), -torch.inf, dtype=f64, device=dev)
    best_alpha_g = torch.zeros((n_grid, n_voxels), dtype=torch.int64, device=dev)
    best = torch.full((n_voxels,), -torch.inf, dtype=f64, device=dev)
    g_best = torch.zeros(n_voxels, dtype=torch.int64, device=dev)
    a_best = torch.zeros(n_voxels, dtype=torch.int64, device=dev)
    parts_host = np.zeros((n_sets, xs_test.shape[0], n_voxels), np.float32)
    clock.lap("setup")
    bar = tqdm(total=n_grid * n_alphas, disable=not progress, desc="banded ridge CV", unit="fit")
    for g in range(n_grid):
        k_train = sum(float(w) * k for w, (k, _) in zip(grid[g], kernels) if w > 0)
        k_test = [float(w) * kv for w, (_, kv) in zip(grid[g], kernels)]
        for a in reversed(range(n_alphas)):
            shifted = k_train.clone()
            shifted.diagonal().add_(float(alphas_t[a]))
            a_inv = _spd_inverse(shifted)
            del shifted
            u = a_inv.sum(1)
            s = u.sum()
            fold_factors = [_spd_factor(a_inv[va][:, va] - torch.outer(u[va], u[va]) / s) for va in folds_t]
            clock.lap("decompose")
            for cols in batches:
                ys = centred(cols)[0].to(f64)
                z = a_inv @ ys
                ny = z - torch.outer(u, u @ ys) / s
                score = torch.zeros(ys.shape[1], dtype=f64, device=dev)
                for va, factor in zip(folds_t, fold_factors):
                    residuals = _spd_solve(factor, ny[va])
                    score += _holdout_score(ys[va], residuals.unsqueeze(0), True, cv_score)[0]
                score /= len(folds)
                within = score > per_weight[g, cols]
                per_weight[g, cols] = torch.where(within, score, per_weight[g, cols])
                best_alpha_g[g, cols] = torch.where(within, a, best_alpha_g[g, cols])
                better = score > best[cols]
                if bool(better.any()):
                    _keep_test_parts(parts_host, cols, torch.nonzero(better).squeeze(1), k_test, z[:, better])
                    best[cols] = torch.where(better, score, best[cols])
                    g_best[cols] = torch.where(better, g, g_best[cols])
                    a_best[cols] = torch.where(better, a, a_best[cols])
                del ys, z, ny
            clock.lap("cv")
            bar.update(1)
    bar.close()
    scored = _scores_from_parts(parts_host, batches, centred, Y_test, dtype, dev, return_predictions)
    clock.lap("refit")
    return (a_best, g_best, best, per_weight, *scored)
