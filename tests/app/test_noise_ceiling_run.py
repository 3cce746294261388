"""The noise ceiling through the command line: optional without repeats, NSD's mean of 1/n for mixed repeats."""

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

ENTS = dict(sub="CSI1", task="5000scenes", space="T1w")


def _run(tmp_path, n_repeated: int):
    ds = make_synthetic_dataset(
        tmp_path,
        n_participants=1,
        n_sessions=2,
        runs_per_session=2,
        trials_per_run=20,
        n_repeated=n_repeated,
        shape=(8, 8, 6),
        seed=3,
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
        "--contrast-bootstrap",
        "0",
        "--no-reports",
    )
    return code, out, ds


def _map(out, desc, stat):
    path = derivative_path(out, **ENTS, desc=desc, stat=stat, suffix="statmap", extension=".nii.gz")
    return np.asarray(nib.load(path).dataobj) if path.exists() else None


def _mask(out):
    return (
        np.asarray(nib.load(derivative_path(out, **ENTS, desc="brain", suffix="mask", extension=".nii.gz")).dataobj) > 0
    )


def test_without_repeated_images_the_run_succeeds_without_noise_maps(tmp_path, capfd):
    code, out, _ = _run(tmp_path, n_repeated=0)
    assert code == 0
    assert _map(out, "scene3da", "r") is not None
    for desc, stat in (
        ("noise", "noiseceiling"),
        ("noise", "ncsnr"),
        ("noise", "splithalf"),
        ("scene3da", "rsquarednorm"),
    ):
        assert _map(out, desc, stat) is None
    assert "0 image(s) shown more than once" in capfd.readouterr().err


def test_two_repeated_images_give_a_noise_ceiling_and_normalised_r2(tmp_path, capfd):
    code, out, _ = _run(tmp_path, n_repeated=2)
    assert code == 0
    assert _map(out, "noise", "noiseceiling") is not None and _map(out, "scene3da", "rsquarednorm") is not None
    assert _map(out, "noise", "splithalf") is None
    err = capfd.readouterr().err
    assert "no split-half reliability map" in err and "no noise ceiling" not in err


def test_noise_ceiling_uses_the_mean_of_one_over_n_over_test_images(tmp_path):
    code, out, _ = _run(tmp_path, n_repeated=12)
    assert code == 0
    split = pd.read_csv(
        derivative_path(out, sub="CSI1", task="5000scenes", desc="split", suffix="stimuli", extension=".tsv"), sep="\t"
    )
    n_test = split.loc[split["split"] == "test", "n_presentations"].to_numpy(float)
    assert n_test.min() == 1 and n_test.max() > 1  # a mixed test set: the two formulas differ
    mask = _mask(out)
    ncsnr, nc = _map(out, "noise", "ncsnr")[mask], _map(out, "noise", "noiseceiling")[mask]
    expected = ncsnr**2 / (ncsnr**2 + np.mean(1.0 / n_test))
    np.testing.assert_allclose(nc, expected, rtol=1e-4, atol=1e-6)
    meta = json.loads(
        sidecar_path(
            derivative_path(out, **ENTS, desc="noise", stat="noiseceiling", suffix="statmap", extension=".nii.gz")
        ).read_text()
    )
    assert meta["NAveragedTrials"] == pytest.approx(1.0 / np.mean(1.0 / n_test), rel=1e-12)


def test_ceiling_is_z_scored_within_session_and_normalised_scores_only_where_it_is_reliable(tmp_path):
    from bids_taskenc.bids.dataset import Selection, open_layout, select_runs
    from bids_taskenc.bids.preprocessed import find_preprocessed, open_derivatives
    from bids_taskenc.bids.trials import build_trials
    from bids_taskenc.encoding import noise_ceiling
    from bids_taskenc.responses.travg import tr_average_responses

    code, out, ds = _run(tmp_path, n_repeated=12)
    assert code == 0
    runs = select_runs(open_layout(ds.bids_dir), Selection(tasks=["5000scenes"]))
    layouts = open_derivatives([ds.fmriprep_dir])
    resp = tr_average_responses([find_preprocessed(layouts, r, "T1w") for r in runs], build_trials(runs))
    split = pd.read_csv(
        derivative_path(out, sub="CSI1", task="5000scenes", desc="split", suffix="stimuli", extension=".tsv"), sep="\t"
    )
    n_test = split.loc[split["split"] == "test", "n_presentations"].to_numpy(float)
    sessions = resp.trials["session"].to_numpy(object)
    _, per_session = noise_ceiling(resp.trial_data, resp.trial_image_index, n_average=n_test, sessions=sessions)
    _, all_trials = noise_ceiling(resp.trial_data, resp.trial_image_index, n_average=n_test)
    mask = _mask(out)
    nc = _map(out, "noise", "noiseceiling")[mask]
    np.testing.assert_allclose(nc, per_session, rtol=1e-4, atol=1e-6)
    assert np.abs(per_session - all_trials).max() > 1e-3  # the two z-scorings differ on these data

    norm_path = derivative_path(
        out, **ENTS, desc="scene3da", stat="rsquarednorm", suffix="statmap", extension=".nii.gz"
    )
    norm = np.asarray(nib.load(norm_path).dataobj)[mask]
    r = _map(out, "scene3da", "r")[mask]
    meta = json.loads(sidecar_path(norm_path).read_text())
    reliable = np.isfinite(norm)
    assert meta["NVoxelsCeilingReliable"] == int(reliable.sum())
    assert 0 < reliable.sum() < reliable.size  # null voxels have no reliable ceiling: NaN there
    np.testing.assert_allclose(norm[reliable], np.maximum(r[reliable], 0) ** 2 / nc[reliable], rtol=1e-4, atol=1e-6)
    assert (norm[reliable] >= 0).all() and meta["NVoxelsAboveCeiling"] == int((norm[reliable] > 1).sum())
    assert "max(r, 0)^2 / NC" in meta["Formula"] and "FDR" in meta["CeilingReliability"]
