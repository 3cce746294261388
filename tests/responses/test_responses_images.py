"""The shared 'average repeats into images, keep trials' step."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_taskenc.errors import InputDataError
from bids_taskenc.responses.images import average_repeats


def test_average_repeats_orders_by_first_showing_and_drops_invalid():
    mask = np.zeros((2, 2, 1), np.uint8)
    mask[0, 0, 0] = mask[0, 1, 0] = mask[1, 1, 0] = 1
    trials = pd.DataFrame({"image_id": ["b", "a", "b", "c", "a", "b"], "session": ["1", "1", "1", "2", "2", "2"]})
    data = np.arange(18, dtype=np.float32).reshape(6, 3)
    data[4, 1] = np.nan
    r = average_repeats(data, trials, nib.Nifti1Image(mask, np.eye(4)), {"ResponseModel": "x"})
    assert r.image_ids == ["b", "a", "c"] and list(r.n_presentations) == [3, 2, 1]
    assert list(r.trial_image_index) == [0, 1, 0, 2, 1, 0] and list(r.image_sessions) == ["1", "1", "2"]
    np.testing.assert_allclose(r.data[0], data[[0, 2, 5]][:, [0, 2]].mean(0))
    assert r.n_voxels == 2 and not np.asarray(r.mask_img.dataobj)[0, 1, 0]
    assert r.provenance == {
        "ResponseModel": "x",
        "NVoxels": 2,
        "NVoxelsDropped": 1,
        "NTrials": 6,
        "NImages": 3,
        "NRepeatedImages": 2,
    }
    with pytest.raises(InputDataError, match="no voxel left"):
        average_repeats(np.full((6, 3), np.nan), trials, nib.Nifti1Image(mask, np.eye(4)))
