"""Precomputed single-trial betas: both namings, z-scoring, repeats, errors."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.bids.betas import find_beta_files
from bids_taskenc.errors import InputDataError, InputMissingError
from bids_taskenc.responses.betas import beta_responses

SHAPE = (3, 3, 2)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
# session -> stimuli of its volumes ('n/a' = a volume to leave out); a.jpg and c.jpg are repeated
STIMULI = {"01": ["a.jpg", "b.jpg", "c.jpg", "n/a", "a.jpg"], "02": ["d.jpg", "c.jpg", "folder/a.jpg", "e.jpg"]}


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    arrays = {ses: rng.normal(2.0, 1.5, SHAPE + (len(s),)).astype(np.float32) for ses, s in STIMULI.items()}
    arrays["02"][0, 0, 0, :] = 3.0  # constant in one session -> dropped
    arrays["02"][2, 2, 1, 1] = np.nan  # NaN in one trial -> dropped
    return arrays


def _write(root: Path, naming: str, arrays) -> Path:
    for ses, stim in STIMULI.items():
        if naming == "bids":
            folder = root / "sub-CSI1" / f"ses-{ses}" / "func"
            stem = f"sub-CSI1_ses-{ses}_task-5000scenes_space-T1w_desc-singletrial_betas"
        else:
            folder = root / "CSI1"
            stem = f"CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-{ses}"
        folder.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(arrays[ses], AFFINE), folder / f"{stem}.nii.gz")
        pd.DataFrame({"stimulus": stim, "onset": 10.0 * np.arange(len(stim))}).to_csv(
            folder / f"{stem}.tsv", sep="\t", index=False
        )
    return root


def _expected(arrays):
    keep_vox = np.ones(SHAPE, bool)
    keep_vox[0, 0, 0] = keep_vox[2, 2, 1] = False
    trials, rows = [], []
    for ses, stim in STIMULI.items():
        vols = [i for i, s in enumerate(stim) if s != "n/a"]
        b = arrays[ses][keep_vox][:, vols].T.astype(np.float64)
        trials.append((b - b.mean(0)) / b.std(0))
        rows += [s.split("/")[-1] for s in np.array(stim)[vols]]
    return keep_vox, np.concatenate(trials), rows


@pytest.mark.parametrize("naming", ["bids", "release"])
def test_betas_zscored_averaged_trials_kept(tmp_path, naming):
    arrays = _arrays()
    root = _write(tmp_path / naming, naming, arrays)
    files = find_beta_files(root, "sub-CSI1")
    assert [f.session for f in files] == ["01", "02"] and {f.naming for f in files} == {naming}
    r = beta_responses(files)
    keep_vox, trial_z, rows = _expected(arrays)
    np.testing.assert_array_equal(np.asarray(r.mask_img.dataobj).astype(bool), keep_vox)
    assert r.provenance["ResponseModel"] == "betas" and r.provenance["NVoxelsDropped"] == 2
    assert r.image_ids == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]
    assert list(r.n_presentations) == [3, 1, 2, 1, 1]
    assert list(r.image_sessions) == ["01", "01", "01", "02", "02"]
    assert list(r.trials["image_id"]) == rows and list(r.trials["repeat_index"]) == [0, 0, 0, 1, 0, 1, 2, 0]
    np.testing.assert_allclose(r.trial_data, trial_z, atol=1e-5)
    for k, image in enumerate(r.image_ids):
        sel = [i for i, s in enumerate(rows) if s == image]
        np.testing.assert_allclose(r.data[k], trial_z[sel].mean(0), atol=1e-5)


def test_betas_session_filter_and_user_mask(tmp_path):
    arrays = _arrays()
    root = _write(tmp_path, "bids", arrays)
    files = find_beta_files(root, "CSI1", sessions=["ses-01"])
    assert [f.session for f in files] == ["01"]
    user = np.zeros(SHAPE, np.uint8)
    user[1] = 1
    r = beta_responses(files, user_mask=nib.Nifti1Image(user, AFFINE))
    assert r.n_voxels == 6 and r.provenance["NVoxelsDropped"] == 0
    with pytest.raises(InputDataError, match="does not match the betas"):
        beta_responses(files, user_mask=nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), AFFINE))
    with pytest.raises(InputMissingError, match="ses-03|03"):
        find_beta_files(root, "CSI1", sessions=["03"])


def test_betas_errors_name_the_file(tmp_path):
    root = _write(tmp_path, "release", _arrays())
    tsv = root / "CSI1" / "CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-02.tsv"
    pd.read_csv(tsv, sep="\t").iloc[:-1].to_csv(tsv, sep="\t", index=False)
    with pytest.raises(InputDataError, match=r"ses-02\.tsv: 3 rows but .* has 4 volumes"):
        find_beta_files(root, "CSI1")
    tsv.unlink()
    with pytest.raises(InputMissingError, match=r"ses-02\.nii\.gz: no TSV"):
        find_beta_files(root, "CSI1")
    with pytest.raises(InputMissingError, match="no single-trial beta file for sub-CSI2"):
        find_beta_files(root, "CSI2")
    with pytest.raises(InputMissingError, match="does not exist"):
        find_beta_files(tmp_path / "nowhere", "CSI1")
