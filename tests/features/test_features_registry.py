"""Registry: names, defaults, aliases, errors; torchvision spaces when torchvision exists."""

from __future__ import annotations

import numpy as np
import pytest

from bids_taskenc.features import registry, taskonomy
from bids_taskenc.features.base import FeatureError
from bids_taskenc.features.baselines import make_baseline
from bids_taskenc.features.taskonomy import PAPER_TASKS
from bids_taskenc.features.user import save_feature_space


def test_available_lists_paper_tasks_baselines_and_user(tmp_path):
    names = registry.available_feature_spaces()
    assert names[:21] == [f"taskonomy:{t}" for t in PAPER_TASKS]
    assert {"baseline:gabor", "baseline:pixels", "baseline:color"} <= set(names)
    save_feature_space(tmp_path / "mine", np.zeros((1, 2)), ["a.jpg"])
    assert "user:mine" in registry.available_feature_spaces(tmp_path)


def test_default_is_the_paper_21(monkeypatch):
    asked = []
    monkeypatch.setattr(
        taskonomy,
        "taskonomy_space",
        lambda task, wd, off: (
            asked.append(task) or make_baseline("pixels").__class__(name=f"taskonomy:{task}", kind="pixels")
        ),
    )
    spaces = registry.resolve_feature_spaces(None)
    assert asked == list(PAPER_TASKS) and len(spaces) == 21


def test_names_aliases_and_errors(weights_store, tmp_path):
    spaces = registry.resolve_feature_spaces(
        ["normal", "rgb2sfnorm", "gabor", "taskonomy:colorization"], weights_dir=weights_store, offline=True
    )
    assert [s.name for s in spaces] == ["taskonomy:normal", "baseline:gabor", "taskonomy:colorization"]
    assert [s.label for s in spaces] == ["normal", "gabor", "colorization"]
    with pytest.raises(FeatureError, match="available: taskonomy:autoencoding"):
        registry.resolve_feature_spaces(["taskonomy:telepathy"])
    with pytest.raises(FeatureError, match="unknown feature space 'nonsense'"):
        registry.resolve_feature_spaces(["nonsense"])
    with pytest.raises(FeatureError, match="two or three views"):
        registry.resolve_feature_spaces(["taskonomy:egomotion"], weights_dir=tmp_path, offline=True)
    with pytest.raises(FeatureError, match="torchvision:<model>:<layer>"):
        registry.resolve_feature_spaces(["torchvision:resnet50"])
    with pytest.raises(FeatureError, match="need --features-dir"):
        registry.resolve_feature_spaces(["user:x"])


def test_bare_name_ambiguous_with_user_space(tmp_path):
    save_feature_space(tmp_path / "gabor", np.zeros((1, 2)), ["a.jpg"])
    with pytest.raises(FeatureError, match="ambiguous"):
        registry.resolve_feature_spaces(["gabor"], features_dir=tmp_path)
    (s,) = registry.resolve_feature_spaces(["user:gabor"], features_dir=tmp_path)
    assert s.name == "user:gabor"


def test_torchvision_missing_is_a_clear_error():
    try:
        import torchvision  # noqa: F401
    except Exception:
        with pytest.raises(FeatureError, match="need torchvision"):
            registry.resolve_feature_spaces(["torchvision:resnet50:layer3"], offline=True)
    else:
        pytest.skip("torchvision is installed")


def test_torchvision_space_offline_rules(tmp_path, monkeypatch):
    pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(FeatureError, match="--offline"):
        registry.resolve_feature_spaces(["torchvision:resnet18:layer3"], offline=True)
