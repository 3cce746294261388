"""Which feature spaces `make demo` uses: user spaces and baselines always, Taskonomy when present and affordable."""

from __future__ import annotations

import numpy as np

from bids_taskenc.features.taskonomy import ENCODER_SHA256
from bids_taskenc.testing.demo import demo_feature_spaces


def _features(tmp_path):
    for name in ("scene3da", "edge2da"):
        (tmp_path / "features" / name).mkdir(parents=True)
        np.save(tmp_path / "features" / name / "features.npy", np.zeros((2, 2)))
    (tmp_path / "features" / "notes").mkdir()  # not a feature space
    return tmp_path / "features"


def test_without_weights_the_demo_uses_user_spaces_and_baselines(tmp_path, monkeypatch):
    monkeypatch.setenv("BIDS_TASKENC_MODELS", str(tmp_path / "empty"))
    features = _features(tmp_path)
    names, why = demo_feature_spaces(features)
    # the synthetic spaces under the Taskonomy task of their group, so that the group level compares with Taskonomy
    assert names == ["user:edgetexture", "user:keypoints3d", "baseline:gabor", "baseline:pixels", "baseline:color"]
    assert "no Taskonomy weights" in why and "scene3da as keypoints3d" in why
    assert np.array_equal(
        np.load(features / "keypoints3d" / "features.npy"), np.load(features / "scene3da" / "features.npy")
    )


def test_taskonomy_encoders_in_the_store_join_when_asked_on_cpu(tmp_path, monkeypatch):
    store = tmp_path / "models"
    store.mkdir()
    (store / f"keypoints3d_encoder-{ENCODER_SHA256['keypoints3d']}.pth").write_bytes(b"x")
    monkeypatch.setenv("BIDS_TASKENC_MODELS", str(store))
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.delenv("BIDS_TASKENC_DEMO_TASKONOMY", raising=False)
    names, why = demo_feature_spaces(_features(tmp_path))
    assert not any(n.startswith("taskonomy:") for n in names) and "BIDS_TASKENC_DEMO_TASKONOMY=1" in why
    monkeypatch.setenv("BIDS_TASKENC_DEMO_TASKONOMY", "1")
    names, _ = demo_feature_spaces(_features(tmp_path / "again"))
    assert names[-1] == "taskonomy:keypoints3d"
    # the encoder keeps its label: scene3da is not renamed onto it, edge2da still is
    assert "user:scene3da" in names and "user:keypoints3d" not in names and "user:edgetexture" in names
