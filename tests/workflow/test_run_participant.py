"""run_participant from Python writes what the command line writes, and records its settings."""

import json

import nibabel as nib
import numpy as np
import pytest

from bids_taskenc.cli.run import main
from bids_taskenc.errors import UsageError
from bids_taskenc.workflow import (
    ComparisonSettings,
    FeatureSettings,
    FitSettings,
    OutputSettings,
    ParticipantSettings,
    run_participant,
)

pytestmark = pytest.mark.slow  # every test here runs the app end to end


@pytest.fixture(scope="module")
def small(small_dataset):
    """The session's small dataset (tests/conftest.py); the runs write only under tmp_path."""
    return small_dataset


def test_python_run_equals_the_command_line_run(small, tmp_path):
    flags = [
        "--features-dir",
        small.features_dir,
        "--feature-spaces",
        "user:scene3da",
        "user:random",
        "--cv-folds",
        "3",
        "--contrast-bootstrap",
        "0",
        "--no-reports",
    ]
    cli_out = tmp_path / "cli"
    assert main([str(a) for a in [small.bids_dir, cli_out, "participant", "--work-dir", tmp_path / "w1", *flags]]) == 0
    settings = ParticipantSettings(
        features=FeatureSettings(spaces=("user:scene3da", "user:random"), features_dir=small.features_dir),
        fit=FitSettings(cv_folds=3),
        comparisons=ComparisonSettings(contrast_bootstrap=0),
        outputs=OutputSettings(work_dir=tmp_path / "w2"),
    )
    py_out = tmp_path / "py"
    outcome = run_participant(small.bids_dir, py_out, "sub-CSI1", settings)
    assert outcome.participant == "CSI1" and outcome.output_dir == py_out.resolve() / "sub-CSI1"
    assert set(outcome.n_significant()) == {"user:scene3da", "user:random"}

    cli_files = sorted(p.relative_to(cli_out) for p in (cli_out / "sub-CSI1").rglob("*") if p.is_file())
    py_files = sorted(p.relative_to(py_out) for p in (py_out / "sub-CSI1").rglob("*") if p.is_file())
    assert cli_files == py_files and len(cli_files) > 20
    for rel in cli_files:
        if rel.name.endswith(".nii.gz"):
            a, b = (np.asanyarray(nib.load(root / rel).dataobj) for root in (cli_out, py_out))
            assert np.array_equal(a, b, equal_nan=True), rel
        elif rel.suffix == ".json":
            a, b = (json.loads((root / rel).read_text()) for root in (cli_out, py_out))
            for side in (a, b):
                for key in ("Config", "CommandLine", "SoftwareVersions", "Resources"):
                    side.pop(key, None)
            assert a == b, rel
    sidecar = json.loads(next((py_out / "sub-CSI1" / "func").glob("*desc-scene3da_stat-r_statmap.json")).read_text())
    assert ParticipantSettings.from_dict(sidecar["Config"]) == settings
    assert (py_out / "dataset_description.json").is_file()


def test_a_bad_setting_is_raised_before_any_folder_is_made(small, tmp_path):
    settings = ParticipantSettings(
        features=FeatureSettings(features_dir=small.features_dir),
        comparisons=ComparisonSettings(partitionings=(("user:nosuch", "user:random"),)),
        outputs=OutputSettings(work_dir=tmp_path / "work"),
    )
    with pytest.raises(UsageError, match="nosuch"):
        run_participant(small.bids_dir, tmp_path / "out", "CSI1", settings)
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()
