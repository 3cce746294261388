"""Weight-free baselines: shapes and sanity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bids_taskenc.features.base import FeatureError
from bids_taskenc.features.baselines import make_baseline, srgb_to_lab


def _grating(angle_deg: float, cycles_per_px: float = 1 / 32, size: int = 256) -> torch.Tensor:
    y, x = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    th = math.radians(angle_deg)
    g = 0.5 + 0.4 * torch.cos(2 * math.pi * cycles_per_px * (x * math.cos(th) + y * math.sin(th)))
    return g.expand(1, 3, size, size).clone()


@pytest.mark.parametrize("kind,dim", [("gabor", 512), ("pixels", 1024), ("color", 96)])
def test_shapes(kind, dim):
    space = make_baseline(kind)
    out = space.extract(torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)))
    assert space.dim == dim and out.shape == (2, dim) and out.dtype == np.float32
    assert np.isfinite(out).all() and space.group == "other"


def test_gabor_energy_follows_orientation():
    space = make_baseline("gabor")
    energy = {}
    for angle in (0, 90):
        # (scale, orientation, grid): orientation k has its wave vector at k*22.5 deg
        energy[angle] = space.extract(_grating(angle)).reshape(4, 8, 16).sum(axis=(0, 2))
    assert energy[0].argmax() == 0 and energy[90].argmax() == 4
    assert energy[0][0] > 20 * energy[0][4] and energy[90][4] > 20 * energy[90][0]
    flat = space.extract(torch.full((1, 3, 256, 256), 0.5))
    assert np.abs(flat).max() < 1e-4  # no contrast, no energy


def test_pixels_and_color_sanity():
    grey = torch.full((1, 3, 256, 256), 0.25)
    np.testing.assert_allclose(make_baseline("pixels").extract(grey), 0.25, atol=1e-6)
    red = torch.zeros(1, 3, 256, 256)
    red[:, 0] = 1
    green = torch.zeros(1, 3, 256, 256)
    green[:, 1] = 1
    c = make_baseline("color")
    fr, fg = c.extract(red).reshape(2, 3, 16), c.extract(green).reshape(2, 3, 16)
    assert (fr[0, 1] > 50).all() and (fg[0, 1] < -50).all()  # a*: red positive, green negative
    assert np.abs(fr[1]).max() < 1e-2  # uniform image: no spread
    lab = srgb_to_lab(torch.ones(1, 3, 1, 1))[0, :, 0, 0]
    np.testing.assert_allclose(lab.numpy(), [100, 0, 0], atol=0.05)


def test_unknown_baseline():
    with pytest.raises(FeatureError, match="baseline:gabor"):
        make_baseline("wavelets")
