"""Decompositions and small linear-algebra helpers of banded ridge: per-set kernels, the eigenbases of
``K_γ = Σ γ_b K_b`` (samples side) or of the weighted feature Gram (features side), SPD solves."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from .. import ridge as _ridge

T = TypeVar("T")


def _fold_kernels(
    xs: torch.Tensor,
    bands: Sequence[slice],
    train_idx: torch.Tensor,
    val_idx: torch.Tensor,
    standardize: bool,
    chunk: int = 2048,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
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
        assert kt is not None and kv is not None  # a band has at least one column
        out.append((kt, kv))
    return out


def _full_kernels(
    xs: torch.Tensor, xs_test: torch.Tensor, bands: Sequence[slice]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per set: the training kernel (n, n) and the test-by-training kernel (n_test, n)."""
    return [(xs[:, b] @ xs[:, b].T, xs_test[:, b] @ xs[:, b].T) for b in bands]


def _kernel_basis(
    kernels: Sequence[tuple[torch.Tensor, torch.Tensor]],
    gamma: Sequence[float] | np.ndarray,
    dtype: torch.dtype,
    train_idx: torch.Tensor | None = None,
    val_idx: torch.Tensor | None = None,
    band_u: bool = False,
    eigh_dtype: torch.dtype = torch.float64,
) -> Any:
    """Samples-side :class:`~bids_taskenc.encoding.ridge.EigenBasis` of ``K_γ = Σ γ_b K_b``.

    With ``band_u``, also each set's share of ``u`` (``γ_b K_eval,b Q``), whose
    sum is ``u``; without it (the CV folds) the evaluation kernels are summed
    first, one (n_val × n_t) @ (n_t × n_t) product instead of one per set.
    """
    kt = _sum([float(g) * k for g, (k, _) in zip(gamma, kernels) if g > 0])
    lam, q = _ridge._eigh(kt, eigh_dtype)
    if not band_u:
        kv = _sum([float(g) * kv for g, (_, kv) in zip(gamma, kernels) if g > 0])
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
        u=_sum(us).to(dtype),
        n_train=int(kt.shape[0]),
        train_idx=train_idx,
        val_idx=val_idx,
        q=q.to(dtype),
    )
    return (basis, [u.to(dtype) for u in us]) if band_u else basis


def _column_weights(
    gamma: Sequence[float] | np.ndarray, bands: Sequence[slice], p: int, device: torch.device
) -> torch.Tensor:
    """(p,) float64: ``sqrt(γ_b)`` on set ``b``'s columns."""
    w = torch.empty(p, dtype=torch.float64, device=device)
    for g, band in zip(gamma, bands):
        w[band] = float(np.sqrt(g))
    return w


def _features_full_basis(
    xs: torch.Tensor,
    gram_xs: torch.Tensor | None,
    xs_test: torch.Tensor,
    gamma: Sequence[float] | np.ndarray,
    bands: Sequence[slice],
    dtype: torch.dtype,
    eigh_dtype: torch.dtype = torch.float64,
) -> tuple[_ridge.EigenBasis, list[torch.Tensor]]:
    """Features-side eigenbasis of the whole training set with band weights ``gamma``, and each set's test map."""
    w = _column_weights(gamma, bands, xs.shape[1], xs.device)
    basis = _ridge.decompose_full(
        xs, gram_xs, xs_test, kind="features", dtype=dtype, want_weights=False, col_weight=w, eigh_dtype=eigh_dtype
    )
    # proj = (w ∘ V)ᵀ, so each set's share of u = xs_test_w V is xs_test[:, b] @ proj[:, b]ᵀ
    xt = xs_test.to(dtype)
    proj = basis.proj
    assert proj is not None  # decompose_full(kind="features") always sets it
    return basis, [xt[:, b] @ proj[:, b].T for b in bands]


def _spd_inverse(a: torch.Tensor) -> torch.Tensor:
    """Inverse of a symmetric positive definite matrix from its Cholesky factor (LU where rounding breaks it)."""
    chol, info = torch.linalg.cholesky_ex(a)
    return torch.cholesky_inverse(chol) if int(info) == 0 else torch.linalg.inv(a)


def _spd_factor(a: torch.Tensor) -> tuple[str, Any]:
    """A factor of a symmetric positive definite matrix for :func:`_spd_solve`: Cholesky, or LU where rounding
    leaves it not positive definite."""
    chol, info = torch.linalg.cholesky_ex(a)
    return ("cholesky", chol) if int(info) == 0 else ("lu", torch.linalg.lu_factor(a))


def _spd_solve(factor: tuple[str, Any], rhs: torch.Tensor) -> torch.Tensor:
    kind, f = factor
    return torch.cholesky_solve(rhs, f) if kind == "cholesky" else torch.linalg.lu_solve(*f, rhs)


def _chunks(seq: Iterable[T], size: int) -> list[list[T]]:
    seq = list(seq)
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def _columns_any(a: Any, cols: slice | np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Columns (a slice or an index array) of a (n, v) numpy array or tensor, on ``device``."""
    if isinstance(a, torch.Tensor):
        idx = cols if isinstance(cols, slice) else torch.as_tensor(cols, device=a.device)
        return a[:, idx].to(device=device, dtype=dtype).contiguous()
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    return torch.from_numpy(np.ascontiguousarray(a[:, cols], dtype=np_dtype)).to(device)


def _sum(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """``parts[0] + parts[1] + …`` in that order (the built-in ``sum`` starts from the int 0: the same values)."""
    total = parts[0]
    for q in parts[1:]:
        total = total + q
    return total
