"""Arguments that the type checker showed could be missing get a message naming them (issue 26, mypy).

Before, each of these failed with an unrelated TypeError from deep inside (``Path(None)``, iterating a
0-d array) or returned a wrong-sized tuple.
"""

import pytest

from bids_taskenc.bids.betas import find_beta_files
from bids_taskenc.errors import UsageError
from bids_taskenc.group import resampling


def test_betas_without_a_folder_name_the_option():
    with pytest.raises(UsageError, match="--betas-dir must be given"):
        find_beta_files(None, "01")


def test_block_edges_need_a_decay_or_a_box_size():
    with pytest.raises(ValueError, match="needs decay_voxels, or block_mm and voxel_sizes"):
        resampling.block_edges()


def test_block_edges_are_three_one_per_axis():
    with pytest.raises(ValueError, match="a box has 3 edges"):
        resampling.block_edges(voxel_sizes=(2.0, 2.0), block_mm=4.0)
    assert resampling.block_edges(voxel_sizes=(2.0, 2.0, 3.0), block_mm=6.0) == (3, 3, 2)
