"""Encoding options through the command line: leave-one-session-out CV, raw features, saved weights."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.outputs.naming import derivative_path, sidecar_path
from bids_taskenc.testing import make_synthetic_dataset

from .conftest import run_app

pytestmark = pytest.mark.slow  # every test here runs the app end to end


def test_session_cv_raw_features_and_weights_reproduce_the_maps(tmp_path):
    ds = make_synthetic_dataset(
        tmp_path,
        n_participants=1,
        n_sessions=3,
        runs_per_session=2,
        trials_per_run=20,
        n_repeated=3,
        shape=(10, 10, 8),
        seed=7,
    )
    out = tmp_path / "out"
    code = run_app(
        ds.bids_dir,
        out,
        "participant",
        "--features-dir",
        ds.features_dir,
        "--work-dir",
        tmp_path / "work",
        "--feature-spaces",
        "scene3da",
        "--cv-scheme",
        "session",
        "--no-standardize",
        "--save-weights",
        "--contrast-bootstrap",
        "0",
    )
    assert code == 0
    ents = dict(sub="CSI1", task="5000scenes", space="T1w", desc="scene3da")
    r_path = derivative_path(out, **ents, stat="r", suffix="statmap", extension=".nii.gz")
    meta = json.loads(sidecar_path(r_path).read_text())
    assert meta["CVScheme"] == "leave-one-group-out" and meta["CVFolds"] == 3 and meta["Standardize"] is False

    saved = np.load(derivative_path(out, **ents, suffix="weights", extension=".npz"))
    mask = (
        np.asarray(
            nib.load(
                derivative_path(
                    out, sub="CSI1", task="5000scenes", space="T1w", desc="brain", suffix="mask", extension=".nii.gz"
                )
            ).dataobj
        )
        > 0
    )
    np.testing.assert_array_equal(saved["voxel_indices"], np.flatnonzero(mask.ravel()))
    np.testing.assert_array_equal(saved["feature_scale"], 1.0)  # --no-standardize: centred only
    alpha = np.asarray(
        nib.load(derivative_path(out, **ents, stat="alpha", suffix="statmap", extension=".nii.gz")).dataobj
    )[mask]
    np.testing.assert_allclose(saved["alpha"], alpha)

    # the weights predict the test images; their correlation with the planted latent is what r measured
    split = pd.read_csv(
        derivative_path(out, sub="CSI1", task="5000scenes", desc="split", suffix="stimuli", extension=".tsv"), sep="\t"
    )
    stimuli = pd.read_csv(ds.features_dir / "scene3da" / "stimuli.tsv", sep="\t")["stimulus"].tolist()
    features = np.load(ds.features_dir / "scene3da" / "features.npy")
    test = [stimuli.index(s) for s in split.loc[split["split"] == "test", "stimulus"]]
    pred = (features[test] - saved["feature_mean"]) / saved["feature_scale"] @ saved["weights"] + saved["intercept"]
    assert pred.shape == (len(test), mask.sum()) and np.isfinite(pred).all()
    r = np.asarray(nib.load(r_path).dataobj)[mask]
    driven = ds.truth_masks["CSI1"]["scene"][mask]
    spread = pred.std(0)
    assert spread[driven].mean() > 3 * spread[~driven].mean()  # predictions vary where the scene cluster drives
    assert r[driven].mean() > 0.5


def test_too_few_permutations_for_fdr_are_called_out(small_copy, capfd):
    bids = small_copy / "bids"
    code = run_app(
        bids,
        small_copy / "out",
        "participant",
        "--features-dir",
        bids / "derivatives" / "features",
        "--work-dir",
        small_copy / "work",
        "--feature-spaces",
        "scene3da",
        "--n-permutations",
        "20",
        "--contrast-bootstrap",
        "0",
    )
    assert code == 0
    err = capfd.readouterr().err
    assert "with 20 permutations the smallest p is about 1/21" in err and "--n-permutations 0" in err


def test_contrast_p_resolution_is_called_out_only_for_the_bootstrap_p(small_copy, capfd):
    """A bootstrap contrast p too coarse for FDR over the mask is warned about; the continuous Williams' t is not."""
    bids = small_copy / "bids"
    common = (
        "--features-dir",
        bids / "derivatives" / "features",
        "--feature-spaces",
        "scene3da",
        "edge2da",
        "--contrast-bootstrap",
        "20",
        "--no-reports",
    )
    assert (
        run_app(
            bids,
            small_copy / "out",
            "participant",
            "--work-dir",
            small_copy / "work",
            *common,
            "--contrast-p",
            "bootstrap",
        )
        == 0
    )
    err = capfd.readouterr().err
    assert "with 20 bootstrap resamples the smallest contrast p is 0.0952" in err and "--contrast-p analytic" in err
    meta = json.loads(next((small_copy / "out").rglob("*_desc-group3DVSgroup2D_stat-p_statmap.json")).read_text())
    assert meta["Contrast"]["PValueMethod"] == "bootstrap"
    from bids_taskenc.report.citation import render_methods

    assert "group3DVSgroup2D: a percentile bootstrap p over 20 resamples" in render_methods(small_copy / "out")[0]
    assert run_app(bids, small_copy / "out2", "participant", "--work-dir", small_copy / "work", *common) == 0
    assert "smallest contrast p" not in capfd.readouterr().err
    func = next((small_copy / "out2").rglob("func"))
    meta = json.loads(next(func.glob("*_desc-group3DVSgroup2D_stat-p_statmap.json")).read_text())["Contrast"]
    # one space per side: the group contrast is a pair, tested with Williams' t
    assert meta["PValueMethod"] == "williams" and meta["DegreesOfFreedom"] == meta["NTest"] - 3
    assert meta["NBootstrap"] == 20 and meta["CILevel"] == 0.95
    assert next(func.glob("*_desc-group3DVSgroup2D_stat-rdifflow_statmap.nii.gz"), None) is not None
    assert next(func.glob("*_desc-group3DVSgroup2D_stat-rdiffhigh_statmap.nii.gz"), None) is not None
    text, cited = render_methods(small_copy / "out2")
    assert "group3DVSgroup2D: Williams' t for two dependent correlations" in text
    assert {"williams1959comparison", "steiger1980tests"} <= set(cited)
    assert "Percentile 95% confidence intervals of each difference came from 20 bootstrap resamples" in text


def test_too_few_test_images_for_the_contrast_t_skip_the_contrasts(tmp_path, capfd):
    """20 images, 3 held out: the fit runs, the contrast t (n - 3 df) cannot, and the log says why."""
    ds = make_synthetic_dataset(
        tmp_path, n_participants=1, n_sessions=1, runs_per_session=1, trials_per_run=26, n_repeated=2
    )
    assert (
        run_app(
            ds.bids_dir,
            tmp_path / "out",
            "participant",
            "--features-dir",
            ds.features_dir,
            "--work-dir",
            tmp_path / "work",
            "--feature-spaces",
            "scene3da",
            "edge2da",
            "--no-reports",
            "--cv-folds",
            "3",
        )
        == 0
    )
    assert "3 test images; the contrast t needs at least 4, so no contrast maps" in capfd.readouterr().err
    assert not list((tmp_path / "out").rglob("*VS*"))


def test_test_split_by_run_holds_out_whole_runs_and_records_it(tmp_path):
    ds = make_synthetic_dataset(
        tmp_path,
        n_participants=1,
        n_sessions=2,
        runs_per_session=4,
        trials_per_run=15,
        n_repeated=10,
        shape=(10, 10, 8),
        seed=3,
    )
    out = tmp_path / "out"
    args = [
        "--features-dir",
        ds.features_dir,
        "--work-dir",
        tmp_path / "work",
        "--feature-spaces",
        "scene3da",
        "edge2da",
    ]
    code = run_app(
        ds.bids_dir,
        out,
        "participant",
        *args,
        "--test-split",
        "run",
        "--n-permutations",
        "99",
        "--contrast-bootstrap",
        "20",
    )
    assert code == 0
    split = pd.read_csv(
        derivative_path(out, sub="CSI1", task="5000scenes", desc="split", suffix="stimuli", extension=".tsv"), sep="\t"
    )
    test_runs = set(split.loc[split["split"] == "test", "run"])
    assert test_runs and test_runs.isdisjoint(split.loc[split["split"] == "train", "run"])
    # no image's response mixes held-out and training runs: a repeated image shown in both is left out
    shown_in: dict[str, set[str]] = {}
    for events in sorted(ds.bids_dir.rglob("*_task-5000scenes_*_events.tsv")):
        run_key = events.name.removesuffix("_events.tsv")
        for stim in pd.read_csv(events, sep="\t")["stim_file"]:
            shown_in.setdefault(str(stim).split("/")[-1], set()).add(run_key)
    sides = {row.stimulus: row.split for row in split.itertuples()}
    assert all(shown_in[s] <= test_runs for s, side in sides.items() if side == "test")
    assert all(shown_in[s].isdisjoint(test_runs) for s, side in sides.items() if side == "train")
    assert any(len(runs & test_runs) and len(runs - test_runs) for runs in shown_in.values()), "a straddler exists"
    assert (split["split"] == "excluded").sum() >= 1
    ents = dict(sub="CSI1", task="5000scenes", space="T1w", desc="scene3da")
    meta = json.loads(
        sidecar_path(derivative_path(out, **ents, stat="r", suffix="statmap", extension=".nii.gz")).read_text()
    )
    assert meta["Split"]["TestSplit"] == "run" and sorted(meta["Split"]["TestGroups"]) == sorted(test_runs)
    assert meta["PermutationScheme"] == "circular shifts within test groups"
    methods = (out / "logs" / "CITATION.md").read_text()
    assert "whole run(s)" in methods and "circular shifts of the test predictions" in methods
    # the contrasts still treat the test images as independent: said in their sidecar and the methods text
    contrast = json.loads(
        sidecar_path(
            derivative_path(
                out, **{**ents, "desc": "group3DVSgroup2D"}, stat="p", suffix="statmap", extension=".nii.gz"
            )
        ).read_text()
    )["Contrast"]
    assert "independent" in contrast["IndependenceAssumption"]
    assert "These contrast tests treat the test images as independent" in methods
