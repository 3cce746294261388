"""Taskonomy encoders in bf16 on the CPU under --precision fast: detection, faithfulness, cache keys.

The bf16 path is forced with ``BIDS_TASKENC_CPU_BF16=1`` so that the faithfulness checks run on any
CPU (where bf16 is emulated they are only slower); the speed is measured in benchmarks/featurize.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bids_taskenc.encoding.stats import pearson_r
from bids_taskenc.features import cpu
from bids_taskenc.features import taskonomy as T
from bids_taskenc.features.pipeline import featurize


@pytest.fixture
def force_bf16(monkeypatch):
    monkeypatch.setenv(cpu.OVERRIDE_ENV, "1")


def _rowwise_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per image (row), the Pearson r of the two feature vectors."""
    return pearson_r(a.T, b.T)


def test_cpu_flags_read_x86_and_arm_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    old = tmp_path / "old"
    old.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    assert cpu.cpu_flags(x86) & cpu.NATIVE_BF16_FLAGS == {"avx512_bf16"}
    assert cpu.cpu_flags(arm) & cpu.NATIVE_BF16_FLAGS == {"bf16"}
    assert not cpu.cpu_flags(old) & cpu.NATIVE_BF16_FLAGS
    assert cpu.cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    ("device", "mode", "override", "expected"),
    [
        ("cpu", "exact", "1", "fp32"),  # --precision exact keeps the exact path, whatever the CPU
        ("cpu", "fast", "1", "bf16-autocast-cpu"),
        ("cpu", "fast", "0", "fp32"),  # no native bf16: emulated bf16 is slower, so fp32
        ("cuda:0", "exact", "0", "bf16-autocast"),  # CUDA as before
    ],
)
def test_encoder_precision(monkeypatch, device, mode, override, expected):
    monkeypatch.setenv(cpu.OVERRIDE_ENV, override)
    assert cpu.encoder_precision(device, mode) == expected
    assert T.TaskonomyFeatureSpace.random("normal").precision(device, mode) == expected


def test_bf16_cpu_features_correlate_with_exact_fp32(force_bf16):
    """Per image, the bf16 latent correlates >= 0.999 with exact fp32 (the issue's bar), for an encoder
    with a clipped input and one with the CIELAB lightness input."""
    images = torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    for task in ("normal", "colorization"):
        space = T.TaskonomyFeatureSpace.random(task, seed=2)
        exact = space.extract(images, "cpu", mode="exact")
        fast = space.extract(images, "cpu", mode="fast")
        assert exact.shape == fast.shape == (3, 2048) and fast.dtype == np.float32
        assert not np.array_equal(exact, fast), "the fast path must really run in bf16"
        assert _rowwise_r(exact, fast).min() >= 0.999
        again = space.extract(images, "cpu", mode="exact")  # the encoder returns to the exact layout
        np.testing.assert_array_equal(again, exact)


def test_bf16_cpu_features_match_visualpriors(random_checkpoint, force_bf16):
    """The bf16 path keeps >= 0.99 correlation with the visualpriors reference encoder in fp32."""
    vp = pytest.importorskip("visualpriors.taskonomy_network")
    theirs = vp.TaskonomyEncoder(normalize_outputs=False, eval_only=True)
    theirs.load_state_dict(torch.load(random_checkpoint, weights_only=True)["state_dict"], strict=True)
    digest = random_checkpoint.name.split("-")[-1][:-4]
    space = T.TaskonomyFeatureSpace.from_weights("normal", random_checkpoint, digest, published=False)
    images = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    ours = space.extract(images, "cpu", mode="fast")
    with torch.inference_mode():
        ref = theirs(T.to_network_input(images, T.TASK_INPUT["normal"])).reshape(2, -1).numpy()
    assert _rowwise_r(ours, ref).min() >= 0.99


def test_featurize_records_the_precision_and_keeps_bf16_rows_apart(tmp_path, images, force_bf16):
    names = [p.name for p in images]
    cache = tmp_path / "cache"
    exact_space = T.TaskonomyFeatureSpace.random("normal", seed=0)
    exact = featurize([exact_space], names, images, cache_dir=cache, batch_size=2, progress=False)
    fast_space = T.TaskonomyFeatureSpace.random("normal", seed=0)
    fast = featurize([fast_space], names, images, cache_dir=cache, batch_size=2, progress=False, precision="fast")
    assert exact_space.provenance["precision"] == "fp32"
    assert fast_space.provenance["precision"] == "bf16-autocast-cpu"
    folders = sorted(p.name for p in cache.iterdir())
    assert len(folders) == 2, "bf16 rows go to their own cache folder, never served as fp32"
    assert _rowwise_r(exact["taskonomy:normal"], fast["taskonomy:normal"]).min() >= 0.999
    again = featurize([T.TaskonomyFeatureSpace.random("normal", seed=0)], names, images, cache_dir=cache)
    np.testing.assert_array_equal(again["taskonomy:normal"], exact["taskonomy:normal"])
