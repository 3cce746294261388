"""``cv_solver='hold-out'``: every CV fold scored from one eigendecomposition of the whole training set per
band-weight row (features centred, not scaled, per fold).

With features centred (not scaled) per fold, fold ``f``'s model is the whole training set's with its validation
rows ``v`` held out, the centring being an unpenalised intercept. For one alpha ``μ``, with
``M = [[K + μI, 1], [1ᵀ, 0]]`` (``K`` the kernel of the whole training set) and ``N = M⁻¹``, the fold's validation
predictions and residuals are

``ŷ_v = -N_vv⁻¹ (N y⁽ᶠ⁾)_v`` (``y⁽ᶠ⁾`` = ``y`` with the rows ``v`` set to 0),
``y_v - ŷ_v = N_vv⁻¹ (N y)_v``

(the Schur complement of the kept rows and the intercept). With ``P = K (K + μI)⁻¹ = E diag(w) Eᵀ`` from the
decomposition (samples side: ``E = Q``, ``w = λ/(λ+μ)``; features side: ``E = X V``, ``w = 1/(λ+μ)``),
``ã = μ A⁻¹ 1 = 1 - P 1`` and ``σ = 1ᵀ ã``:

``μ N_vv = I - P_vv - ã_v ã_vᵀ / σ`` (samples side: ``Q_v diag(μ/(λ+μ)) Q_vᵀ - …``, no cancellation),
``μ (N y)_v = Q_v diag(μ/(λ+μ)) Qᵀ y - ã_v (ãᵀ y) / σ``,
``-μ (N y⁽ᶠ⁾)_v = E_v diag(w) Eᵀ y⁽ᶠ⁾ + ã_v (ãᵀ y⁽ᶠ⁾) / σ``.

One (n_val × n_val) Cholesky per fold and alpha replaces a decomposition of the fold. Both right-hand sides are
exact; the residual form is taken where most of the spectrum is fitted (mean ``λ/(λ+μ)`` above 1/2, samples side),
whose terms then carry the small weights, the prediction form elsewhere, so that neither is a difference of nearly
equal numbers. The decomposition and the small systems are float64 in every precision (their smallest eigenvalues
are about ``α/λ_max``); the products with the targets are in float32 under ``precision='fast'``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from .. import ridge as _ridge
from .kernels import _chunks, _features_full_basis, _full_kernels, _kernel_basis
from .problem import BandedProblem, BandedSolution
from .solvers import _BestSoFar, _decompose_all, _holdout_score, _keep_test_parts, _scores_from_parts


class HoldoutBasis(NamedTuple):
    """The whole training set's eigenbasis of one band-weight row: ``e`` (n, r) in the compute dtype and
    ``e64`` in float64 (samples side ``Q``, features side ``X V``), the eigenvalues (r,), the Gram side."""

    e: torch.Tensor
    e64: torch.Tensor
    eigvals: torch.Tensor
    kind: str


class _AlphaWeights(NamedTuple):
    """Per alpha (a, r) the weights of the fitted (``w_fit``) and residual (``w_res``, samples side) spectra,
    ``ã`` (n, a) and ``σ`` (a,) in float64 and the compute dtype, and the alphas of each right-hand-side form."""

    w_fit: torch.Tensor
    w_res: torch.Tensor | None
    a_t64: torch.Tensor
    sig64: torch.Tensor
    a_t: torch.Tensor
    sig: torch.Tensor
    groups: list[tuple[torch.Tensor, bool]]


def _alpha_weights(basis: HoldoutBasis, alphas: torch.Tensor, hdtype: torch.dtype) -> _AlphaWeights:
    """The spectral weights, ``ã = 1 - P 1`` and ``σ = 1ᵀ ã`` of every alpha (see the module docstring)."""
    lam = basis.eigvals.to(torch.float64)
    mus = alphas.to(torch.float64)
    den = lam.unsqueeze(0) + mus.unsqueeze(1)  # (a, r)
    w_res: torch.Tensor | None
    if basis.kind == "samples":
        w_fit, w_res = lam.unsqueeze(0) / den, mus.unsqueeze(1) / den
        resid_form = (w_fit.mean(1) > 0.5).tolist()
    else:
        w_fit, w_res = 1.0 / den, None
        resid_form = [False] * mus.numel()
    ones = torch.ones(basis.e.shape[0], dtype=torch.float64, device=basis.e.device)
    e1 = basis.e64.T @ ones
    if w_res is not None:
        a_t64 = basis.e64 @ (w_res.T * e1.unsqueeze(1))  # (n, a): ã per alpha
    else:
        a_t64 = ones.unsqueeze(1) - basis.e64 @ (w_fit.T * e1.unsqueeze(1))
    sig64 = a_t64.sum(0)
    n_alphas = mus.numel()
    groups = [
        (torch.tensor([i for i in range(n_alphas) if resid_form[i] == res], dtype=torch.int64, device=lam.device), res)
        for res in (True, False)
    ]
    groups = [(idx, res) for idx, res in groups if idx.numel()]
    return _AlphaWeights(w_fit, w_res, a_t64, sig64, a_t64.to(hdtype), sig64.to(hdtype), groups)


def _fold_system(basis: HoldoutBasis, w: _AlphaWeights, va: torch.Tensor) -> torch.Tensor:
    """``μ N_vv`` (a, n_val, n_val) of every alpha for the validation rows ``va``, float64."""
    ev64 = basis.e64[va]
    av64 = w.a_t64[va]
    if w.w_res is not None:
        bm = (ev64.unsqueeze(0) * w.w_res.unsqueeze(1)) @ ev64.T
    else:
        eye = torch.eye(len(va), dtype=torch.float64, device=ev64.device)
        bm = eye - (ev64.unsqueeze(0) * w.w_fit.unsqueeze(1)) @ ev64.T
    bm -= av64.T.unsqueeze(2) * av64.T.unsqueeze(1) / w.sig64.view(-1, 1, 1)
    return bm


def _holdout_fold_scores(
    basis: HoldoutBasis,
    ys: torch.Tensor,
    folds_t: Sequence[tuple[torch.Tensor, torch.Tensor]],
    alphas: torch.Tensor,
    cv_score: str,
    hdtype: torch.dtype,
) -> torch.Tensor:
    """CV score (a, v) of every alpha, summed over folds, from the whole training set's decomposition.

    ``ys`` (n, v) centred training targets; one (n_val × n_val) Cholesky per fold and alpha (module docstring).
    """
    w = _alpha_weights(basis, alphas, hdtype)
    e = basis.e
    ys = ys.to(hdtype)
    w_all = e.T @ ys  # (r, v)
    aty = w.a_t.T @ ys  # (a, v)
    beta_full = aty / w.sig.unsqueeze(1)
    scores = torch.zeros((alphas.numel(), ys.shape[1]), dtype=hdtype, device=e.device)
    for _, va in folds_t:
        ev, yv, av = e[va], ys[va], w.a_t[va]
        bm = _fold_system(basis, w, va)
        chol64, info = torch.linalg.cholesky_ex(bm)
        chol = chol64.to(hdtype)
        del chol64
        w_f = w_all - ev.T @ yv if any(not res for _, res in w.groups) else None
        for idx, res in w.groups:
            if res:  # μ (N y)_v, whose solution is the residual
                assert w.w_res is not None
                rhs = (ev.unsqueeze(0) * w.w_res[idx].to(hdtype).unsqueeze(1)) @ w_all
                rhs -= av[:, idx].T.unsqueeze(2) * beta_full[idx].unsqueeze(1)
            else:  # -μ (N y⁽ᶠ⁾)_v, whose solution is the prediction
                assert w_f is not None
                beta_f = (aty[idx] - av[:, idx].T @ yv) / w.sig[idx].unsqueeze(1)
                rhs = (ev.unsqueeze(0) * w.w_fit[idx].to(hdtype).unsqueeze(1)) @ w_f
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


def _basis_jobs(problem: BandedProblem, chunk: Sequence[int], kernels: list | None) -> list[Callable[[], tuple]]:
    """One job per grid row of ``chunk``: the whole training set's float64 eigenbasis and each set's test map."""
    grid = problem.grid
    if kernels is not None:
        return [
            functools.partial(_kernel_basis, kernels, grid[g], torch.float64, band_u=True, eigh_dtype=torch.float64)
            for g in chunk
        ]
    xs, gram_xs, xs_test, bands = problem.xs, problem.gram_xs, problem.xs_test, problem.bands
    return [
        functools.partial(_features_full_basis, xs, gram_xs, xs_test, grid[g], bands, torch.float64, torch.float64)
        for g in chunk
    ]


def _score_row(
    problem: BandedProblem,
    g: int,
    basis: HoldoutBasis,
    band_u: Sequence[torch.Tensor],
    folds_t: Sequence[tuple[torch.Tensor, torch.Tensor]],
    state: _BestSoFar,
) -> None:
    """Score grid row ``g`` on every fold and keep, where it is strictly better, its test predictions."""
    hdtype = basis.e.dtype
    for cols in problem.batches:
        ys = problem.targets(cols).ys.to(hdtype)
        mean_scores = _holdout_fold_scores(basis, ys, folds_t, problem.alphas, problem.cv_score, hdtype)
        mean_scores /= len(folds_t)
        a_idx = _ridge.select_alphas(mean_scores)
        score = torch.gather(mean_scores, 0, a_idx.unsqueeze(0)).squeeze(0)
        state.per_weight[g, cols] = score
        state.best_alpha_g[g, cols] = a_idx
        better = score > state.best[cols]
        if bool(better.any()):
            sel = torch.nonzero(better).squeeze(1)
            w = basis.e.T @ ys[:, sel]
            scale = 1.0 / (basis.eigvals.unsqueeze(1) + problem.alphas[a_idx[sel]].unsqueeze(0))
            _keep_test_parts(state.parts_host, cols, sel, band_u, w * scale.to(hdtype))
            state.best[cols] = torch.where(better, score, state.best[cols])
            state.g_best[cols] = torch.where(better, torch.full_like(state.g_best[cols], g), state.g_best[cols])


def solve(problem: BandedProblem) -> BandedSolution:
    """CV over (γ, α) and the test-set refit, one decomposition of the whole training set per γ.

    Grid rows are scored in order; a voxel's test predictions (per set) are kept from the row that is best so far
    (strictly better than the earlier rows: ties to the earlier row), so the refit costs no further decomposition.
    """
    dev, kind = problem.device, problem.hold_kind
    hdtype = torch.float32 if problem.fast else torch.float64
    folds_t = [(torch.from_numpy(tr).to(dev), torch.from_numpy(va).to(dev)) for tr, va in problem.folds]
    state = _BestSoFar.start(problem, hdtype, 0.0)
    kernels = _full_kernels(problem.xs, problem.xs_test, problem.bands) if kind == "samples" else None
    problem.clock.lap("setup")
    bar = tqdm(total=problem.n_grid, disable=not problem.progress, desc="banded ridge CV", unit="ratio")
    for chunk in _chunks(range(problem.n_grid), problem.workers):
        fulls = _decompose_all(_basis_jobs(problem, chunk, kernels), dev)
        problem.clock.lap("decompose")
        for g, (full, band_u) in zip(chunk, fulls):
            # float64 basis for the (n_val × n_val) systems, the compute dtype for the products with the targets
            e64 = full.q if kind == "samples" else problem.xs @ full.proj.T
            basis = HoldoutBasis(e64.to(hdtype), e64, full.eigvals, kind)
            _score_row(problem, g, basis, [u.to(hdtype) for u in band_u], folds_t, state)
            bar.update(1)
        del fulls
        problem.clock.lap("cv")
    bar.close()
    a_best = torch.gather(state.best_alpha_g, 0, state.g_best.unsqueeze(0)).squeeze(0)
    test = _scores_from_parts(problem, state.parts_host)
    problem.clock.lap("refit")
    return BandedSolution(a_best, state.g_best, state.best, state.per_weight, test)
