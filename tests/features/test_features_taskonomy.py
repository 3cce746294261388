"""Taskonomy encoder: architecture faithful to visualpriors, shapes, determinism, task inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bids_taskenc.features import taskonomy as T
from bids_taskenc.features.base import GROUPS, FeatureError


def test_task_tables_are_consistent():
    assert len(T.PAPER_TASKS) == 21 and len(set(T.PAPER_TASKS)) == 21
    assert len(T.ENCODER_SHA256) == 25
    single = set(T.ALL_TASKS) - set(T.MULTI_VIEW_TASKS)
    assert single == set(T.PAPER_TASKS) == set(T.TASK_GROUPS) == set(T.TASK_INPUT)
    assert set(T.TASK_GROUPS.values()) <= set(GROUPS)
    assert all(len(h) == 64 for h in T.ENCODER_SHA256.values())
    assert T.canonical_task("rgb2depth") == "depth_zbuffer"
    with pytest.raises(FeatureError, match="unknown Taskonomy task"):
        T.canonical_task("telepathy")


def test_checkpoint_format_and_name(random_checkpoint):
    import hashlib

    digest = hashlib.sha256(random_checkpoint.read_bytes()).hexdigest()
    assert random_checkpoint.name == f"normal_encoder-{digest}.pth"
    ckpt = torch.load(random_checkpoint, weights_only=True)
    assert set(ckpt) == {"state_dict"}
    assert set(ckpt["state_dict"]) == set(T.build_encoder().state_dict())


def test_same_output_as_visualpriors(random_checkpoint):
    vp = pytest.importorskip("visualpriors.taskonomy_network")
    theirs = vp.TaskonomyEncoder(normalize_outputs=False, eval_only=True)
    theirs.load_state_dict(torch.load(random_checkpoint, weights_only=True)["state_dict"], strict=True)
    ours = T.load_encoder(random_checkpoint)
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        a, b = ours(x), theirs(x)
    assert a.shape == (1, 8, 16, 16)
    assert a.abs().max() > 0.1  # the random weights give a non-trivial latent
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_space_shape_and_determinism(random_checkpoint):
    digest = random_checkpoint.name.split("-")[-1][:-4]
    space = T.TaskonomyFeatureSpace.from_weights("normal", random_checkpoint, digest, published=False)
    assert space.group == "3D" and space.dim == 2048 and space.label == "normal"
    imgs = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    f1 = space.extract(imgs)
    f2 = space.extract(imgs.clone())
    assert f1.shape == (2, 2048) and f1.dtype == np.float32
    np.testing.assert_array_equal(f1, f2)
    prov = space.provenance
    assert prov["weights_sha256"] == digest and prov["weights_file"] == random_checkpoint.name
    assert {"torch", "preprocessing_version", "input"} <= set(prov)


def test_extract_rejects_wrong_size(random_checkpoint):
    space = T.TaskonomyFeatureSpace.from_weights("normal", random_checkpoint, "x" * 64, published=False)
    with pytest.raises(FeatureError, match="256x256"):
        space.extract(torch.rand(1, 3, 224, 224))


def test_task_inputs():
    x = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    low = T.to_network_input(x, "low_sat")
    assert low.min() >= -0.8 - 1e-6 and low.max() <= 0.8 + 1e-6
    rgb = T.to_network_input(x, "rgb")
    torch.testing.assert_close(rgb, x * 2 - 1)
    masked = T.to_network_input(x, "center_masked")
    assert (masked[..., 64:192, 64:192] == 0).all()
    torch.testing.assert_close(masked[..., :64, :], rgb[..., :64, :])
    # CIELAB lightness: black 0, white 100, mid-grey sRGB 0.5 -> L* 53.39 (skimage.color.rgb2lab)
    grey = torch.tensor([0.0, 1.0, 0.5]).view(3, 1, 1, 1).expand(3, 3, 2, 2)
    light = T.to_network_input(grey, "lightness")
    assert light.shape == (3, 3, 2, 2)
    np.testing.assert_allclose(light[:, 0, 0, 0].numpy(), [-1.0, 1.0, 53.389 / 50 - 1], atol=1e-3)
    assert torch.equal(light[:, 0], light[:, 2])


def test_random_space_needs_no_store():
    space = T.TaskonomyFeatureSpace.random("jigsaw", seed=1)
    out = space.extract(torch.rand(1, 3, 256, 256))
    assert out.shape == (1, 2048) and space.provenance["weights_sha256"] == "random-seed-1"
