"""outputs/reading.py, the reader of participant outputs that the group level and the reports share."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from bids_taskenc.core.fdr import recorded_fdr_level
from bids_taskenc.outputs import reading


def test_masked_values_sidecars_and_fdr_level(tmp_path):
    root = tmp_path / "out"
    mask = np.zeros((4, 4, 4), np.uint8)
    mask[1:3, 1:3, 1:3] = 1
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    mask_path = reading.brain_mask_path(root, "01", "x", "T1w")
    mask_path.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(mask, affine), mask_path)
    r = np.arange(64, dtype=np.float32).reshape(4, 4, 4)
    r_path = reading.statmap_path(root, "01", "x", "T1w", "a", "r")
    nib.save(nib.Nifti1Image(r, affine), r_path)

    brain, img, path = reading.read_brain_mask(root, "01", "x", "T1w")
    assert path == mask_path and brain.sum() == 8 and img.shape == (4, 4, 4)
    values = reading.read_masked(r_path, brain, img.affine)
    assert values.dtype == np.float64 and list(values) == [float(v) for v in r[brain]]
    assert reading.read_masked_if_present(reading.statmap_path(root, "01", "x", "T1w", "a", "q"), brain) is None
    assert [e["desc"] for e, _ in reading.participant_files(root, "sub-01")] == ["a", "brain"]
    assert reading.list_participants(root) == ["01"]

    nib.save(nib.Nifti1Image(r, np.diag([3.0, 3.0, 3.0, 1.0])), r_path)
    with pytest.raises(reading.DerivativeReadError, match="different affine"):
        reading.read_masked(r_path, brain, img.affine)
    with pytest.raises(reading.DerivativeReadError, match="shape"):
        reading.read_masked(r_path, np.ones((3, 3, 3), bool))

    side = tmp_path / "side.json"
    with pytest.raises(reading.DerivativeReadError, match="is missing"):
        reading.read_sidecar(side)
    assert reading.read_json(side) == {}
    side.write_text("{")
    with pytest.raises(reading.DerivativeReadError, match="not valid JSON"):
        reading.read_sidecar(side)
    side.write_text(json.dumps({"FDRLevel": 0.01}))
    assert recorded_fdr_level(reading.read_sidecar(side)) == 0.01
    assert recorded_fdr_level({"FDRLevel": True}) is None
    assert recorded_fdr_level({"FDRLevel": "0.05"}) is None and recorded_fdr_level({}) is None
