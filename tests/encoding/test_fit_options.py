"""Precision modes, voxel batching, devices, inputs and the result's metadata."""

import json

import numpy as np
import pytest
import torch
from encoding_sim import simulate

from bids_taskenc.encoding import EncodingResult, fit_encoding_model
from bids_taskenc.encoding.device import memory_budget_bytes, resolve_device

FIELDS = ("r", "r2", "p", "q", "alpha", "cv_score", "p_analytic", "cv_scores_per_alpha")


def test_fast_equals_exact_on_cpu(data):
    exact = fit_encoding_model(*data, precision="exact", return_predictions=True)
    fast = fit_encoding_model(*data, precision="fast", return_predictions=True)
    for name in FIELDS + ("predictions",):
        np.testing.assert_array_equal(getattr(fast, name), getattr(exact, name))
    assert fast.metadata()["Precision"] == "fast"


def test_exact_close_to_double(data):
    exact = fit_encoding_model(*data, precision="exact")
    double = fit_encoding_model(*data, precision="double")
    np.testing.assert_allclose(exact.cv_scores_per_alpha, double.cv_scores_per_alpha, atol=1e-4)
    np.testing.assert_allclose(exact.r, double.r, atol=1e-4)


@pytest.mark.parametrize("gram", ["features", "samples"])
def test_voxel_batching_gives_identical_results(gram):
    Xtr, Ytr, Xte, Yte = simulate(n_train=80, p=30, v=23, seed=9)
    kw = dict(gram=gram, n_permutations=40, return_weights=True, return_predictions=True)
    one = fit_encoding_model(Xtr, Ytr, Xte, Yte, **kw)
    # a budget below the fixed cost forces one voxel per batch
    many = fit_encoding_model(Xtr, Ytr, Xte, Yte, mem_gb=1e-6, **kw)
    for name in FIELDS + ("predictions", "weights", "p_permutation", "intercept"):
        np.testing.assert_allclose(getattr(many, name), getattr(one, name), rtol=1e-5, atol=1e-5, err_msg=name)
    # the chosen alpha is an argmax of CV scores that batching changes in the last bits: equal wherever the
    # best alpha wins by more than that rounding, and an equally good one where two tie
    scores = one.cv_scores_per_alpha
    tied = scores >= scores.max(0) - 1e-5
    assert np.array_equal(many.alpha[tied.sum(0) == 1], one.alpha[tied.sum(0) == 1])
    index = np.abs(np.log(one.alphas)[:, None] - np.log(many.alpha.astype(np.float64))[None, :]).argmin(0)
    assert np.all(tied[index, np.arange(many.alpha.size)])


def test_cuda_request_without_cuda_is_a_clear_error(data):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        fit_encoding_model(*data, device="cuda")
    assert resolve_device("auto") == torch.device("cpu")
    assert fit_encoding_model(*data, device="auto").device == "cpu"
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")


def test_memory_budget():
    assert memory_budget_bytes(torch.device("cpu"), 2.0) == 2_000_000_000
    assert memory_budget_bytes(torch.device("cpu"), None) > 0
    with pytest.raises(ValueError):
        memory_budget_bytes(torch.device("cpu"), 0)


def test_torch_inputs_equal_numpy_inputs(data):
    ref = fit_encoding_model(*data)
    out = fit_encoding_model(*(torch.from_numpy(np.asarray(a)) for a in data))
    np.testing.assert_array_equal(out.r, ref.r)
    np.testing.assert_array_equal(out.alpha, ref.alpha)


def test_result_fields_and_metadata(data):
    res = fit_encoding_model(*data, alphas=[1e3, 1.0, 10.0, 10.0], n_folds=5, seed=4, return_weights=True)
    assert isinstance(res, EncodingResult)
    v = data[1].shape[1]
    for name in FIELDS[:-1]:
        arr = getattr(res, name)
        assert arr.shape == (v,) and arr.dtype == np.float32, name
    assert res.cv_scores_per_alpha.shape == (3, v)
    assert res.alphas.tolist() == [1.0, 10.0, 1000.0]
    assert res.p_permutation is None and res.p_method == "analytic"
    np.testing.assert_array_equal(res.p, res.p_analytic)
    assert res.weights.shape == (data[0].shape[1], v)
    meta = json.loads(json.dumps(res.metadata()))
    assert meta["AlphaGrid"] == [1.0, 10.0, 1000.0]
    assert meta["CVFolds"] == 5 and meta["Seed"] == 4 and meta["CVScore"] == "r2"
    assert meta["NTrain"] == data[0].shape[0] and meta["NTest"] == data[2].shape[0]
    assert meta["PValueMethod"] == "analytic" and meta["NPermutations"] == 0 and meta["FDRLevel"] == 0.05
    assert {"Precision", "Device"} <= meta.keys()
    assert set(res.timings) >= {"setup", "decompose", "cv", "refit", "test", "total"}


def test_seed_changes_folds_only_through_cv(data):
    a = fit_encoding_model(*data, seed=0)
    b = fit_encoding_model(*data, seed=1)
    assert not np.array_equal(a.cv_scores_per_alpha, b.cv_scores_per_alpha)


def test_input_validation(data):
    Xtr, Ytr, Xte, Yte = data
    bad_nan = Ytr.copy()
    bad_nan[3, 2] = np.nan
    cases = [
        ((Xtr[:-1], Ytr, Xte, Yte), {}, "samples"),
        ((Xtr, Ytr, Xte[:, :-1], Yte), {}, "features"),
        ((Xtr, Ytr, Xte, Yte[:, :-1]), {}, "voxels"),
        ((Xtr, Ytr, Xte[:2], Yte[:2]), {}, "at least 3 test samples"),
        ((Xtr, bad_nan, Xte, Yte), {}, "NaN"),
        ((np.where(Xtr > 4, np.inf, Xtr), Ytr, Xte, Yte), {}, "NaN or inf"),
        ((Xtr, Ytr, Xte, Yte), {"n_folds": Xtr.shape[0] + 1}, "larger"),
        ((Xtr, Ytr, Xte, Yte), {"alphas": [1.0, -1.0]}, "alphas"),
        ((Xtr, Ytr, Xte, Yte), {"cv_score": "mse"}, "cv_score"),
        ((Xtr, Ytr, Xte, Yte), {"precision": "half"}, "precision"),
        ((Xtr, Ytr, Xte, Yte), {"gram": "kernel"}, "gram"),
        ((Xtr, Ytr, Xte, Yte), {"n_permutations": -1}, "n_permutations"),
        ((Xtr, Ytr, Xte, Yte), {"fdr_alpha": 1.5}, "fdr_alpha"),
        ((Xtr[:, 0], Ytr, Xte, Yte), {}, "2-D"),
    ]
    for args, kw, match in cases:
        with pytest.raises(ValueError, match=match):
            fit_encoding_model(*args, **kw)


def test_single_voxel_vector_target(data):
    Xtr, Ytr, Xte, Yte = data
    res = fit_encoding_model(Xtr, Ytr[:, 0], Xte, Yte[:, 0])
    full = fit_encoding_model(Xtr, Ytr, Xte, Yte)
    assert res.r.shape == (1,)
    np.testing.assert_allclose(res.r[0], full.r[0], rtol=1e-5)


def test_tf32_flags_are_scoped():
    from bids_taskenc.encoding.device import ieee_matmul, tf32_matmul

    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    cuda = torch.device("cuda")  # only host-side flags are touched: no GPU needed
    with ieee_matmul(cuda):
        assert matmul.fp32_precision == "ieee"
        with tf32_matmul(cuda, True):
            assert matmul.fp32_precision == "tf32"
        assert matmul.fp32_precision == "ieee"
        with tf32_matmul(torch.device("cpu"), True):
            assert matmul.fp32_precision == "ieee"
    assert matmul.fp32_precision == before


def test_cgroup_memory_limit_caps_the_budget(tmp_path):
    """A container or SLURM job limit (cgroup v2 or v1) caps the CPU budget; 'max' means no limit."""
    from bids_taskenc.encoding.device import _cgroup_available_bytes

    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    limit.write_text("4000000000\n")
    usage.write_text("1000000000\n")
    assert _cgroup_available_bytes([(str(limit), str(usage))]) == 3_000_000_000
    limit.write_text("max\n")
    assert _cgroup_available_bytes([(str(limit), str(usage))]) is None
    limit.write_text(str(2**63 - 4096))  # cgroup v1 without a limit
    assert _cgroup_available_bytes([(str(tmp_path / "missing"), str(usage)), (str(limit), str(usage))]) is None
    assert _cgroup_available_bytes([(str(tmp_path / "missing"), str(usage))]) is None


def test_rows_of_whole_responses_give_the_copied_rows_results_without_a_copy():
    """train_rows/test_rows gather Y's rows one voxel batch at a time: Y[train_idx] is never made."""
    import tracemalloc

    rng = np.random.default_rng(3)
    n, p, v = 600, 12, 3000
    X = rng.standard_normal((n, p))
    Y = (X[:, :4] @ rng.standard_normal((4, v)) + 2 * rng.standard_normal((n, v))).astype(np.float32)
    perm = rng.permutation(n)
    tr, te = perm[:540], np.sort(perm[540:])
    kw = dict(return_predictions=True, n_permutations=20, mem_gb=0.005)  # batches of a few hundred voxels
    copied = fit_encoding_model(X[tr], Y[tr], X[te], Y[te], **kw)
    tracemalloc.start()
    rows = fit_encoding_model(X[tr], Y, X[te], Y, train_rows=tr, test_rows=te, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    for name in FIELDS + ("predictions", "intercept", "p_permutation"):
        np.testing.assert_allclose(getattr(rows, name), getattr(copied, name), rtol=1e-6, atol=1e-7, err_msg=name)
    # numpy allocations of the fit (outputs, one batch of rows): well under one copy of the training rows
    assert peak < 0.5 * Y[tr].nbytes, (peak, Y[tr].nbytes)
    # torch tensors as the whole responses work the same way
    torch_rows = fit_encoding_model(
        X[tr], torch.from_numpy(Y), X[te], torch.from_numpy(Y), train_rows=tr, test_rows=te, **kw
    )
    np.testing.assert_allclose(torch_rows.r, copied.r, rtol=1e-6, atol=1e-7)


def test_rows_are_checked():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((30, 3)), rng.standard_normal((30, 5)).astype(np.float32)
    tr, te = np.arange(24), np.arange(24, 30)
    for kw, match in [
        ({"train_rows": tr[:-1]}, "samples"),
        ({"test_rows": te.astype(float)}, "integer"),
        ({"train_rows": tr + 10}, "outside"),
        ({"test_rows": te[:, None]}, "1-D"),
    ]:
        with pytest.raises(ValueError, match=match):
            fit_encoding_model(X[tr], Y, X[te], Y, **{"train_rows": tr, "test_rows": te, **kw})
