"""Train/test splits and cross-validation folds."""

import numpy as np
import pytest

from bids_taskenc.encoding import kfold_indices, train_test_split_indices


def test_train_test_split():
    train, test = train_test_split_indices(100, test_fraction=0.15, seed=3)
    assert test.size == 15 and train.size == 85
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(100))
    again = train_test_split_indices(100, test_fraction=0.15, seed=3)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(train_test_split_indices(100, 0.15, seed=4)[1], test)
    with pytest.raises(ValueError):
        train_test_split_indices(100, test_fraction=1.0)
    with pytest.raises(ValueError):
        train_test_split_indices(1)


def test_kfold_partitions_and_is_seeded():
    folds = kfold_indices(23, 4, seed=1)
    vals = [va for _, va in folds]
    assert sorted(len(v) for v in vals) == [5, 6, 6, 6]
    np.testing.assert_array_equal(np.sort(np.concatenate(vals)), np.arange(23))
    for tr, va in folds:
        assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == 23
    # shuffled: not contiguous blocks
    assert any(np.any(np.diff(va) > 1) for va in vals)
    np.testing.assert_array_equal(kfold_indices(23, 4, seed=1)[2][1], folds[2][1])
    with pytest.raises(ValueError, match="larger"):
        kfold_indices(5, 6)
    with pytest.raises(ValueError):
        kfold_indices(5, 1)


def test_leave_one_group_out():
    groups = np.array([2, 1, 2, 3, 1, 3, 3])
    folds = kfold_indices(7, groups=groups)
    assert [va.tolist() for _, va in folds] == [[1, 4], [0, 2], [3, 5, 6]]
    with pytest.raises(ValueError, match="two distinct"):
        kfold_indices(3, groups=[1, 1, 1])
    with pytest.raises(ValueError, match="shape"):
        kfold_indices(3, groups=[1, 2])
