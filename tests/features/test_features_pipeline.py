"""featurize: shared decode, order, cache hits, errors naming the file."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from bids_taskenc.features import images as img_mod
from bids_taskenc.features.base import FeatureError
from bids_taskenc.features.cache import FeatureCache
from bids_taskenc.features.pipeline import featurize
from bids_taskenc.features.registry import resolve_feature_spaces
from bids_taskenc.features.user import save_feature_space


def _resolve(names, weights_store=None, features_dir=None):
    return resolve_feature_spaces(names, weights_dir=weights_store, features_dir=features_dir, offline=True)


def _count_calls(monkeypatch, spaces):
    calls = {s.name: 0 for s in spaces}
    for s in spaces:
        orig = s.extract_tensor

        def counted(images, device="cpu", mode="exact", *, _orig=orig, _name=s.name):
            calls[_name] += images.shape[0]
            return _orig(images, device, mode)

        monkeypatch.setattr(s, "extract_tensor", counted)
    return calls


def test_shapes_order_duplicates_and_cache(weights_store, images, tmp_path, monkeypatch):
    spaces = _resolve(["taskonomy:normal", "taskonomy:colorization", "baseline:gabor"], weights_store)
    calls = _count_calls(monkeypatch, spaces)
    names = [p.name for p in images] + [images[0].name]  # a repeat: computed once
    paths = list(images) + [images[0]]
    decodes = []
    real_decode = img_mod.decode
    monkeypatch.setattr(
        "bids_taskenc.features.pipeline.decode", lambda p, sizes: decodes.append(p) or real_decode(p, sizes)
    )
    cache = tmp_path / "cache"
    out = featurize(spaces, names, paths, cache_dir=cache, batch_size=3, progress=False)
    assert {k: v.shape for k, v in out.items()} == {
        "taskonomy:normal": (5, 2048),
        "taskonomy:colorization": (5, 2048),
        "baseline:gabor": (5, 512),
    }
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in out.values())
    np.testing.assert_array_equal(out["taskonomy:normal"][0], out["taskonomy:normal"][4])
    # same weights, different task input (low-saturation RGB vs lightness) -> different features
    assert not np.allclose(out["taskonomy:normal"], out["taskonomy:colorization"])
    assert sorted(decodes) == sorted(images)  # each distinct image decoded once for all spaces
    assert calls == {s.name: 4 for s in spaces}
    assert spaces[0].provenance["precision"] == "fp32"

    # rerun, and "another participant" with the same images under other names in another order
    other = tmp_path / "other"
    other.mkdir()
    copies = []
    for p in reversed(images):
        copies.append(other / ("x_" + p.name))
        shutil.copy(p, copies[-1])
    for s in spaces:
        calls[s.name] = 0
    again = featurize(spaces, [c.name for c in copies], copies, cache_dir=cache, progress=False)
    assert calls == {s.name: 0 for s in spaces}
    for k in out:
        np.testing.assert_array_equal(again[k], out[k][:4][::-1])


def test_without_cache_matches_direct_extract(weights_store, images):
    import torch

    (space,) = _resolve(["taskonomy:normal"], weights_store)
    out = featurize([space], [images[3].name], images[3:], progress=False)["taskonomy:normal"]
    x = torch.from_numpy(np.stack([img_mod.decode(images[3], (256,))[256]])).float() / 255
    np.testing.assert_array_equal(out, space.extract(x))


def test_missing_and_undecodable_images_are_named(images, tmp_path):
    spaces = _resolve(["baseline:pixels"])
    gone = tmp_path / "gone.jpg"
    with pytest.raises(FeatureError, match="gone.jpg: stimulus image not found"):
        featurize(spaces, ["a", "gone.jpg"], [images[0], gone], progress=False)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(FeatureError, match="bad.jpg: stimulus image cannot be decoded"):
        featurize(spaces, ["bad.jpg"], [bad], cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(FeatureError, match="no image file"):
        featurize(spaces, ["nothing.jpg"], [None], progress=False)
    with pytest.raises(FeatureError, match="CUDA is not available"):
        if __import__("torch").cuda.is_available():
            pytest.skip("CUDA present")
        featurize(spaces, ["a"], [images[0]], device="cuda", progress=False)


def test_user_spaces_need_no_paths_and_name_missing_stimuli(tmp_path):
    fdir = tmp_path / "features"
    save_feature_space(
        fdir / "scenes", np.arange(6, dtype=np.float32).reshape(3, 2), ["x.jpg", "y.jpg", "z.jpg"], meta={"group": "3D"}
    )
    spaces = _resolve(None, features_dir=fdir)
    assert [s.name for s in spaces] == ["user:scenes"] and spaces[0].group == "3D"
    out = featurize(spaces, ["z.jpg", "sub/x.jpg"], [None, None], progress=False)
    np.testing.assert_array_equal(out["user:scenes"], [[4, 5], [0, 1]])
    with pytest.raises(FeatureError, match="no row for stimulus 'w.jpg'"):
        featurize(spaces, ["w.jpg"], [None], progress=False)


def test_empty_stimulus_list():
    spaces = _resolve(["baseline:color"])
    assert featurize(spaces, [], [], progress=False)["baseline:color"].shape == (0, 96)


def test_cache_hits_and_misses_are_logged(images, tmp_path, caplog):
    import logging

    spaces = _resolve(["baseline:gabor"])
    names = [p.name for p in images]
    with caplog.at_level(logging.INFO, logger="bids_taskenc.features.pipeline"):
        featurize(spaces, names, list(images), cache_dir=tmp_path / "cache", progress=False)
        featurize(spaces, names, list(images), cache_dir=tmp_path / "cache", progress=False)
    lines = [r.getMessage() for r in caplog.records if "feature cache" in r.getMessage()]
    assert len(lines) == 2
    assert f"0 of {len(images)} images hit, {len(images)} to compute" in lines[0]
    assert f"{len(images)} of {len(images)} images hit, 0 to compute" in lines[1]


def test_cache_rows_not_written_are_logged_and_the_features_returned(images, tmp_path, monkeypatch, caplog):
    spaces = _resolve(["baseline:gabor"])
    names = [p.name for p in images]

    def full_disk(self, image_hash, row):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FeatureCache, "put", full_disk)
    with caplog.at_level(logging.WARNING, logger="bids_taskenc.features.pipeline"):
        out = featurize(spaces, names, list(images), cache_dir=tmp_path / "cache", progress=False)
    assert out["baseline:gabor"].shape[0] == len(images)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, warned
    assert f"feature cache: {len(images)} rows not written" in warned[0] and "No space left" in warned[0]
