"""Taskonomy features on the GPU (bf16 autocast, channels-last) against fp32 on the CPU.

The real pipeline on both devices (decode, pinned copy, conversion, each
encoder) for the paper's 21 encoders with seeded random weights, on a few
photo-sized JPEGs: every image's 2,048 features must correlate >= 0.999 with
the CPU's, for every encoder.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bids_taskenc.features.pipeline import featurize
from bids_taskenc.features.taskonomy import PAPER_TASKS, TaskonomyFeatureSpace

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch sees none)"),
]

N_IMAGES = 4


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:375, 0:500].astype(np.float32)
    paths = []
    for i in range(N_IMAGES):
        base = 128 + 90 * np.sin(x / rng.uniform(5, 40) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(5, 40))
        img = np.stack([base, np.roll(base, 30, 1), 255 - base], -1) + rng.normal(0, 12, (375, 500, 3))
        p = folder / f"img{i}.jpg"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(p, quality=90)
        paths.append(p)
    return paths


def _spaces():
    return [TaskonomyFeatureSpace.random(t, seed=i) for i, t in enumerate(PAPER_TASKS)]


def test_bf16_gpu_features_match_fp32_cpu(jpegs):
    names = [p.name for p in jpegs]
    gpu_spaces, cpu_spaces = _spaces(), _spaces()
    gpu = featurize(gpu_spaces, names, jpegs, device="cuda", batch_size=N_IMAGES, progress=False)
    cpu = featurize(cpu_spaces, names, jpegs, device="cpu", batch_size=N_IMAGES, progress=False)
    worst = {}
    for s_gpu, s_cpu in zip(gpu_spaces, cpu_spaces):
        assert s_gpu.provenance["precision"] == "bf16-autocast" and s_cpu.provenance["precision"] == "fp32"
        a, b = gpu[s_gpu.name], cpu[s_cpu.name]
        assert a.shape == b.shape == (N_IMAGES, 2048) and a.dtype == np.float32
        assert np.isfinite(a).all()
        assert b.std(1).min() > 0  # the random weights give non-constant features
        worst[s_gpu.name] = min(np.corrcoef(a[i], b[i])[0, 1] for i in range(N_IMAGES))
    bad = {k: round(v, 5) for k, v in worst.items() if not v >= 0.999}
    assert not bad, f"bf16 GPU vs fp32 CPU correlation below 0.999: {bad}"


def test_encoder_runs_channels_last_on_gpu():
    space = TaskonomyFeatureSpace.random("normal", seed=0)
    enc = space.encoder("cuda")
    conv = next(m for m in enc.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_cuda
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 256, 256, device="cuda")
    out = space.extract_tensor(x, "cuda")
    assert out.shape == (2, 2048) and out.dtype == torch.float32 and out.is_cuda
