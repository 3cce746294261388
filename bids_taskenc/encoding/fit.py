"""Fit a voxelwise ridge encoding model and score it on held-out stimuli.

:func:`fit_encoding_model` is the one entry point the app uses: features and
responses of a training and a test set in, an :class:`EncodingResult` out.
The work is done by :mod:`~bids_taskenc.encoding.ridge` (solver),
:mod:`~bids_taskenc.encoding.cv` (folds) and
:mod:`~bids_taskenc.encoding.stats` (scores, p, q) on a torch device, in
voxel batches sized to a memory budget. Responses travel to the device once,
one batch at a time; nothing returns to the host inside a batch.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.fdr import DEFAULT_FDR_LEVEL
from . import device as _dev
from . import ridge as _ridge
from . import stats as _stats
from .cv import kfold_indices, validation_split_indices
from .options import DEFAULT_ALPHAS
from .result import EncodingResult


def _as_2d(name: str, a, allow_1d: bool) -> np.ndarray | torch.Tensor:
    if not isinstance(a, torch.Tensor):
        a = np.asarray(a)
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim == 1 and allow_1d:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_columns), got shape {tuple(a.shape)}")
    return a


def _host_float64(name: str, a) -> np.ndarray:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _columns(a, cols: slice, device: torch.device, dtype: torch.dtype, rows: np.ndarray | None = None) -> torch.Tensor:
    """Columns ``cols`` of a (n, v) array or tensor (its ``rows`` only, if given) as a contiguous tensor on ``device``.

    With ``rows`` only the block is gathered (``a[rows, cols]``): no copy of
    ``a[rows]`` as a whole is made.
    """
    if isinstance(a, torch.Tensor):
        block = a[:, cols] if rows is None else a[torch.as_tensor(rows, device=a.device), cols]
        return block.to(device=device, dtype=dtype).contiguous()
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    block = a[:, cols] if rows is None else a[rows, cols]
    return torch.from_numpy(np.ascontiguousarray(block, dtype=np_dtype)).to(device)


def _check_rows(name: str, rows, n: int) -> np.ndarray | None:
    """``rows`` as a 1-D integer index array into ``n`` rows (None stays None)."""
    if rows is None:
        return None
    rows = np.asarray(rows)
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be a 1-D array of integer row indices, got shape {rows.shape} dtype {rows.dtype}"
        )
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"{name} indexes rows outside 0..{n - 1}")
    return rows.astype(np.intp, copy=False)


def _check_alphas(alphas) -> np.ndarray:
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or not np.isfinite(alphas).all() or (alphas <= 0).any():
        raise ValueError("alphas must be a non-empty sequence of positive finite numbers")
    return np.unique(alphas)


def _run_all(jobs: list[Callable], device: torch.device) -> list:
    """Run the decompositions: concurrently on CPU, one after the other on CUDA.

    On CPU, one eigendecomposition per thread is far faster than one
    multi-threaded LAPACK call after another (whose many small parallel regions
    collapse when the cores are shared). CUDA work is queued on one stream
    anyway.
    """
    workers = min(len(jobs), torch.get_num_threads())
    if device.type != "cpu" or workers < 2:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


class _Clock:
    """Stage timings; synchronises the device at each stage boundary so they are honest."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        _dev.synchronize(self.device)
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._t
        self._t = now


def fit_encoding_model(
    X_train,
    Y_train,
    X_test,
    Y_test,
    *,
    alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
    n_folds: int = 7,
    groups=None,
    validation_fraction: float | None = None,
    cv_score: str = _ridge.DEFAULT_CV_SCORE,
    standardize: bool = True,
    gram: str = "auto",
    precision: str = "exact",
    device: str | torch.device = "cpu",
    mem_gb: float | None = None,
    seed: int = 0,
    n_permutations: int = 0,
    p_sides: str = "one-sided",
    fdr_alpha: float = DEFAULT_FDR_LEVEL,
    return_weights: bool = False,
    return_predictions: bool = False,
    progress: bool = False,
    train_rows=None,
    test_rows=None,
    test_groups=None,
) -> EncodingResult:
    """Voxelwise ridge regression with per-voxel alpha by CV, scored on a test set.

    For each voxel, the ridge penalty is the alpha of ``alphas`` with the best
    mean validation score over the folds of the training set; the model is
    then refit on the whole training set with that alpha and evaluated once on
    the test set, which no step before the evaluation touches.

    Parameters
    ----------
    X_train : array (n_train, p)
        Training features (float; numpy array or torch tensor on any device).
    Y_train : array (n_train, v)
        Training responses, float32 preferred (numpy or torch).
    X_test : array (n_test, p)
    Y_test : array (n_test, v)
        Held-out features and responses; ``n_test >= 3``.
    alphas : sequence of float
        Ridge penalties to search (positive; sorted and deduplicated). Default
        :data:`DEFAULT_ALPHAS` = ``logspace(0, 8, 17)``, suited to standardised
        features.
    n_folds : int
        Folds of shuffled k-fold CV on the training set (ignored with ``groups``).
    groups : array (n_train,), optional
        Group label per training sample (e.g. session): leave-one-group-out CV.
    validation_fraction : float in (0, 1), optional
        Instead of k folds, one random split: ``ceil(validation_fraction *
        n_train)`` training samples (seeded) validate every alpha, the rest
        train (Wang et al. 2019's scheme; :func:`~.cv.validation_split_indices`).
        Not together with ``groups``.
    cv_score : {'r2', 'r', 'negmse'}
        Validation score: R² (around the fold's mean; the default, as the mean
        squared error), Pearson correlation, which ignores the predictions'
        scale and so biases the test R² of unpredictable voxels downward, or the
        negative mean squared error (the paper's;
        :data:`~bids_taskenc.encoding.ridge.CV_SCORE_EFFECTS`).
    standardize : bool
        z-score features with training statistics (per fold during CV); if
        False, only centre them. Responses are always centred on the training
        mean (an intercept).
    gram : {'auto', 'features', 'samples'}
        Diagonalise ``XᵀX`` (p×p) or ``XXᵀ`` (n×n); ``'auto'`` takes the smaller
        for each fold and for the refit. Results agree to rounding.
    precision : {'exact', 'fast', 'double'}
        See :mod:`bids_taskenc.encoding.device`.
    device : {'cpu', 'cuda', 'cuda:N', 'auto'}
    mem_gb : float, optional
        Memory budget on the device in GB (1e9 bytes); default 80% of the free
        GPU memory or 50% of the available RAM. Voxels are processed in
        batches that fit it.
    seed : int
        Seed of the CV shuffle and of the permutations.
    n_permutations : int
        If > 0, also compute permutation p-values with this many shuffles of
        the test samples (same shuffles for every voxel), and use them for FDR.
    p_sides : {'one-sided', 'two-sided'}
        Alternative of the analytic and permutation p (H1: r > 0, or r != 0).
    fdr_alpha : float
        FDR level recorded with the result (``result.significant``).
    return_weights, return_predictions : bool
        Keep the (p, v) weights / the (n_test, v) test predictions.
    progress : bool
        Show a progress bar over voxel batches.
    train_rows, test_rows : array of int, optional
        Rows of ``Y_train`` / ``Y_test`` that are the training / test
        responses (in that order), when those are passed whole: the rows are
        gathered one voxel batch at a time, so ``Y[train_idx]`` (n_train × v,
        the size of the responses) is never copied. ``fit_encoding_model(X[tr],
        Y, X[te], Y, train_rows=tr, test_rows=te)`` gives exactly the numbers
        of ``fit_encoding_model(X[tr], Y[tr], X[te], Y[te])``.
    test_groups : array (n_test,), optional
        Group (run or session) of each test sample, samples in time order
        within a group: the permutations shift each group's predictions
        circularly instead of shuffling them
        (:func:`~bids_taskenc.encoding.stats.make_permutations`).

    Returns
    -------
    EncodingResult

    Raises
    ------
    ValueError
        Mismatched shapes, NaN/inf in inputs, ``n_test < 3``, more folds than
        training samples, bad option values, or CUDA asked for but unavailable.
    """
    t_start = time.perf_counter()

    # ------------------------------------------------------------------ validation
    X_train = _as_2d("X_train", X_train, allow_1d=False)
    X_test = _as_2d("X_test", X_test, allow_1d=False)
    Y_train = _as_2d("Y_train", Y_train, allow_1d=True)
    Y_test = _as_2d("Y_test", Y_test, allow_1d=True)
    train_rows = _check_rows("train_rows", train_rows, Y_train.shape[0])
    test_rows = _check_rows("test_rows", test_rows, Y_test.shape[0])
    n_train, p = X_train.shape
    n_test = X_test.shape[0]
    n_voxels = Y_train.shape[1]
    n_y_train = Y_train.shape[0] if train_rows is None else len(train_rows)
    n_y_test = Y_test.shape[0] if test_rows is None else len(test_rows)
    if n_y_train != n_train:
        raise ValueError(f"X_train has {n_train} samples but Y_train has {n_y_train}")
    if n_y_test != n_test:
        raise ValueError(f"X_test has {n_test} samples but Y_test has {n_y_test}")
    if X_test.shape[1] != p:
        raise ValueError(f"X_train has {p} features but X_test has {X_test.shape[1]}")
    if Y_test.shape[1] != n_voxels:
        raise ValueError(f"Y_train has {n_voxels} voxels but Y_test has {Y_test.shape[1]}")
    if n_test < 3:
        raise ValueError(f"need at least 3 test samples for correlations and p-values, got {n_test}")
    if p < 1 or n_voxels < 1:
        raise ValueError("need at least one feature and one voxel")
    if cv_score not in _ridge.CV_SCORES:
        raise ValueError(f"cv_score must be one of {_ridge.CV_SCORES}, got {cv_score!r}")
    if gram not in _ridge.GRAMS:
        raise ValueError(f"gram must be one of {_ridge.GRAMS}, got {gram!r}")
    _dev.check_precision(precision)
    if isinstance(n_permutations, bool) or int(n_permutations) != n_permutations or n_permutations < 0:
        raise ValueError(f"n_permutations must be a non-negative integer, got {n_permutations!r}")
    n_permutations = int(n_permutations)
    if not 0.0 < fdr_alpha < 1.0:
        raise ValueError(f"fdr_alpha must be in (0, 1), got {fdr_alpha!r}")
    _stats.check_sides(p_sides)
    alpha_grid = _check_alphas(alphas)
    if validation_fraction is not None:
        if groups is not None:
            raise ValueError("give groups (leave-one-group-out) or validation_fraction (one split), not both")
        folds = validation_split_indices(n_train, validation_fraction, seed=seed)
        cv_scheme = "holdout"
    else:
        folds = kfold_indices(n_train, n_folds, seed=seed, groups=groups)
        cv_scheme = "leave-one-group-out" if groups is not None else "kfold"
    xtr = _host_float64("X_train", X_train)
    xte = _host_float64("X_test", X_test)

    dev = _dev.resolve_device(device)
    dtype = _dev.compute_dtype(precision)
    itemsize = torch.finfo(dtype).bits // 8
    budget = _dev.memory_budget_bytes(dev, mem_gb)
    clock = _Clock(dev)

    fast = precision == "fast"
    with _dev.ieee_matmul(dev), torch.no_grad():
        # -------------------------------------------------------------- features
        xs = torch.from_numpy(xtr).to(dev)
        feat_mean, feat_scale = _ridge.feature_statistics(xs, standardize)
        xs = (xs - feat_mean) / feat_scale
        xs_test = (torch.from_numpy(xte).to(dev) - feat_mean) / feat_scale
        fold_kinds = [_ridge.choose_gram(len(tr), p, gram) for tr, _ in folds]
        full_kind = _ridge.choose_gram(n_train, p, gram)
        need_b = "features" in fold_kinds or full_kind == "features"
        gram_xs = xs.T @ xs if need_b else None
        xs_c = xs.to(dtype) if need_b else None
        clock.lap("setup")

        # -------------------------------------------------------------- decompositions
        jobs = [
            functools.partial(
                _ridge.decompose_fold,
                xs,
                gram_xs,
                torch.from_numpy(tr).to(dev),
                torch.from_numpy(va).to(dev),
                standardize=standardize,
                kind=kind,
                dtype=dtype,
            )
            for (tr, va), kind in zip(folds, fold_kinds)
        ]
        jobs.append(
            functools.partial(
                _ridge.decompose_full, xs, gram_xs, xs_test, kind=full_kind, dtype=dtype, want_weights=return_weights
            )
        )
        *bases, full = _run_all(jobs, dev)
        alphas_t = torch.from_numpy(alpha_grid).to(dev)
        scales = [_ridge.alpha_scales(b.eigvals, alphas_t, dtype) for b in bases]
        del xs, xs_test, gram_xs
        perms = None
        if n_permutations:
            perms = torch.from_numpy(_stats.make_permutations(n_test, n_permutations, seed, test_groups)).to(dev)
        clock.lap("decompose")

        # -------------------------------------------------------------- voxel batches
        n_alphas = alpha_grid.size
        n_val_max = max(len(va) for _, va in folds)
        r_max = max([b.rank for b in bases] + [full.rank])
        n_t_samples = max([b.n_train for b in bases if b.kind == "samples"], default=0)
        # float elements held per voxel at the peak of a batch (targets, their float64 mean,
        # B, one fold's projections and stacked predictions, test-set arrays), with margin
        per_voxel = (
            1.25
            * itemsize
            * (
                4 * n_train
                + 6 * n_test
                + 2 * p
                + 3 * n_val_max
                + 2 * n_t_samples
                + 4 * r_max
                + n_alphas * (n_val_max + 8)
            )
        )
        fixed = (
            sum(
                t.numel() * t.element_size()
                for t in [xs_c, perms, full.u, full.proj, full.q, full.weight_basis]
                + [t for b in bases for t in (b.u, b.proj, b.q)]
                if t is not None
            )
            + itemsize * n_alphas * n_val_max * r_max
        )
        batch = int(min(n_voxels, max(1, (budget - fixed) // per_voxel)))
        max_perm_elements = int(max(n_test * batch, batch * per_voxel / itemsize / 2))

        r = np.empty(n_voxels, np.float32)
        r2 = np.empty(n_voxels, np.float32)
        ok = np.empty(n_voxels, bool)
        best = np.empty(n_voxels, np.int64)
        cv_best = np.empty(n_voxels, np.float32)
        cv_all = np.empty((n_alphas, n_voxels), np.float32)
        intercept = np.empty(n_voxels, np.float32)
        counts = np.zeros(n_voxels, np.int64) if n_permutations else None
        weights = np.empty((p, n_voxels), np.float32) if return_weights else None
        predictions = np.empty((n_test, n_voxels), np.float32) if return_predictions else None

        starts = range(0, n_voxels, batch)
        for start in tqdm(starts, disable=not progress, desc="ridge voxel batches", unit="batch"):
            cols = slice(start, min(start + batch, n_voxels))
            yb = _columns(Y_train, cols, dev, dtype, train_rows)
            yt = _columns(Y_test, cols, dev, dtype, test_rows)
            finite = torch.stack([torch.isfinite(yb).all(), torch.isfinite(yt).all()])
            clock.lap("transfer")

            y_mean = yb.mean(0, dtype=torch.float64).to(dtype)
            # a voxel constant in training is exactly 0 once centred (the mean of
            # equal values need not round back to them), so its predictions are constant
            ys = torch.where(yb.amax(0) > yb.amin(0), yb - y_mean, torch.zeros_like(yb))
            del yb
            y_sum = ys.sum(0)
            b = xs_c.T @ ys if need_b else None
            total = None
            for basis, sc in zip(bases, scales):
                z, a, yv = _ridge.fold_projection(basis, ys, b, y_sum)
                s = _ridge.score_alphas(basis, z, a, yv, sc, cv_score, fast)
                total = s if total is None else total.add_(s)
                del z, a, yv, s
            mean_scores = total / len(bases)
            idx = _ridge.select_alphas(mean_scores)
            clock.lap("cv")

            z_full = _ridge.refit_projection(full, ys, b)
            del b, ys
            pred, w = _ridge.refit_predict(full, z_full, alphas_t[idx], return_weights)
            del z_full
            clock.lap("refit")

            yt = yt - y_mean
            rb, okb, yz, pz = _stats.pearson_torch(yt, pred)
            r2b = _stats.r2_torch(yt, pred)
            clock.lap("test")
            if perms is not None:
                cnt = _stats.permutation_counts_torch(yz, pz, rb, perms, max_perm_elements, sides=p_sides)
                clock.lap("permutation")
            del yz, pz, yt

            if not bool(finite.all()):
                raise ValueError("Y_train or Y_test contains NaN or inf")
            r[cols] = rb.cpu().numpy()
            r2[cols] = r2b.cpu().numpy()
            ok[cols] = okb.cpu().numpy()
            best[cols] = idx.cpu().numpy()
            cv_all[:, cols] = mean_scores.cpu().numpy()
            cv_best[cols] = cv_all[best[cols], np.arange(cols.start, cols.stop)]
            intercept[cols] = y_mean.cpu().numpy()
            if perms is not None:
                counts[cols] = cnt.cpu().numpy()
            if return_weights:
                weights[:, cols] = w.cpu().numpy()
            if return_predictions:
                predictions[:, cols] = (pred + y_mean).cpu().numpy()
            del pred, w, mean_scores, total, idx
            clock.lap("host")

    # ------------------------------------------------------------------ p and q
    p_analytic = np.where(ok, _stats.analytic_p(r, n_test, p_sides), 1.0)
    p_perm = None
    if n_permutations:
        p_perm = np.where(ok, (1.0 + counts) / (1.0 + n_permutations), 1.0)
    p_used = p_perm if p_perm is not None else p_analytic
    q = _stats.fdr_bh(p_used, alpha=fdr_alpha)
    clock.lap("fdr")
    timings = dict(clock.seconds)
    timings["total"] = time.perf_counter() - t_start

    return EncodingResult(
        r=r,
        r2=r2,
        p=p_used.astype(np.float32),
        q=q.astype(np.float32),
        alpha=alpha_grid[best].astype(np.float32),
        cv_score=cv_best,
        p_analytic=p_analytic.astype(np.float32),
        p_permutation=None if p_perm is None else p_perm.astype(np.float32),
        p_method="permutation" if n_permutations else "analytic",
        alphas=alpha_grid,
        cv_scores_per_alpha=cv_all,
        n_train=n_train,
        n_test=n_test,
        n_folds=len(folds),
        n_features=p,
        n_voxels=n_voxels,
        cv_score_kind=cv_score,
        cv_scheme=cv_scheme,
        standardize=bool(standardize),
        gram=gram,
        precision=precision,
        device=str(dev),
        seed=int(seed),
        n_permutations=n_permutations,
        permutation_scheme="free" if test_groups is None else "circular shifts within test groups",
        p_sides=p_sides,
        validation_fraction=None if validation_fraction is None else float(validation_fraction),
        fdr_alpha=float(fdr_alpha),
        feature_mean=feat_mean.cpu().numpy(),
        feature_scale=feat_scale.cpu().numpy(),
        intercept=intercept,
        weights=weights,
        predictions=predictions,
        timings=timings,
    )
