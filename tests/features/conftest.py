"""Shared fixtures: one seeded random Taskonomy checkpoint, small stimulus images."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bids_taskenc.features.taskonomy import make_random_checkpoint


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    """A random 'normal' encoder checkpoint (~95 MB), made once per session."""
    return make_random_checkpoint("normal", tmp_path_factory.mktemp("ckpt"), seed=3)


@pytest.fixture
def weights_store(tmp_path, random_checkpoint) -> Path:
    """A store with custom (random) weights for 'normal' and 'colorization' (same bytes)."""
    store = tmp_path / "models"
    store.mkdir()
    digest = random_checkpoint.name.split("-")[-1][:-4]
    for task in ("normal", "colorization"):
        dst = store / f"{task}_encoder-{digest}.pth"
        try:
            os.link(random_checkpoint, dst)
        except OSError:
            shutil.copy(random_checkpoint, dst)
    return store


@pytest.fixture
def images(tmp_path) -> list[Path]:
    """Four small images: JPEG, PNG with alpha, greyscale JPEG, a wide photo-like JPEG."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "stimuli"
    folder.mkdir()
    out = []
    arr = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(arr).save(folder / "a.jpg", quality=95)
    rgba = rng.integers(0, 256, (40, 40, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "b.png")
    grey = rng.integers(0, 256, (70, 50), dtype=np.uint8)
    Image.fromarray(grey, "L").save(folder / "c.JPEG")
    y, x = np.mgrid[0:90, 0:160]
    smooth = np.stack([128 + 100 * np.sin(x / 7.0), 128 + 100 * np.cos(y / 5.0), 128 + 0 * x], -1)
    Image.fromarray(smooth.astype(np.uint8)).save(folder / "d.jpeg")
    for name in ("a.jpg", "b.png", "c.JPEG", "d.jpeg"):
        out.append(folder / name)
    return out
