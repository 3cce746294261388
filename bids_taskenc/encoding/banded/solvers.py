"""What the CV solvers of banded ridge share: the pool that runs the decompositions, the validation score of
residuals or predictions, and the test-set scores of the per-set predictions a solver keeps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from .. import stats as _stats
from .kernels import _columns_any, _sum
from .problem import BandedProblem, TestScores
from .split import _r2_split_torch

T = TypeVar("T")


def _decompose_all(jobs: Sequence[Callable[[], T]], device: torch.device) -> list[T]:
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


def _holdout_score(yv: torch.Tensor, sol: torch.Tensor, is_residual: bool, cv_score: str) -> torch.Tensor:
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


def _keep_test_parts(
    parts_host: np.ndarray, cols: slice, sel: torch.Tensor, set_maps: Sequence[torch.Tensor], coefs: torch.Tensor
) -> None:
    """Store, for the voxels ``sel`` of batch ``cols``, each set's test predictions ``set_maps[b] @ coefs``.

    ``parts_host`` (n_sets, n_test, v) float32 on the host; ``coefs`` (r, len(sel)) the voxels' coefficients in the
    basis ``set_maps`` (n_test, r) apply to.
    """
    vox = np.arange(cols.start, cols.stop)[sel.cpu().numpy()]
    for b, m in enumerate(set_maps):
        parts_host[b][:, vox] = (m @ coefs).to(torch.float32).cpu().numpy()


def _scores_from_parts(problem: BandedProblem, parts_host: np.ndarray) -> TestScores:
    """Test-set r, R², ok, R² split, intercept and (optional) predictions from the per-set test predictions.

    ``parts_host`` (n_sets, n_test, v) float32 holds each set's share of the centred test predictions.
    """
    n_sets, n_test, n_voxels = parts_host.shape
    dev, dtype = problem.device, problem.dtype
    out = TestScores.empty(n_sets, n_test, n_voxels, problem.return_predictions)
    for cols in problem.batches:
        y_mean = problem.targets(cols).y_mean
        parts = [torch.from_numpy(parts_host[b][:, cols]).to(device=dev, dtype=dtype) for b in range(n_sets)]
        record_test_scores(out, problem, cols, y_mean, parts)
    return out


def record_test_scores(
    out: TestScores, problem: BandedProblem, cols, y_mean: torch.Tensor, parts: list[torch.Tensor]
) -> None:
    """Score one batch of voxels ``cols`` on the test set into ``out``: r, R², the per-set R² split, the intercept.

    ``parts``: each feature set's ``(n_test, len(cols))`` centred test predictions; ``y_mean``: ``(len(cols),)``
    training means (the intercept), subtracted from the test targets before scoring.
    """
    pred = _sum(parts)
    yt = _columns_any(problem.y_test, cols, pred.device, pred.dtype)
    if not bool(torch.isfinite(yt).all()):
        raise ValueError("Y_test contains NaN or inf")
    yt = yt - y_mean
    rb, okb, _, _ = _stats.pearson_torch(yt, pred)
    out.r[cols] = rb.cpu().numpy()
    out.r2[cols] = _stats.r2_torch(yt, pred).cpu().numpy()
    out.ok[cols] = okb.cpu().numpy()
    out.split[:, cols] = _r2_split_torch(yt, parts).cpu().numpy()
    out.intercept[cols] = y_mean.cpu().numpy()
    if out.predictions is not None:
        out.predictions[:, cols] = (pred + y_mean).cpu().numpy()


@dataclass
class _BestSoFar:
    """Per voxel, over the grid rows scored so far: each row's best score and alpha, the best row and its
    score, and each set's test predictions (n_sets, n_test, v) of that row (float32, host)."""

    per_weight: torch.Tensor
    best_alpha_g: torch.Tensor
    best: torch.Tensor
    g_best: torch.Tensor
    parts_host: np.ndarray

    @classmethod
    def start(cls, problem: BandedProblem, dtype: torch.dtype, fill: float) -> _BestSoFar:
        """Nothing scored yet: scores ``fill`` (best -inf), alpha and row 0, predictions 0."""
        g, v, dev = problem.n_grid, problem.n_voxels, problem.device
        return cls(
            per_weight=torch.full((g, v), fill, dtype=dtype, device=dev),
            best_alpha_g=torch.zeros((g, v), dtype=torch.int64, device=dev),
            best=torch.full((v,), -torch.inf, dtype=dtype, device=dev),
            g_best=torch.zeros(v, dtype=torch.int64, device=dev),
            parts_host=np.zeros((problem.n_sets, problem.xs_test.shape[0], v), np.float32),
        )
