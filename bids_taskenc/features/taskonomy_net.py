"""The Taskonomy encoder network: each task's input transform, the architecture, checkpoints.

The architecture's state-dict keys match the published PyTorch checkpoints (visualpriors 0.3.5); see
:mod:`.taskonomy` for the facts. torch is imported inside the functions, on first use.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..core.atomic import reserve_temp
from .base import FeatureError
from .taskonomy_tasks import canonical_task

# ----------------------------------------------------------------------------
# Input transforms
# ----------------------------------------------------------------------------


def _srgb_lightness(x):
    """CIELAB L* (0..100, D65) of sRGB images in [0, 1]; ``(N, 3, H, W)`` -> ``(N, 1, H, W)``.

    Same constants as ``skimage.color.rgb2lab``, which the task bank used.
    """
    import torch

    lin = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    y = (0.212671 * lin[:, 0] + 0.715160 * lin[:, 1] + 0.072169 * lin[:, 2]).unsqueeze(1)
    f = torch.where(y > 0.008856, y.clamp_min(1e-12) ** (1.0 / 3.0), 7.787 * y + 16.0 / 116.0)
    return 116.0 * f - 16.0


def to_network_input(images, mode: str):
    """Task-specific encoder input from shared images.

    Parameters
    ----------
    images : torch.Tensor
        ``(N, 3, 256, 256)`` float RGB in [0, 1].
    mode : str
        One of the values of :data:`TASK_INPUT`.

    Returns
    -------
    torch.Tensor
        ``(N, 3, 256, 256)`` float in [-1, 1].
    """
    if mode == "rgb":
        return images * 2.0 - 1.0
    if mode == "low_sat":
        return images.clamp(0.1, 0.9) * 2.0 - 1.0
    if mode == "lightness":
        return (_srgb_lightness(images.float()) / 50.0 - 1.0).expand(-1, 3, -1, -1).contiguous()
    if mode == "center_masked":
        out = images * 2.0 - 1.0
        h, w = out.shape[-2:]
        out[..., h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 0.0
        return out
    raise ValueError(f"unknown Taskonomy input mode {mode!r}")


# ----------------------------------------------------------------------------
# Architecture (state-dict keys match the published checkpoints)
# ----------------------------------------------------------------------------


def _modules():
    import torch.nn as nn
    import torch.nn.functional as F

    class Bottleneck(nn.Module):
        """1x1 -> 3x3 (stride here) -> 1x1 residual block, 4x expansion."""

        def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu(out + shortcut)

    def make_stage(inplanes: int, planes: int, blocks: int, stride: int):
        # The first block widens (1x1 projection); the *last* block strides, its
        # shortcut subsampled by a 1x1 max-pool (the TF-slim resnet_v1 layout).
        project = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(inplanes, planes, downsample=project)]
        layers += [Bottleneck(planes * 4, planes) for _ in range(blocks - 2)]
        subsample = nn.Sequential(nn.MaxPool2d(kernel_size=1, stride=stride)) if stride != 1 else None
        layers.append(Bottleneck(planes * 4, planes, stride=stride, downsample=subsample))
        return nn.Sequential(*layers)

    class Encoder(nn.Module):
        """Taskonomy encoder: ``(N, 3, 256, 256)`` in [-1, 1] -> ``(N, 8, 16, 16)``."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=0, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
            self.layer1 = make_stage(64, 64, 3, stride=2)
            self.layer2 = make_stage(256, 128, 4, stride=2)
            self.layer3 = make_stage(512, 256, 6, stride=1)
            self.layer4 = make_stage(1024, 512, 3, stride=1)
            self.compress1 = nn.Conv2d(2048, 8, 3, stride=1, padding=1, bias=False)
            self.compress_bn = nn.BatchNorm2d(8)
            self.relu1 = nn.ReLU(inplace=True)

        def forward(self, x):
            # TF 'SAME' for the 7x7/2 stem on 256 px pads 3 on every side; the
            # converted weights expect exactly that, then a ceil-mode 3x3/2 pool.
            x = F.pad(x, (3, 3, 3, 3))
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.relu1(self.compress_bn(self.compress1(x)))

    return Encoder


def build_encoder():
    """A fresh (untrained, eval-mode) Taskonomy encoder module."""
    encoder = _modules()()
    return encoder.eval().requires_grad_(False)


def load_state_dict(path: str | Path, *, trusted: bool = False) -> dict:
    """The ``'state_dict'`` of a checkpoint file.

    Loads with ``weights_only=True``; a checkpoint that needs full unpickling is
    loaded so only when ``trusted`` (its sha256 is a published one).
    """
    import torch

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if not trusted:
            raise FeatureError(f"{path}: cannot be read as a weights-only torch checkpoint ({exc})") from exc
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:
            raise FeatureError(f"{path}: cannot be read as a torch checkpoint ({exc2})") from exc2
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise FeatureError(f"{path}: not a Taskonomy checkpoint (expected a dict with a 'state_dict' entry)")
    return state


def load_encoder(path: str | Path, *, trusted: bool = False):
    """Encoder with the weights of ``path`` loaded with strict key matching."""
    encoder = build_encoder()
    state = load_state_dict(path, trusted=trusted)
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise FeatureError(f"{path}: weights do not fit the Taskonomy encoder ({exc})") from exc
    return encoder


def random_state_dict(seed: int = 0) -> dict:
    """Seeded random weights in the published format, with BatchNorm statistics
    chosen so activations stay finite and the final ReLU is not all zero."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    encoder = build_encoder()
    state = {}
    for key, value in encoder.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros_like(value)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=gen)
        elif key.endswith("running_mean"):
            state[key] = 0.1 * torch.randn(value.shape, generator=gen)
        elif value.ndim == 1 and key.endswith("weight"):
            state[key] = 0.5 + 0.5 * torch.rand(value.shape, generator=gen)
        elif value.ndim == 1 and key.endswith("bias"):
            state[key] = 0.1 * torch.randn(value.shape, generator=gen) + (0.5 if "compress" in key else 0.0)
        else:
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=gen) * (2.0 / fan_in) ** 0.5
    return state


def make_random_checkpoint(task: str, store_dir: str | Path, seed: int = 0) -> Path:
    """Write a seeded random checkpoint as ``{task}_encoder-{sha256}.pth`` in ``store_dir``.

    Same format as the published files (``torch.save({'state_dict': ...})``), its
    real sha256 in the name, so the store accepts it as custom weights. For tests.
    """
    import torch

    task = canonical_task(task)
    store_dir = Path(store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    tmp = reserve_temp(store_dir, f".{task}-", ".part")
    try:
        torch.save({"state_dict": random_state_dict(seed)}, tmp)
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
        final = store_dir / f"{task}_encoder-{digest}.pth"
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final
