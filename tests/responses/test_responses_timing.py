"""Trial timing: which volumes make a trial's response, StartTime, and trials outside the run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.bids.dataset import RunFiles
from bids_taskenc.bids.preprocessed import PreprocessedRun
from bids_taskenc.responses.travg import clean_and_zscore, tr_average_responses

TR = 2.0
N_VOLS = 50


def _run(tmp_path: Path, start_time: float = 0.0, seed: int = 0):
    """One run of 4 voxels whose every volume is different, so a response names the volumes it used."""
    rng = np.random.default_rng(seed)
    series = rng.standard_normal((N_VOLS, 4)).astype(np.float32) + 100
    bold = tmp_path / "sub-01_task-t_run-01_desc-preproc_bold.nii.gz"
    nib.save(nib.Nifti1Image(series.T.reshape(2, 2, 1, N_VOLS), np.eye(4)), bold)
    events = tmp_path / "sub-01_task-t_run-01_events.tsv"
    events.write_text("onset\tduration\n")
    raw = RunFiles(subject="01", session=None, task="t", run=1, bold=bold, events=events, repetition_time=TR)
    kwargs = {"start_time": start_time} if start_time else {}
    prun = PreprocessedRun(raw=raw, bold=bold, mask=None, confounds=None, space="T1w", naming="modern", **kwargs)
    return prun, clean_and_zscore(series.T.reshape(2, 2, 1, N_VOLS).reshape(4, N_VOLS).T)


def _trials(prun, onsets) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_key": prun.raw.label,
            "onset": np.asarray(onsets, float),
            "duration": 1.0,
            "image_id": [f"img{i}.jpg" for i in range(len(onsets))],
            "session": None,
        }
    )


def test_onset_just_before_a_tr_boundary_takes_the_volumes_6_and_8_s_later(tmp_path):
    # floor(45.999 / 2) = 22 made the volumes 25, 26 (latencies 4 and 6 s); nearest to 51.999 and 53.999: 26, 27
    prun, z = _run(tmp_path)
    resp = tr_average_responses([prun], _trials(prun, [10.0, 45.999, 46.0]))
    np.testing.assert_allclose(resp.trial_data[0], z[[8, 9]].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(resp.trial_data[1], z[[26, 27]].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(resp.trial_data[2], z[[26, 27]].mean(0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(resp.trial_data[1], z[[25, 26]].mean(0), atol=1e-3)
    assert resp.provenance["StartTime"] == 0.0 and "nearest" in resp.provenance["VolumeChoice"]


def test_start_time_shifts_the_chosen_volumes(tmp_path):
    # volumes stand for k*TR + 1.2 s: onset 10 + 6 s = 16 s is nearest volume 7 (15.2 s), 18 s nearest 8 (17.2 s)
    prun, z = _run(tmp_path, start_time=1.2)
    resp = tr_average_responses([prun], _trials(prun, [10.0]))
    np.testing.assert_allclose(resp.trial_data[0], z[[7, 8]].mean(0), rtol=1e-5, atol=1e-6)
    assert resp.provenance["StartTime"] == 1.2


def test_halfway_targets_take_the_later_volume():
    from bids_taskenc.responses.travg import response_volumes

    vols, negative, outside = response_volumes(np.array([10.0, 0.1 + 0.2 - 0.3]), TR, N_VOLS, [3, 4], start_time=1.0)
    assert vols.tolist() == [[8, 9], [3, 4]]  # (16 - 1) / 2 = 7.5 and (6 - 1) / 2 = 2.5: the later volume
    assert not negative.any() and not outside.any()


def test_negative_onsets_and_volumes_past_the_end_are_left_out_with_a_warning(tmp_path, caplog):
    # onset -30: volumes -12, -11, which numpy indexes from the end of the run (the old code kept it silently);
    # onset -1: inside the run but before it started; onset 95: volume 51 is past the 50 volumes
    prun, z = _run(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bids_taskenc"):
        resp = tr_average_responses([prun], _trials(prun, [-30.0, -1.0, 10.0, 95.0]))
    assert resp.trial_data.shape[0] == 1 and list(resp.trials["onset"]) == [10.0]
    np.testing.assert_allclose(resp.trial_data[0], z[[8, 9]].mean(0), rtol=1e-5, atol=1e-6)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(prun.raw.events) in warnings[0] and "3 trial(s) left out" in warnings[0]
    assert "2 with a negative onset" in warnings[0] and "1 whose response volumes" in warnings[0]


def test_lsa_leaves_out_negative_onsets_and_samples_at_start_time(tmp_path, caplog):
    from bids_taskenc.responses.lsa import lsa_design, lsa_responses

    prun, _ = _run(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bids_taskenc"):
        resp = lsa_responses([prun], _trials(prun, [-30.0, 10.0, 30.0, 50.0, 70.0]))
    assert list(resp.trials["onset"]) == [10.0, 30.0, 50.0, 70.0]
    assert any(
        str(prun.raw.events) in r.getMessage() and "1 with a negative onset" in r.getMessage() for r in caplog.records
    )
    # frame times k*TR + StartTime: the same regressors as onsets StartTime earlier at frame times k*TR
    onsets, durations = np.array([10.0, 30.0]), np.ones(2)
    shifted, _ = lsa_design(onsets, durations, N_VOLS, TR, start_time=1.2)
    reference, _ = lsa_design(onsets - 1.2, durations, N_VOLS, TR)
    plain, _ = lsa_design(onsets, durations, N_VOLS, TR)
    np.testing.assert_allclose(shifted[:, :2], reference[:, :2], atol=0.01)  # nilearn oversamples on its own grid
    assert np.abs(shifted[:, :2] - plain[:, :2]).max() > 0.05


def test_start_time_and_repetition_time_come_from_the_preprocessed_sidecar(tmp_path):
    from bids_taskenc.bids.dataset import Selection, open_layout, select_runs
    from bids_taskenc.bids.preprocessed import find_preprocessed, open_derivatives
    from bids_taskenc.errors import InputDataError
    from bids_taskenc.testing import make_synthetic_dataset

    ds = make_synthetic_dataset(
        tmp_path,
        n_participants=1,
        n_sessions=1,
        runs_per_session=2,
        trials_per_run=16,
        n_repeated=2,
        shape=(5, 5, 4),
        seed=1,
    )
    bolds = sorted(ds.fmriprep_dir.rglob("*_desc-preproc_bold.nii.gz"))
    Path(str(bolds[0]).replace(".nii.gz", ".json")).write_text(
        json.dumps({"RepetitionTime": TR, "SliceTimingCorrected": True, "StartTime": 0.972})
    )
    Path(str(bolds[1]).replace(".nii.gz", ".json")).write_text(json.dumps({"RepetitionTime": 2.5}))
    runs = select_runs(open_layout(ds.bids_dir), Selection(tasks=["5000scenes"]))
    layouts = open_derivatives([ds.fmriprep_dir])
    first = find_preprocessed(layouts, runs[0], "T1w")
    assert first.start_time == pytest.approx(0.972) and first.slice_timing_corrected is True
    np.testing.assert_allclose(first.volume_times(3), [0.972, 2.972, 4.972])
    with pytest.raises(InputDataError, match="RepetitionTime 2.5"):
        find_preprocessed(layouts, runs[1], "T1w")


@pytest.mark.parametrize("trs", [["-1"], ["3", "-2"]])
def test_negative_response_trs_are_a_usage_error(trs):
    from bids_taskenc.cli.parser import parse_args
    from bids_taskenc.errors import EXIT_USAGE, UsageError

    with pytest.raises(UsageError, match="--response-trs") as info:
        parse_args(["bids", "out", "participant", "--response-trs", *trs])
    assert info.value.exit_code == EXIT_USAGE
    assert parse_args(["bids", "out", "participant", "--response-trs", "0", "3"]).response_trs == [0, 3]
