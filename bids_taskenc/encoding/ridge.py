"""Ridge regression with one alpha per target, chosen by cross-validation, on torch.

Notation (shapes in brackets): ``n`` training samples, ``p`` features, ``v``
targets (voxels), ``r`` rank of an eigendecomposition, ``a`` alphas.

Every decomposition diagonalises one ridge problem. For a training matrix
``Xt`` [n_t, p] (standardised, see below) and centred targets ``Yt``:

* *features* Gram (``p <= n_t``): ``Xtᵀ Xt = V diag(λ) Vᵀ`` [p, p];
  ``W_α = V diag(1/(λ+α)) Z`` with ``Z = Vᵀ Xtᵀ Yt`` [p, v];
* *samples* Gram (``n_t < p``): ``Xt Xtᵀ = Q diag(λ) Qᵀ`` [n_t, n_t];
  ``W_α = Xtᵀ Q diag(1/(λ+α)) Z`` with ``Z = Qᵀ Yt`` [n_t, v].

In both, validation predictions are ``U diag(1/(λ+α)) Z`` with ``U`` [n_val, r]
the validation features in the eigenbasis, so one projection of the targets
serves every alpha, and the refit applies to each target only its own alpha:
``Z[:, j] / (λ + α_j)``. Gram matrices and eigendecompositions are float64;
target-side products are in the compute dtype (float32 unless precision is
``'double'``).

Cost per fold and target: ``p²`` (projection, features branch) or ``n_t²``
(samples branch), plus ``a · n_val · r`` for the validation predictions of all
alphas, which dominates. For Pearson scoring only the predictions' sum of
squares needs that product; the cross-products with the targets come from
``Z ∘ (Uᵀ Y_val)`` at ``a · r`` per target.

Standardisation: the caller standardises features on the whole training set
(``Xs`` in :func:`decompose_fold`); each fold then re-standardises on its own
training part, so a fold's model never sees its validation statistics. The
features-branch projections of all folds are taken from the single product
``B = Xsᵀ Ys`` minus rank-one and validation terms, which is exact (``Xs`` and
``Ys`` are centred on the whole training set) and saves computing
``Xtᵀ Yt`` per fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .device import tf32_matmul
from .options import CV_SCORE_EFFECTS as CV_SCORE_EFFECTS
from .options import CV_SCORES
from .options import DEFAULT_CV_SCORE as DEFAULT_CV_SCORE
from .stats import varying_columns_torch

GRAMS = ("auto", "features", "samples")


def feature_statistics(x: torch.Tensor, standardize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and scales of ``x`` (n, p): population SD (1 for constant columns), or ones."""
    mean = x.mean(0)
    if not standardize:
        return mean, torch.ones_like(mean)
    scale = x.std(0, correction=0)
    return mean, torch.where(scale > 0, scale, torch.ones_like(scale))


@dataclass
class EigenBasis:
    """One diagonalised ridge problem (a CV fold, or the full training set).

    Attributes
    ----------
    kind : {'features', 'samples'}
    eigvals : tensor (r,), float64
        Eigenvalues λ of the Gram matrix, clipped at 0.
    u : tensor (n_eval, r), compute dtype
        Evaluation samples (validation fold, or test set) in the eigenbasis,
        built from features standardised like the training part.
    n_train : int
        Samples in the training part.
    train_idx, val_idx : int64 tensors or None
        Rows of the full training set in the training part and the validation
        part (None for the full training set).
    proj : tensor (r, p) or None
        Features branch: ``Vᵀ D⁻¹`` (``D`` the fold's feature scales, in units
        of the whole-training-set standardisation) mapping ``B`` to ``Z``.
    offset : tensor (r,) or None
        Features branch: ``Vᵀ D⁻¹ m`` (``m`` the fold's feature means).
    q : tensor (n_train, r) or None
        Samples branch: eigenvectors of ``Xt Xtᵀ``.
    weight_basis : tensor (p, r) or None
        Maps eigen-coordinates to weights on standardised features; only for
        the full training set, and only when weights are asked for.
    """

    kind: str
    eigvals: torch.Tensor
    u: torch.Tensor
    n_train: int
    train_idx: torch.Tensor | None = None
    val_idx: torch.Tensor | None = None
    proj: torch.Tensor | None = None
    offset: torch.Tensor | None = None
    q: torch.Tensor | None = None
    weight_basis: torch.Tensor | None = None

    @property
    def rank(self) -> int:
        return int(self.eigvals.shape[0])


def choose_gram(n_rows: int, n_features: int, gram: str) -> str:
    """``'features'`` (p×p) or ``'samples'`` (n×n): the smaller one for ``gram='auto'``."""
    if gram not in GRAMS:
        raise ValueError(f"gram must be one of {GRAMS}, got {gram!r}")
    if gram != "auto":
        return gram
    return "samples" if n_rows < n_features else "features"


def _eigh(gram: torch.Tensor, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (clipped at 0) and eigenvectors of a float64 Gram matrix, returned in float64.

    ``dtype`` is the precision of the decomposition itself: float64 by default
    (every caller of the single-space engine); banded ridge's ``'fast'``
    precision passes float32, about half the time on CPU.
    """
    # symmetrise against rounding in the Gram product; tiny negative λ are rounding
    sym = 0.5 * (gram + gram.T)
    if dtype == sym.dtype:
        lam, vec = torch.linalg.eigh(sym)
        return lam.clamp_(min=0.0), vec
    lam, vec = torch.linalg.eigh(sym.to(dtype))
    return lam.to(gram.dtype).clamp_(min=0.0), vec.to(gram.dtype)


def decompose_fold(
    xs: torch.Tensor,
    gram_xs: torch.Tensor | None,
    train_idx: torch.Tensor,
    val_idx: torch.Tensor,
    *,
    standardize: bool,
    kind: str,
    dtype: torch.dtype,
    col_weight: torch.Tensor | None = None,
    eigh_dtype: torch.dtype = torch.float64,
) -> EigenBasis:
    """Diagonalise the ridge problem of one CV fold.

    Parameters
    ----------
    xs : tensor (n, p), float64
        Training features standardised (or centred) on the whole training set.
    gram_xs : tensor (p, p), float64, or None
        ``xsᵀ xs``; required for ``kind='features'``.
    train_idx, val_idx : int64 tensors (n_t,), (n_val,)
        The fold, partitioning ``range(n)``.
    standardize : bool
        Scale features to unit variance on the fold's training part (else
        only centre them).
    kind : {'features', 'samples'}
    dtype : torch dtype of the target-side products.
    col_weight : tensor (p,), float64, optional
        Non-negative factor applied to each feature after the fold's
        standardisation (banded ridge: ``sqrt(γ_b)`` on the columns of band
        ``b``, see :mod:`bids_taskenc.encoding.banded`). A weight of 0 removes
        the feature.
    eigh_dtype : torch dtype of the eigendecomposition (default float64;
        see :func:`_eigh`).
    """
    xt = xs[train_idx]
    xv = xs[val_idx]
    n_t = xt.shape[0]
    mean, scale = feature_statistics(xt, standardize)
    if col_weight is not None:
        scale = scale / col_weight  # weight 0 -> infinite scale -> the feature is 0 everywhere below
    xv_std = (xv - mean) / scale
    if kind == "features":
        if gram_xs is None:
            raise ValueError("the features branch needs the Gram matrix of the training features")
        cov = (gram_xs - xv.T @ xv - n_t * torch.outer(mean, mean)) / torch.outer(scale, scale)
        lam, vec = _eigh(cov, eigh_dtype)
        proj = vec.T / scale
        return EigenBasis(
            kind=kind,
            eigvals=lam,
            u=(xv_std @ vec).to(dtype),
            n_train=n_t,
            train_idx=train_idx,
            val_idx=val_idx,
            proj=proj.to(dtype),
            offset=(proj @ mean).to(dtype),
        )
    if kind == "samples":
        xt_std = (xt - mean) / scale
        lam, q = _eigh(xt_std @ xt_std.T, eigh_dtype)
        return EigenBasis(
            kind=kind,
            eigvals=lam,
            u=((xv_std @ xt_std.T) @ q).to(dtype),
            n_train=n_t,
            train_idx=train_idx,
            val_idx=val_idx,
            q=q.to(dtype),
        )
    raise ValueError(f"kind must be 'features' or 'samples', got {kind!r}")


def decompose_full(
    xs: torch.Tensor,
    gram_xs: torch.Tensor | None,
    xs_test: torch.Tensor,
    *,
    kind: str,
    dtype: torch.dtype,
    want_weights: bool,
    col_weight: torch.Tensor | None = None,
    eigh_dtype: torch.dtype = torch.float64,
) -> EigenBasis:
    """Diagonalise the ridge problem of the whole training set.

    ``xs`` [n, p] and ``xs_test`` [n_test, p] are float64 features already
    standardised (or centred) with the training statistics. ``col_weight``
    [p] multiplies each standardised feature (see :func:`decompose_fold`);
    ``proj`` then maps ``xsᵀ ys`` (unweighted) to ``Z`` and the weights apply
    to the unweighted standardised features.
    """
    n = xs.shape[0]
    if col_weight is not None:
        if kind == "features" and gram_xs is not None:
            gram_xs = gram_xs * torch.outer(col_weight, col_weight)
        xs = xs * col_weight
        xs_test = xs_test * col_weight
    if kind == "features":
        if gram_xs is None:
            raise ValueError("the features branch needs the Gram matrix of the training features")
        lam, vec = _eigh(gram_xs, eigh_dtype)
        basis = vec if col_weight is None else vec * col_weight.unsqueeze(1)
        return EigenBasis(
            kind=kind,
            eigvals=lam,
            u=(xs_test @ vec).to(dtype),
            n_train=n,
            proj=basis.T.to(dtype),
            weight_basis=basis.to(dtype) if want_weights else None,
        )
    if kind == "samples":
        lam, q = _eigh(xs @ xs.T, eigh_dtype)
        weight_basis: torch.Tensor | None = None
        if want_weights:
            weight_basis = xs.T @ q if col_weight is None else (xs.T @ q) * col_weight.unsqueeze(1)
        return EigenBasis(
            kind=kind,
            eigvals=lam,
            u=((xs_test @ xs.T) @ q).to(dtype),
            n_train=n,
            q=q.to(dtype),
            weight_basis=weight_basis.to(dtype) if weight_basis is not None else None,
        )
    raise ValueError(f"kind must be 'features' or 'samples', got {kind!r}")


def fold_projection(
    basis: EigenBasis, ys: torch.Tensor, b: torch.Tensor | None, y_sum: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Project one voxel batch's targets on a fold's eigenbasis.

    Parameters
    ----------
    basis : a fold's :class:`EigenBasis`
    ys : tensor (n, v)
        Training targets centred on the whole training set.
    b : tensor (p, v) or None
        ``xsᵀ ys`` (needed by the features branch).
    y_sum : tensor (v,)
        ``ys.sum(0)`` (zero up to rounding; kept for exactness).

    Returns
    -------
    z : tensor (r, v)
        ``Eigenvectorsᵀ · Xtᵀ Yt`` with the fold's own standardisation and
        target centring.
    a : tensor (r, v)
        ``Uᵀ Yv``, validation features and targets, the targets centred on
        the fold's training mean.
    yv : tensor (n_val, v)
        Validation targets centred on the fold's training mean.
    """
    n = ys.shape[0]
    yv_raw = ys[basis.val_idx]
    mu = (y_sum - yv_raw.sum(0)) / basis.n_train
    yv = yv_raw - mu
    a = basis.u.T @ yv
    if basis.kind == "features":
        # Z + A = Vᵀ D⁻¹ [B + (n μ - Σys) mᵀ-terms]; see the module docstring
        offset, proj = _given(basis.offset, "offset"), _given(basis.proj, "proj")
        z = torch.addmm(torch.outer(offset, n * mu - y_sum), proj, _given(b, "b"))
        z -= a
    else:
        z = _given(basis.q, "q").T @ (ys[basis.train_idx] - mu)
    return z, a, yv


def alpha_scales(eigvals: torch.Tensor, alphas: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``1 / (λ + α)`` [a, r] computed in float64, returned in ``dtype``."""
    return (1.0 / (eigvals.unsqueeze(0) + alphas.unsqueeze(1))).to(dtype)


def score_alphas(
    basis: EigenBasis,
    z: torch.Tensor,
    a: torch.Tensor,
    yv: torch.Tensor,
    scales: torch.Tensor,
    cv_score: str,
    fast: bool = False,
) -> torch.Tensor:
    """Validation score of every alpha for every target of a batch.

    Parameters
    ----------
    basis : the fold's :class:`EigenBasis` (``u`` [n_val, r])
    z, a, yv : from :func:`fold_projection`
    scales : tensor (a, r), ``1/(λ+α)``
    cv_score : {'r', 'r2', 'negmse'}
        Pearson correlation, R² = 1 - SS_res/SS_tot around the validation
        mean (as himalaya's and scikit-learn's ``r2_score``), or the negative
        mean squared error -SS_res/n_val (Wang et al. 2019's criterion).
    fast : bool
        Let the stacked prediction product use TF32 on CUDA (precision
        ``'fast'``, see :mod:`bids_taskenc.encoding.device`).

    Returns
    -------
    scores : tensor (a, v)
        0 where the validation targets are constant (and, for ``'r'``, where
        the predictions are).
    """
    n_val = yv.shape[0]
    n_alphas = scales.shape[0]
    u = basis.u
    u_sum = u.sum(0)
    y_sum = yv.sum(0)
    y_mean = y_sum / n_val
    yc = yv - y_mean
    ss_y = (yc * yc).sum(0)
    # cov[α, j] = Σ_i (P_ij - mean P_j) y_ij = Σ_k s_αk z_kj (U_cᵀ y)_kj
    a_c = a - torch.outer(u_sum, y_mean)
    cov = scales @ (z * a_c)
    # centred predictions of all alphas in one product: [a·n_val, r] @ [r, v]
    u_c = u - u_sum / n_val
    stacked = (scales.unsqueeze(1) * u_c.unsqueeze(0)).reshape(n_alphas * n_val, -1)
    with tf32_matmul(z.device, fast):
        pred_c = (stacked @ z).view(n_alphas, n_val, -1)
    ss_p = pred_c.pow_(2).sum(1)
    y_ok = varying_columns_torch(yv, torch.sqrt(ss_y))
    if cv_score == "r":
        denom = ss_p * ss_y
        ok = (denom > 0) & y_ok
        return torch.where(ok, cov / torch.sqrt(torch.where(ok, denom, torch.ones_like(denom))), torch.zeros_like(cov))
    if cv_score in ("r2", "negmse"):
        p_mean = (scales @ (z * u_sum.unsqueeze(1))) / n_val
        ss_res = ss_y - 2.0 * cov + ss_p + n_val * (y_mean - p_mean) ** 2
        if cv_score == "negmse":
            return -ss_res / n_val
        return torch.where(y_ok, 1.0 - ss_res / torch.where(y_ok, ss_y, torch.ones_like(ss_y)), torch.zeros_like(cov))
    raise ValueError(f"cv_score must be one of {CV_SCORES}, got {cv_score!r}")


def select_alphas(mean_scores: torch.Tensor) -> torch.Tensor:
    """Index of the best alpha per target [v]; exact ties go to the larger alpha.

    ``mean_scores`` [a, v] is ordered by increasing alpha. Ties (e.g. targets
    constant in every fold, all scored 0) take the largest, most regularised
    alpha: the stable choice, and himalaya's.
    """
    n_alphas = mean_scores.shape[0]
    return (n_alphas - 1) - torch.argmax(torch.flip(mean_scores, (0,)), dim=0)


def refit_projection(basis: EigenBasis, ys: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``Z`` [r, v] of the full training set (targets ``ys`` centred on it)."""
    if basis.kind == "features":
        return _given(basis.proj, "proj") @ _given(b, "b")
    return _given(basis.q, "q").T @ ys


def refit_predict(
    basis: EigenBasis, z: torch.Tensor, alpha_per_target: torch.Tensor, want_weights: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Predictions on the evaluation samples, each target with its own alpha.

    Parameters
    ----------
    basis : full-training :class:`EigenBasis` (``u`` [n_test, r])
    z : tensor (r, v), from :func:`refit_projection`
    alpha_per_target : float64 tensor (v,)
    want_weights : bool

    Returns
    -------
    pred : tensor (n_test, v)
        Predictions of the targets centred on their training mean.
    weights : tensor (p, v) or None
        Weights on standardised features.
    """
    scale = (1.0 / (basis.eigvals.unsqueeze(1) + alpha_per_target.unsqueeze(0))).to(z.dtype)
    zs = z * scale
    pred = basis.u @ zs
    weights = _given(basis.weight_basis, "weight_basis") @ zs if want_weights else None
    return pred, weights


def _given(tensor: torch.Tensor | None, name: str) -> torch.Tensor:
    """``tensor``; a ValueError when it is None (a basis of the other kind, or one built without weights)."""
    if tensor is None:
        raise ValueError(f"the eigenbasis has no {name} (built for the other Gram kind, or without weights)")
    return tensor
