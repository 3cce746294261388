"""Decompositions and small linear-algebra helpers of banded ridge: per-set kernels, the eigenbases of
``K_γ = Σ γ_b K_b`` (samples side) or of the weighted feature Gram (features side), SPD solves."""

from __future__ import annotations

import numpy as np
import torch

from .. import ridge as _ridge


def _fold_kernels(xs, bands, train_idx, val_idx, standardize, chunk=2048):
    """Per set: the fold's training kernel (n_t, n_t) and validation kernel (n_val, n_t), float64.

    Features standardised on the fold's training part, as in
    :func:`~bids_taskenc.encoding.ridge.decompose_fold`; columns are taken
    ``chunk`` at a time so a wide set never needs a standardised copy.
    """
    out = []
    for band in bands:
        kt = kv = None
        for start in range(band.start, band.stop, chunk):
            cols = slice(start, min(start + chunk, band.stop))
            xt = xs[train_idx, cols]
            xv = xs[val_idx, cols]
            mean, scale = _ridge.feature_statistics(xt, standardize)
            xt = (xt - mean) / scale
            xv = (xv - mean) / scale
            kt = xt @ xt.T if kt is None else kt.addmm_(xt, xt.T)
            kv = xv @ xt.T if kv is None else kv.addmm_(xv, xt.T)
        out.append((kt, kv))
    return out


def _full_kernels(xs, xs_test, bands):
    return [(xs[:, b] @ xs[:, b].T, xs_test[:, b] @ xs[:, b].T) for b in bands]


def _kernel_basis(kernels, gamma, dtype, train_idx=None, val_idx=None, band_u=False, eigh_dtype=torch.float64):
    """Samples-side :class:`~bids_taskenc.encoding.ridge.EigenBasis` of ``K_γ = Σ γ_b K_b``.

    With ``band_u``, also each set's share of ``u`` (``γ_b K_eval,b Q``), whose
    sum is ``u``; without it (the CV folds) the evaluation kernels are summed
    first, one (n_val × n_t) @ (n_t × n_t) product instead of one per set.
    """
    kt = sum(float(g) * k for g, (k, _) in zip(gamma, kernels) if g > 0)
    lam, q = _ridge._eigh(kt, eigh_dtype)
    if not band_u:
        kv = sum(float(g) * kv for g, (_, kv) in zip(gamma, kernels) if g > 0)
        return _ridge.EigenBasis(
            kind="samples",
            eigvals=lam,
            u=(kv @ q).to(dtype),
            n_train=int(kt.shape[0]),
            train_idx=train_idx,
            val_idx=val_idx,
            q=q.to(dtype),
        )
    us = [float(g) * (kv @ q) for g, (_, kv) in zip(gamma, kernels)]
    basis = _ridge.EigenBasis(
        kind="samples",
        eigvals=lam,
        u=sum(us).to(dtype),
        n_train=int(kt.shape[0]),
        train_idx=train_idx,
        val_idx=val_idx,
        q=q.to(dtype),
    )
    return (basis, [u.to(dtype) for u in us]) if band_u else basis


def _column_weights(gamma, bands, p, device):
    w = torch.empty(p, dtype=torch.float64, device=device)
    for g, band in zip(gamma, bands):
        w[band] = float(np.sqrt(g))
    return w


def _features_full_basis(xs, gram_xs, xs_test, gamma, bands, dtype, eigh_dtype=torch.float64):
    w = _column_weights(gamma, bands, xs.shape[1], xs.device)
    basis = _ridge.decompose_full(
        xs, gram_xs, xs_test, kind="features", dtype=dtype, want_weights=False, col_weight=w, eigh_dtype=eigh_dtype
    )
    # proj = (w ∘ V)ᵀ, so each set's share of u = xs_test_w V is xs_test[:, b] @ proj[:, b]ᵀ
    xt = xs_test.to(dtype)
    return basis, [xt[:, b] @ basis.proj[:, b].T for b in bands]


def _spd_inverse(a: torch.Tensor) -> torch.Tensor:
    """Inverse of a symmetric positive definite matrix from its Cholesky factor (LU where rounding breaks it)."""
    chol, info = torch.linalg.cholesky_ex(a)
    return torch.cholesky_inverse(chol) if int(info) == 0 else torch.linalg.inv(a)


def _spd_factor(a: torch.Tensor):
    """A factor of a symmetric positive definite matrix for :func:`_spd_solve`: Cholesky, or LU where rounding
    leaves it not positive definite."""
    chol, info = torch.linalg.cholesky_ex(a)
    return ("cholesky", chol) if int(info) == 0 else ("lu", torch.linalg.lu_factor(a))


def _spd_solve(factor, rhs: torch.Tensor) -> torch.Tensor:
    kind, f = factor
    return torch.cholesky_solve(rhs, f) if kind == "cholesky" else torch.linalg.lu_solve(*f, rhs)


def _chunks(seq, size):
    seq = list(seq)
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def _columns_any(a, cols, device, dtype) -> torch.Tensor:
    """Columns (a slice or an index array) of a (n, v) numpy array or tensor, on ``device``."""
    if isinstance(a, torch.Tensor):
        idx = cols if isinstance(cols, slice) else torch.as_tensor(cols, device=a.device)
        return a[:, idx].to(device=device, dtype=dtype).contiguous()
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    return torch.from_numpy(np.ascontiguousarray(a[:, cols], dtype=np_dtype)).to(device)
