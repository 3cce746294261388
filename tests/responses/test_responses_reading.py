"""Reading runs: int16 scaling in float32, no 4-D float copy, parallel reading identical to serial."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.bids.dataset import RunFiles
from bids_taskenc.bids.preprocessed import PreprocessedRun
from bids_taskenc.errors import InputDataError, UsageError
from bids_taskenc.responses import images
from bids_taskenc.responses.bold import load_run, read_masked
from bids_taskenc.responses.lsa import lsa_responses
from bids_taskenc.responses.runs import reader_threads
from bids_taskenc.responses.travg import tr_average_responses

TR = 2.0
SHAPE = (12, 10, 8)
N_VOLS = 60


def _brain(shape=SHAPE) -> np.ndarray:
    g = np.indices(shape).astype(float)
    c = (np.array(shape) - 1) / 2
    return (((g - c[:, None, None, None]) / (np.array(shape)[:, None, None, None] / 2.2)) ** 2).sum(0) < 1


def _write_int16(path: Path, data: np.ndarray, affine=None) -> nib.Nifti1Image:
    """float data saved as int16 with the slope and intercept nibabel picks (as fMRIPrep 1.x / BOLD5000 store it)."""
    img = nib.Nifti1Image(data.astype(np.float32), np.eye(4) if affine is None else affine)
    img.set_data_dtype(np.int16)
    nib.save(img, path)
    return img


def _runs(tmp_path: Path, n_runs: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    brain = _brain()
    mask_path = tmp_path / "brain_mask.nii.gz"
    nib.save(nib.Nifti1Image(brain.astype(np.uint8), np.eye(4)), mask_path)
    pruns, rows = [], []
    images_ = [f"img{i:03d}.jpg" for i in range(30)]
    for r in range(1, n_runs + 1):
        data = np.zeros(SHAPE + (N_VOLS,), np.float32)
        data[brain] = 800 + 40 * rng.standard_normal((int(brain.sum()), N_VOLS))
        bold = tmp_path / f"sub-01_task-t_run-{r:02d}_desc-preproc_bold.nii.gz"
        _write_int16(bold, data)
        events = tmp_path / f"sub-01_task-t_run-{r:02d}_events.tsv"
        events.write_text("onset\tduration\n")
        raw = RunFiles(subject="01", session=None, task="t", run=r, bold=bold, events=events, repetition_time=TR)
        prun = PreprocessedRun(raw=raw, bold=bold, mask=mask_path, confounds=None, space="T1w", naming="modern")
        pruns.append(prun)
        onsets = np.arange(4.0, 100.0, 10.0)
        ids = [images_[(r * 7 + k) % len(images_)] for k in range(len(onsets))]
        rows.append(
            pd.DataFrame({"run_key": raw.label, "onset": onsets, "duration": 1.0, "image_id": ids, "session": "01"})
        )
    return pruns, pd.concat(rows, ignore_index=True), brain


def test_scaled_int16_read_in_float32_matches_nibabel_get_fdata(tmp_path):
    pruns, _, brain = _runs(tmp_path, n_runs=1)
    img = nib.load(pruns[0].bold)
    slope = img.dataobj.slope
    assert img.get_data_dtype() == np.int16 and slope != 1.0  # really a scaled int16 file
    series, _ = load_run(pruns[0], brain)
    assert series.dtype == np.float32 and series.shape == (N_VOLS, int(brain.sum()))
    expected = img.get_fdata()[brain].T  # float64, voxels in the mask's C order
    np.testing.assert_allclose(series, expected, rtol=2e-7, atol=abs(slope) * 1e-3)


def test_a_run_that_reads_to_another_volume_count_than_planned_is_named(tmp_path):
    """The header's count, taken when the runs were planned, is checked where the run is read (travg and lsa)."""
    pruns, _, brain = _runs(tmp_path, n_runs=1)
    assert load_run(pruns[0], brain, n_volumes=N_VOLS)[0].shape[0] == N_VOLS
    with pytest.raises(InputDataError, match=rf"{N_VOLS} volumes read, the header says {N_VOLS + 1}"):
        load_run(pruns[0], brain, n_volumes=N_VOLS + 1)


def test_uncompressed_and_multi_member_gzip_read_like_nibabel(tmp_path):
    rng = np.random.default_rng(1)
    brain = _brain()
    data = (50 * rng.standard_normal(SHAPE + (7,))).astype(np.float32)
    path = tmp_path / "bold.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    np.testing.assert_array_equal(read_masked(path, brain), data[brain].T)
    # the same bytes as a gzip file of two members (legal; gzip -dc reads both)
    raw = path.read_bytes()
    two = tmp_path / "bold2.nii.gz"
    two.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    np.testing.assert_array_equal(read_masked(two, brain), data[brain].T)


def test_truncated_gzip_is_an_input_error_naming_the_file(tmp_path):
    pruns, _, brain = _runs(tmp_path, n_runs=1)
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(pruns[0].bold.read_bytes()[:-5000])
    with pytest.raises(InputDataError, match="cut.nii.gz"):
        read_masked(cut, brain)


def test_no_4d_float_copy_while_reading(tmp_path):
    # smooth, well-compressible data on a larger grid: a float32 4-D copy would be 4 bytes per element,
    # a float64 one 8; what the reader may hold is the stored int16 (2) plus the masked series
    shape, n_vols = (40, 40, 30), 40
    brain = np.zeros(shape, bool)
    brain[10:30, 10:30, 8:22] = True  # 12 % of the grid
    t = np.linspace(0, 1, n_vols, dtype=np.float32)
    data = np.zeros(shape + (n_vols,), np.float32)
    data[brain] = 1000 + 30 * np.sin(6 * t)[None, :] * np.linspace(0.5, 1.5, int(brain.sum()))[:, None]
    path = tmp_path / "big.nii.gz"
    _write_int16(path, data)
    n = int(np.prod(shape)) * n_vols
    raw = RunFiles(
        subject="01", session=None, task="t", run=1, bold=path, events=tmp_path / "e.tsv", repetition_time=TR
    )
    prun = PreprocessedRun(raw=raw, bold=path, mask=None, confounds=None, space="T1w", naming="modern")
    load_run(prun, brain)  # warm imports and caches
    tracemalloc.start()
    try:
        series, _ = load_run(prun, brain)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert series.dtype == np.float32
    # stored int16 (2n) + compressed bytes + masked float32 (0.48n): below one float32 4-D copy (4n);
    # nibabel's scaled read (np.asarray(img.dataobj, dtype=np.float32)) peaked at 16 bytes per element
    assert peak < 3.2 * n, f"peak {peak / n:.2f} bytes per 4-D element"


def test_parallel_reading_is_bit_identical_to_serial(tmp_path):
    pruns, trials, _ = _runs(tmp_path, n_runs=5)
    serial = tr_average_responses(pruns, trials, n_threads=1)
    parallel = tr_average_responses(pruns, trials, n_threads=3)
    np.testing.assert_array_equal(parallel.trial_data, serial.trial_data)
    np.testing.assert_array_equal(parallel.data, serial.data)
    assert parallel.image_ids == serial.image_ids
    pd.testing.assert_frame_equal(parallel.trials, serial.trials)
    lsa1 = lsa_responses(pruns, trials, n_threads=1)
    lsa3 = lsa_responses(pruns, trials, n_threads=3)
    np.testing.assert_array_equal(lsa3.trial_data, lsa1.trial_data)
    np.testing.assert_array_equal(lsa3.data, lsa1.data)


def test_progress_bar_of_runs_read_only_when_asked(tmp_path, capsys):
    pruns, trials, _ = _runs(tmp_path, n_runs=3)
    tr_average_responses(pruns, trials, n_threads=2)
    assert "runs read" not in capsys.readouterr().err
    tr_average_responses(pruns, trials, n_threads=2, progress=True)
    err = capsys.readouterr().err
    assert "runs read" in err and "3/3" in err
    lsa_responses(pruns, trials, progress=True)
    err = capsys.readouterr().err
    assert "runs read" in err and "3/3" in err


def test_a_failing_run_is_raised_from_the_reader_threads(tmp_path):
    pruns, trials, _ = _runs(tmp_path, n_runs=3)
    pruns[1].bold.write_bytes(pruns[1].bold.read_bytes()[:-3000])
    with pytest.raises(InputDataError, match="run-02"):
        tr_average_responses(pruns, trials, n_threads=2)


def test_average_repeats_in_blocks_is_bit_identical(tmp_path, monkeypatch):
    pruns, trials, _ = _runs(tmp_path, n_runs=3)
    whole = tr_average_responses(pruns, trials, n_threads=1)
    monkeypatch.setattr(images, "AVERAGE_BLOCK_BYTES", 8 * 30 * 7)  # 7 voxels a block
    blocks = tr_average_responses(pruns, trials, n_threads=1)
    np.testing.assert_array_equal(blocks.data, whole.data)


def test_memory_ceiling_limits_reader_threads_and_refuses_what_cannot_fit():
    assert reader_threads(4, per_run=10**9, mem_bytes=None) == 4
    assert reader_threads(4, per_run=10**9, mem_bytes=3.5e9, resident=1e9) == 2
    assert reader_threads(4, per_run=10**9, mem_bytes=1.2e9, resident=1e8) == 1
    with pytest.raises(UsageError, match="--mem"):
        reader_threads(4, per_run=10**9, mem_bytes=1.5e9, resident=1e9)


def test_mem_gb_below_the_responses_is_refused_before_reading(tmp_path):
    pruns, trials, _ = _runs(tmp_path, n_runs=2)
    with pytest.raises(UsageError, match="at least"):
        tr_average_responses(pruns, trials, mem_gb=1e-6)


def test_work_cache_stores_responses_once_in_float32_and_rebuilds_data_exactly(tmp_path):
    from bids_taskenc.workflow.cache import WorkCache

    pruns, trials, _ = _runs(tmp_path, n_runs=3)
    resp = tr_average_responses(pruns, trials, n_threads=1)
    assert (resp.n_presentations > 1).any()
    cache = WorkCache(tmp_path / "work")
    folder = cache.store("responses", "k", resp)
    back = cache.load("responses", "k")
    np.testing.assert_array_equal(back.data, resp.data)
    np.testing.assert_array_equal(back.trial_data, resp.trial_data)
    assert back.data.dtype == np.float32 and back.trial_data.dtype == np.float32
    big = [a for a in (np.load(p) for p in folder.glob("a*.npy")) if a.ndim == 2 and a.shape[1] == resp.n_voxels]
    # the (n_trials, n_voxels) float32 trials, and not also the (n_images, n_voxels) means derived from them
    assert [(a.shape, a.dtype) for a in big] == [(resp.trial_data.shape, np.dtype(np.float32))]


# --- memory downstream of the responses (workflow/noise.py, workflow/resources.py) ---------------------------


def test_noise_ceiling_in_voxel_blocks_equals_one_call(monkeypatch):
    from bids_taskenc.encoding import ceiling_pvalue, noise_ceiling
    from bids_taskenc.encoding.noise_ceiling import split_half_reliability
    from bids_taskenc.workflow import noise as part

    rng = np.random.default_rng(4)
    ids = np.repeat(np.arange(40), rng.integers(1, 4, 40))
    y = (rng.standard_normal((len(ids), 50)) + rng.standard_normal((40, 50))[ids]).astype(np.float32)
    sessions = np.where(np.arange(len(ids)) < len(ids) // 2, "01", "02").astype(object)
    monkeypatch.setattr(part, "NOISE_CEILING_BLOCK_BYTES", 32 * len(ids) * 7)  # 7 voxels a block
    got = part.in_voxel_blocks(noise_ceiling, y, ids, n_average=2, sessions=sessions)
    want = noise_ceiling(y, ids, n_average=2, sessions=sessions)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        part.in_voxel_blocks(ceiling_pvalue, y, ids, sessions=sessions),
        ceiling_pvalue(y, ids, sessions=sessions),
        rtol=1e-12,
        atol=1e-300,
    )
    (r, n), (r0, n0) = (
        part.in_voxel_blocks(split_half_reliability, y, ids, seed=3),
        split_half_reliability(y, ids, seed=3),
    )
    assert n == n0
    np.testing.assert_allclose(r, r0, rtol=1e-12, atol=1e-15)


def test_fit_budget_is_what_is_left_under_the_ceiling():
    from bids_taskenc.workflow import resources as part

    rss = part.rss_bytes()
    assert rss > 0
    assert part.fit_mem_gb(None, "cpu", 0, 0) is None
    assert part.fit_mem_gb(2.0, "cuda", 10**12, 0) == 2.0  # on a GPU it bounds the device's memory
    left = part.fit_mem_gb(rss / 1e9 + 10.0, "cpu", 10**9, 10**9)
    assert 7.9 < left < 8.0 + 1e-9  # ceiling - resident - inputs - outputs
    with pytest.raises(UsageError, match="--mem"):
        part.fit_mem_gb(rss / 1e9 + 0.5, "cpu", 10**9, 0)


def test_image_means_add_each_images_trials_in_trial_order_like_add_at():
    rng = np.random.default_rng(0)
    _, index = np.unique(rng.integers(0, 300, 1000), return_inverse=True)
    counts = np.bincount(index)
    x = rng.standard_normal((1000, 77)).astype(np.float32)
    sums = np.zeros((len(counts), 77))
    np.add.at(sums, index, x)  # the reference: float64 sums in trial order
    got = images.image_means(x, index, counts)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, (sums / counts[:, None]).astype(np.float32))
