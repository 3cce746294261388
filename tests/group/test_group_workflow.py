"""The group level as three steps (read, compute, write) and its typed settings from the command line."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
from group_synthetic import LABELS, TASK

from bids_taskenc.group import Reference, compute_group, read_group_inputs, resolve_reference, write_group_results
from bids_taskenc.outputs.naming import derivative_path
from bids_taskenc.workflow.group import GroupSettings


def test_compute_writes_nothing_and_write_writes_it(outputs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bids_taskenc")
    before = sorted(p for p in outputs.rglob("*"))
    inputs = read_group_inputs(outputs)
    result = compute_group(inputs, reference=resolve_reference(), n_bootstrap=10, n_permutations=9)
    assert sorted(p for p in outputs.rglob("*")) == before
    assert result.participants == ["CSI1", "CSI2", "CSI3"] and result.labels == LABELS
    assert result.mean_similarity.shape == (len(LABELS), len(LABELS))
    np.testing.assert_allclose(result.mean_similarity, np.mean(list(result.similarity.values()), axis=0))
    assert result.tree is not None and result.tree.support is not None
    assert result.comparison is not None and result.comparison.shared == LABELS  # the bundled Taskonomy table
    assert not [r for r in caplog.records if "Taskonomy comparison skipped" in r.getMessage()]
    files = write_group_results(result, outputs, command_line="notebook")
    mean = derivative_path(outputs, task=TASK, desc="similarity", suffix="matrix", extension=".tsv")
    assert mean in files and mean.exists() and all(Path(f).exists() for f in files)
    assert not list(outputs.glob(".group.*"))


def test_roi_vectors_must_cover_the_brain_mask(outputs, tmp_path):
    inputs = read_group_inputs(outputs)
    n = inputs.maps[0].n_voxels
    ok = {m.participant: np.arange(m.n_voxels) < 20 for m in inputs.maps}
    result = compute_group(
        inputs,
        reference=Reference(skip="not compared"),
        roi_masks={"my roi": ok},
        n_bootstrap=0,
        n_permutations=0,
    )
    assert result.roi_labels == ["myroi"] and set(result.rois[0].n_voxels.values()) == {20}
    with pytest.raises(ValueError, match="brain-mask"):
        compute_group(
            inputs,
            reference=Reference(skip="not compared"),
            roi_masks={"x": {"CSI1": np.ones(n + 1, bool)}},
            n_bootstrap=0,
            n_permutations=0,
        )


def test_command_line_builds_every_group_setting(tmp_path, monkeypatch):
    import io

    from bids_taskenc.cli.parser import parse_args
    from bids_taskenc.cli.settings import group_settings

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", Terminal())  # progress bars are on where stderr is a terminal

    (tmp_path / "a.pkl").write_bytes(b"")
    argv = [
        str(tmp_path),
        str(tmp_path / "out"),
        "group",
        "--participant-label",
        "sub-CSI1",
        "CSI2",
        "--task-label",
        "5000scenes",
        "--space",
        "T1w",
        "--fdr-alpha",
        "0.01",
        "--unthresholded",
        "--roi-dir",
        str(tmp_path),
        "--reference-affinities",
        str(tmp_path / "a.pkl"),
        "--offline",
        "--n-bootstrap",
        "7",
        "--group-permutations",
        "8",
        "--tree-bootstrap",
        "participant",
        "--bootstrap-block-mm",
        "6",
        "--top-k",
        "2",
        "--seed",
        "5",
        "-v",
        "--allow-one-participant",
    ]
    settings = group_settings(parse_args(argv), argv)
    assert dataclasses.asdict(settings) == {
        "task": "5000scenes",
        "participants": ("CSI1", "CSI2"),
        "space": "T1w",
        "fdr_alpha": 0.01,
        "thresholded": False,
        "roi_dir": tmp_path,
        "reference_affinities": tmp_path / "a.pkl",
        "offline": True,
        "n_bootstrap": 7,
        "n_permutations": 8,
        "tree_bootstrap": "participant",
        "bootstrap_block_mm": 6.0,
        "top_k": 2,
        "seed": 5,
        "command_line": settings.command_line,
        "progress": True,
        "allow_one_participant": True,
    }
    assert settings.command_line.startswith("bids_taskenc ") and "--top-k 2" in settings.command_line
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 1
    with pytest.raises(ValueError, match="bootstrap_block_mm"):
        GroupSettings(bootstrap_block_mm=0)
