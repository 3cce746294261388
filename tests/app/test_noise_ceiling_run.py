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

ENTS = dict(sub="CSI1", task="5000scenes", space="T1w")


def _run(tmp_path, n_repeated: int):
    ds = make_synthetic_dataset(tmp_path, n_participants=1, n_sessions=2, runs_per_session=2, trials_per_run=20,
                                n_repeated=n_repeated, shape=(8, 8, 6), seed=3)
    out = tmp_path / "out"
    code = run_app(ds.bids_dir, out, "participant", "--features-dir", ds.features_dir, "--work-dir",
                   tmp_path / "work", "--feature-spaces", "scene3da", "--contrast-bootstrap", "0", "--no-reports")
    return code, out


def _map(out, desc, stat):
    path = derivative_path(out, **ENTS, desc=desc, stat=stat, suffix="statmap", extension=".nii.gz")
    return np.asarray(nib.load(path).dataobj) if path.exists() else None


def _mask(out):
    return np.asarray(nib.load(derivative_path(out, **ENTS, desc="brain", suffix="mask",
                                               extension=".nii.gz")).dataobj) > 0


def test_without_repeated_images_the_run_succeeds_without_noise_maps(tmp_path, capfd):
    code, out = _run(tmp_path, n_repeated=0)
    assert code == 0
    assert _map(out, "scene3da", "r") is not None
    for desc, stat in (("noise", "noiseceiling"), ("noise", "ncsnr"), ("noise", "splithalf"),
                       ("scene3da", "rsquarednorm")):
        assert _map(out, desc, stat) is None
    assert "0 image(s) shown more than once" in capfd.readouterr().err


def test_two_repeated_images_give_a_noise_ceiling_and_normalised_r2(tmp_path, capfd):
    code, out = _run(tmp_path, n_repeated=2)
    assert code == 0
    assert _map(out, "noise", "noiseceiling") is not None and _map(out, "scene3da", "rsquarednorm") is not None
    assert _map(out, "noise", "splithalf") is None
    err = capfd.readouterr().err
    assert "no split-half reliability map" in err and "no noise ceiling" not in err


def test_noise_ceiling_uses_the_mean_of_one_over_n_over_test_images(tmp_path):
    code, out = _run(tmp_path, n_repeated=12)
    assert code == 0
    split = pd.read_csv(derivative_path(out, sub="CSI1", task="5000scenes", desc="split", suffix="stimuli",
                                        extension=".tsv"), sep="\t")
    n_test = split.loc[split["split"] == "test", "n_presentations"].to_numpy(float)
    assert n_test.min() == 1 and n_test.max() > 1  # a mixed test set: the two formulas differ
    mask = _mask(out)
    ncsnr, nc = _map(out, "noise", "ncsnr")[mask], _map(out, "noise", "noiseceiling")[mask]
    expected = ncsnr ** 2 / (ncsnr ** 2 + np.mean(1.0 / n_test))
    np.testing.assert_allclose(nc, expected, rtol=1e-4, atol=1e-6)
    meta = json.loads(sidecar_path(derivative_path(out, **ENTS, desc="noise", stat="noiseceiling",
                                                   suffix="statmap", extension=".nii.gz")).read_text())
    assert meta["NAveragedTrials"] == pytest.approx(1.0 / np.mean(1.0 / n_test), rel=1e-12)
