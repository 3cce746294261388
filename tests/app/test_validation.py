"""The input check applies the BIDS schema's filename rules and honours ``.bidsignore``, as the official validator does.

A file BIDS does not cover, listed in ``.bidsignore``, must not stop a run
(it exited 16 with the ``bids_validator`` 1.x patterns, which know no
``.bidsignore``); a file with a name BIDS forbids still exits 16 and is
named. Where ``bids-validator-deno`` is installed (``test`` extra), the
official validator is run on the same folders and must agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bids_taskenc.bids.dataset import open_layout
from bids_taskenc.bids.validation import invalid_file_names, is_valid_name
from bids_taskenc.errors import EXIT_VALIDATION, ValidationError

from .conftest import run_app

DENO = Path(sys.executable).parent / "bids-validator-deno"


def _deno_not_included(bids_dir: Path) -> list[str]:
    """Files the official validator flags NOT_INCLUDED (it also names a folder none of whose files is covered)."""
    proc = subprocess.run([str(DENO), str(bids_dir), "--format", "json"], capture_output=True, text=True, timeout=300)
    issues = json.loads(proc.stdout)["issues"]["issues"]
    return sorted(
        i["location"]
        for i in issues
        if i["severity"] == "error" and i["code"] == "NOT_INCLUDED" and not i["location"].endswith("/")
    )


def _run(root: Path) -> int:
    bids = root / "bids"
    return run_app(
        bids,
        root / "out",
        "participant",
        "--features-dir",
        bids / "derivatives" / "features",
        "--work-dir",
        root / "work",
        "--cv-folds",
        "3",
        "--feature-spaces",
        "user:random",
        "--no-reports",
    )


@pytest.fixture
def with_extras(small_copy):
    """The small dataset with files BIDS does not cover: a note under sub-CSI1, a folder of logs, a .log per run."""
    bids = small_copy / "bids"
    (bids / "sub-CSI1" / "scan_notes.txt").write_text("quiet scan\n")
    (bids / "sub-CSI1" / "ses-01" / "eyetracking").mkdir()
    (bids / "sub-CSI1" / "ses-01" / "eyetracking" / "raw.edf").write_text("x")
    (bids / "sub-CSI1" / "ses-01" / "func" / "sub-CSI1_ses-01_task-5000scenes_run-01_presentation.log").write_text("x")
    return bids


def test_default_ignores_are_the_official_validators(small_copy):
    """Dot files and nested derivatives/ are skipped anywhere; code/, stimuli/ ... only at the top level."""
    bids = small_copy / "bids"
    for rel in ("sub-CSI1/.DS_Store", "sub-CSI1/derivatives/x.txt", "sub-CSI1/ses-01/.notes/y.txt"):
        (bids / rel).parent.mkdir(parents=True, exist_ok=True)
        (bids / rel).write_text("x")
    assert invalid_file_names(bids) == []
    for folder in ("code", "stimuli", "log", "sourcedata"):
        (bids / "sub-CSI1" / folder).mkdir()
        (bids / "sub-CSI1" / folder / "a.txt").write_text("x")
    assert invalid_file_names(bids) == [f"/sub-CSI1/{f}/a.txt" for f in ("code", "log", "sourcedata", "stimuli")]
    if DENO.exists():
        assert _deno_not_included(bids) == invalid_file_names(bids)


def test_schema_rules_accept_bold5000_names_and_reject_mismatched_entities():
    assert is_valid_name("sub-CSI1/ses-16/anat/sub-CSI1_ses-16_T1w.nii.gz")
    assert is_valid_name("sub-CSI1/ses-01/func/sub-CSI1_ses-01_task-5000scenes_run-01_bold.nii.gz")
    assert is_valid_name("sub-CSI1/ses-01/func/sub-CSI1_ses-01_task-5000scenes_run-01_events.tsv")
    assert is_valid_name("sub-CSI1/ses-01/sub-CSI1_ses-01_scans.tsv")
    assert not is_valid_name(
        "sub-CSI1/ses-01/func/sub-CSI1_ses-02_task-5000scenes_run-01_bold.nii.gz"
    )  # ses-02 in ses-01
    assert not is_valid_name("sub-CSI1/ses-01/func/sub-CSI2_ses-01_task-5000scenes_run-01_bold.nii.gz")
    assert not is_valid_name("sub-CSI1/ses-01/func/notes_about_run.txt")


def test_bidsignore_patterns_are_honoured(with_extras):
    assert invalid_file_names(with_extras) == [
        "/sub-CSI1/scan_notes.txt",
        "/sub-CSI1/ses-01/eyetracking/raw.edf",
        "/sub-CSI1/ses-01/func/sub-CSI1_ses-01_task-5000scenes_run-01_presentation.log",
    ]
    # gitignore style: a bare name anywhere, a folder, a glob
    (with_extras / ".bidsignore").write_text("scan_notes.txt\n**/eyetracking/\n*.log\n")
    assert invalid_file_names(with_extras) == []
    # a pattern with a slash is anchored at the dataset root
    (with_extras / ".bidsignore").write_text("ses-01/func/*.log\nscan_notes.txt\neyetracking\n")
    assert invalid_file_names(with_extras) == [
        "/sub-CSI1/ses-01/func/sub-CSI1_ses-01_task-5000scenes_run-01_presentation.log"
    ]


@pytest.mark.slow
def test_dataset_with_an_ignored_file_under_sub_is_accepted(small_copy):
    """Failed before (exit 16): bids_validator 1.x's patterns know no .bidsignore."""
    bids = small_copy / "bids"
    (bids / "sub-CSI1" / "scan_notes.txt").write_text("quiet scan\n")
    (bids / ".bidsignore").write_text("scan_notes.txt\n")
    assert _run(small_copy) == 0


@pytest.mark.slow
def test_a_forbidden_name_still_exits_16_naming_the_file(small_copy, capsys):
    bids = small_copy / "bids"
    (bids / ".bidsignore").write_text("scan_notes.txt\n")
    bad = bids / "sub-CSI1" / "ses-01" / "func" / "sub-CSI1_ses-01_task-5000scenes_run-1_bold_copy.nii.gz"
    bad.write_bytes(b"x")
    with pytest.raises(ValidationError, match="run-1_bold_copy.nii.gz: not a valid BIDS file name"):
        open_layout(bids)
    assert _run(small_copy) == EXIT_VALIDATION
    assert "sub-CSI1_ses-01_task-5000scenes_run-1_bold_copy.nii.gz" in capsys.readouterr().err


@pytest.mark.skipif(not DENO.exists(), reason="bids-validator-deno (test extra) is not installed")
def test_the_official_validator_rejects_exactly_the_same_files(with_extras):
    bids = with_extras
    assert _deno_not_included(bids) == invalid_file_names(bids)
    (bids / ".bidsignore").write_text("ses-01/func/*.log\nscan_notes.txt\neyetracking\n")
    assert _deno_not_included(bids) == invalid_file_names(bids) != []
    (bids / ".bidsignore").write_text("*.txt\n**/eyetracking/\n*.log\n")
    assert _deno_not_included(bids) == invalid_file_names(bids) == []


@pytest.mark.slow
def test_template_space_mask_names_its_spatial_reference(tmp_path):
    """Failed before: only T1w runs wrote SpatialReference; a template-space mask sidecar had none.

    (The statistic maps of template runs still have none: their GIFTI copies share the
    volume's sidecar, and the BOLD grid is no reference for fsaverage5.)"""
    from bids_taskenc.outputs.derivatives import read_dataset_links
    from bids_taskenc.outputs.naming import derivative_path, sidecar_path
    from bids_taskenc.testing import make_synthetic_dataset

    space = "MNI152NLin2009cAsym"
    ds = make_synthetic_dataset(
        tmp_path,
        n_participants=1,
        n_sessions=1,
        runs_per_session=2,
        trials_per_run=16,
        n_repeated=2,
        shape=(10, 10, 8),
        space=space,
        seed=3,
    )
    out = tmp_path / "out"
    assert (
        run_app(
            ds.bids_dir,
            out,
            "participant",
            "--features-dir",
            ds.features_dir,
            "--work-dir",
            tmp_path / "work",
            "--cv-folds",
            "3",
            "--feature-spaces",
            "user:random",
            "--no-reports",
        )
        == 0
    )
    links = read_dataset_links(out)
    ents = dict(sub="CSI1", task="5000scenes", space=space)
    for path in (derivative_path(out, **ents, desc="brain", suffix="mask", extension=".nii.gz"),):
        reference = json.loads(sidecar_path(path).read_text())["SpatialReference"]
        _, name, rel = reference.split(":", 2)
        target = links[name] / rel
        assert target.is_file() and f"space-{space}_" in target.name, reference
