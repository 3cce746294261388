"""Single-trial GLM (LSA) responses on the small synthetic dataset with a planted truth."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.bids.dataset import Selection, open_layout, select_runs
from bids_taskenc.bids.preprocessed import find_preprocessed, open_derivatives
from bids_taskenc.bids.trials import build_trials
from bids_taskenc.responses.lsa import lsa_responses


@pytest.fixture(scope="module")
def small(small_dataset):
    ds = small_dataset
    runs = select_runs(open_layout(ds.bids_dir), Selection(tasks=["5000scenes"]))
    layouts = open_derivatives([ds.fmriprep_dir])
    preprocessed = [find_preprocessed(layouts, r, "T1w") for r in runs]
    return ds, preprocessed, build_trials(runs)


@pytest.fixture(scope="module")
def glover(small):
    _, preprocessed, trials = small
    return lsa_responses(preprocessed, trials)


def _adjusted_r2(Y: np.ndarray, Z: np.ndarray) -> np.ndarray:
    X = np.column_stack([np.ones(len(Z)), Z])
    beta, *_ = np.linalg.lstsq(X, Y, rcond=None)
    ss_res = ((Y - X @ beta) ** 2).sum(0)
    ss_tot = ((Y - Y.mean(0)) ** 2).sum(0)
    n, p = X.shape
    return 1 - (ss_res / (n - p)) / (ss_tot / (n - 1))


def test_lsa_recovers_planted_amplitudes(small, glover):
    ds, _, _ = small
    r = glover
    sub = ds.participants[0]
    assert r.data.shape == (26, r.n_voxels) and r.data.dtype == np.float32
    assert r.provenance["ResponseModel"] == "lsa" and r.provenance["HRF"] == "glover"
    assert r.provenance["HighPass"] == pytest.approx(1 / 128)
    assert r.provenance["NVoxelsDropped"] == 0 and r.provenance["NRepeatedImages"] == 2
    assert r.trial_data.shape == (32, r.n_voxels) and (r.n_presentations[r.trial_image_index] >= 1).all()
    rows = [ds.image_names.index(i) for i in r.image_ids]
    mask = np.asarray(r.mask_img.dataobj).astype(bool)
    for cluster, truth in ds.truth_masks[sub].items():
        in_region = truth[mask]
        r2 = _adjusted_r2(r.data.astype(np.float64), ds.latents[cluster][rows])
        assert r2[in_region].mean() > 0.5, cluster
        others = ~in_region
        for other_truth in ds.truth_masks[sub].values():
            others &= ~other_truth[mask]  # voxels no cluster drives
        assert r2[others].mean() < 0.1, cluster


def test_lsa_matches_per_voxel_numpy_reference(small):
    """Design built independently with nilearn's compute_regressor; per-voxel numpy lstsq; z-score per session
    (the dataset's one session: all trials), and per run with ``zscore='run'``."""
    from nilearn.glm.first_level import compute_regressor, make_first_level_design_matrix

    _, preprocessed, trials = small
    conf_names = ["csf", "white_matter"]
    r = lsa_responses(preprocessed, trials, confounds=conf_names)
    assert r.provenance["Confounds"] == conf_names
    mask = np.asarray(r.mask_img.dataobj).astype(bool)
    cols = np.array([0, 7, r.n_voxels // 2, r.n_voxels - 1])
    vox = np.flatnonzero(mask.ravel())[cols]
    expected = []
    for prun in preprocessed:
        bold = np.asarray(nib.load(prun.bold).dataobj, dtype=np.float64)
        n_vols = bold.shape[3]
        Y = bold.reshape(-1, n_vols)[vox].T
        run_trials = trials[trials["run_key"] == prun.raw.label]
        frame_times = np.arange(n_vols) * prun.raw.repetition_time
        regs = [
            compute_regressor(np.array([[o], [d], [1.0]]), "glover", frame_times, oversampling=50)[0][:, 0]
            for o, d in zip(run_trials["onset"], run_trials["duration"])
        ]
        conf = pd.read_csv(prun.confounds, sep="\t", na_values="n/a")[conf_names].to_numpy(float)
        drift = make_first_level_design_matrix(frame_times, None, drift_model="cosine", high_pass=1 / 128)
        X = np.column_stack(regs + [conf - conf.mean(0), drift.to_numpy()])
        betas = np.column_stack([np.linalg.lstsq(X, Y[:, k], rcond=None)[0][: len(regs)] for k in range(Y.shape[1])])
        expected.append(betas)
    per_run = np.concatenate([(b - b.mean(0)) / b.std(0) for b in expected])
    expected = np.concatenate(expected)
    expected = (expected - expected.mean(0)) / expected.std(0)
    np.testing.assert_allclose(r.trial_data[:, cols], expected, atol=1e-5)
    by_run = lsa_responses(preprocessed, trials, confounds=conf_names, zscore="run")
    np.testing.assert_allclose(by_run.trial_data[:, cols], per_run, atol=1e-5)
    # images: repeats averaged from the same single trials
    first_rep = np.flatnonzero(r.n_presentations > 1)[0]
    np.testing.assert_allclose(r.data[first_rep], r.trial_data[r.trial_image_index == first_rep].mean(0), atol=1e-6)


def test_spm_and_glover_both_run(small, glover):
    _, preprocessed, trials = small
    spm = lsa_responses(preprocessed, trials, hrf_model="spm", high_pass=0.01)
    assert spm.provenance["HRF"] == "spm" and spm.provenance["HighPass"] == 0.01
    assert spm.image_ids == glover.image_ids and spm.data.shape == glover.data.shape
    assert not np.allclose(spm.data, glover.data)
    assert np.corrcoef(spm.data.ravel(), glover.data.ravel())[0, 1] > 0.9
    with pytest.raises(ValueError, match="hrf_model"):
        lsa_responses(preprocessed, trials, hrf_model="fir")


def test_lsa_drops_constant_voxels(small, tmp_path):
    _, preprocessed, trials = small
    import dataclasses

    img = nib.load(preprocessed[0].bold)
    data = np.asarray(img.dataobj, dtype=np.float32).copy()
    brain = np.asarray(nib.load(preprocessed[0].mask).dataobj) > 0
    i, j, k = np.argwhere(brain)[0]
    data[i, j, k] = 50.0
    path = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine), path)
    runs = [dataclasses.replace(preprocessed[0], bold=path), preprocessed[1]]
    r = lsa_responses(runs, trials)
    assert r.provenance["NVoxelsDropped"] == 1 and np.isfinite(r.data).all()
    assert not np.asarray(r.mask_img.dataobj)[i, j, k]


def test_travg_image_responses_are_the_means_of_their_trials(small):
    """Each image's TR-average response is the plain mean of its trials, here computed with pandas (independently of
    ``average_repeats``/``image_means``, which travg, lsa and betas share); images in the order of their first
    showing, with that showing's session. (This test used to compare ``average_repeats`` with itself.)"""
    from bids_taskenc.responses.travg import tr_average_responses

    _, preprocessed, trials = small
    t = tr_average_responses(preprocessed, trials)
    ids = t.trials["image_id"].astype(str).to_numpy()
    first_shown = list(dict.fromkeys(ids))
    assert t.image_ids == first_shown
    counts = pd.Series(ids).value_counts().loc[first_shown].to_numpy()
    assert (counts > 1).sum() == 2, "the dataset repeats two images: the means are checked on real repeats"
    np.testing.assert_array_equal(t.n_presentations, counts)
    np.testing.assert_array_equal(np.asarray(t.image_ids)[t.trial_image_index], ids)
    by_image = pd.DataFrame(t.trial_data.astype(np.float64)).groupby(ids, sort=False)
    # float32 responses of about unit size, means in float64 rounded to float32: equal to float32 rounding
    np.testing.assert_allclose(t.data, by_image.mean().loc[first_shown].to_numpy(), rtol=0, atol=1e-6)
    sessions = t.trials.groupby(ids, sort=False)["session"].first().loc[first_shown].to_numpy()
    np.testing.assert_array_equal(t.image_sessions, sessions)
    assert (t.provenance["NTrials"], t.provenance["NImages"], t.provenance["NRepeatedImages"]) == (
        len(ids),
        len(first_shown),
        2,
    )


def test_betas_are_z_scored_per_session_by_default_per_run_on_request(small, glover):
    """GLMsingle and NSD z-score single-trial betas per session; per run (about 37 trials in BOLD5000) is kept as
    an option (``--lsa-zscore run``) and recorded."""
    _, preprocessed, trials = small
    by_session = glover.trial_data.astype(np.float64)
    runs = glover.trials["run_key"].to_numpy()
    assert glover.provenance["ZScore"] == "session" and "per session" in glover.provenance["Units"]
    np.testing.assert_allclose(by_session.mean(0), 0.0, atol=1e-5)  # one session: all trials
    np.testing.assert_allclose(by_session.std(0), 1.0, atol=1e-4)
    run_means = np.stack([by_session[runs == k].mean(0) for k in np.unique(runs)])
    assert np.abs(run_means).max() > 0.05  # the runs' own means are kept
    by_run = lsa_responses(preprocessed, trials, zscore="run")
    assert by_run.provenance["ZScore"] == "run"
    for k in np.unique(runs):
        np.testing.assert_allclose(by_run.trial_data[by_run.trials["run_key"].to_numpy() == k].mean(0), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="zscore"):
        lsa_responses(preprocessed, trials, zscore="image")
