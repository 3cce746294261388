"""ImageNet-trained torchvision models read out at a named layer: ``torchvision:<model>:<layer>``.

torchvision is optional and imported only when such a space is asked for. The
model's default weights come from torchvision's own download into the torch hub
cache (``$TORCH_HOME/hub/checkpoints``); with ``offline=True`` a weights file
missing there is an error naming it and its URL.

Input follows the weights' evaluation transform on our centre-cropped square:
resize to its ``resize_size`` (shared decode), centre-crop ``crop_size``,
ImageNet mean/std. A layer's ``(N, C, H, W)`` output is average-pooled to a
``g x g`` grid, the largest with ``C * g * g <= 8192`` (at least 1x1), then
flattened; vector outputs are used as they are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .base import FeatureChoiceError, FeatureError, ImageFeatureSpace
from .cpu import EXACT, encoder_precision
from .families import FamilySpaces

MAX_DIM = 8192
TORCHVISION_SPACE_VERSION = "1"


def import_torchvision():
    """torchvision, or FeatureError saying how to get it."""
    try:
        import torchvision
        from torchvision.models import feature_extraction  # noqa: F401
    except Exception as exc:  # ImportError, or a torchvision built for another torch
        raise FeatureError(
            "torchvision feature spaces need torchvision matching the installed torch "
            f"(torch {_torch_version()}): install it, e.g. 'pip install torchvision' from the same index as torch "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return torchvision


def _torch_version() -> str:
    import torch

    return torch.__version__


def grid_for(channels: int) -> int:
    """Largest pooling grid g with ``channels * g * g <= MAX_DIM`` (at least 1)."""
    g = 1
    while channels * (g + 1) ** 2 <= MAX_DIM:
        g += 1
    return g


@dataclass
class TorchvisionFeatureSpace(ImageFeatureSpace):
    """One torchvision model at one layer; ``extract``: ``(N, 3, s, s)`` [0, 1] -> ``(N, dim)``."""

    model_name: str = ""
    layer: str = ""
    crop_size: int = 224
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)
    _weights: Any = field(default=None, repr=False)  # a torchvision WeightsEnum member (torchvision is optional)
    _extractor: Any = field(default=None, repr=False)  # a torchvision feature-extractor GraphModule
    _device: str | None = field(default=None, repr=False)

    def precision(self, device: str = "cpu", mode: str = EXACT) -> str:
        """bf16 autocast on CUDA; exact fp32 on the CPU (the faster CPU path is the Taskonomy encoders' only)."""
        return encoder_precision(device)  # the rule of exact mode: no CPU bf16 path here

    def _build(self, device: str):
        import torch
        from torchvision.models import feature_extraction, get_model

        if self._extractor is None:
            model = get_model(self.model_name, weights=None)
            model.load_state_dict(self._weights.get_state_dict(progress=False, check_hash=True))
            model.eval().requires_grad_(False)
            try:
                self._extractor = feature_extraction.create_feature_extractor(model, return_nodes={self.layer: "out"})
            except ValueError as exc:
                _, nodes = feature_extraction.get_graph_node_names(model)
                raise FeatureError(
                    f"{self.name}: no layer {self.layer!r} in {self.model_name}; layers: {', '.join(nodes)}"
                ) from exc
        if self._device != device:
            self._extractor = self._extractor.to(device)
            if device.startswith("cuda"):
                self._extractor = self._extractor.to(memory_format=torch.channels_last)
            self._device = device
        return self._extractor

    def extract_tensor(self, images, device: str = "cpu", mode: str = EXACT):
        import torch
        import torch.nn.functional as F

        net = self._build(device)
        x = images.to(device, torch.float32)
        h, w = x.shape[-2:]
        top, left = (h - self.crop_size) // 2, (w - self.crop_size) // 2
        x = x[..., top : top + self.crop_size, left : left + self.crop_size]
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        with torch.inference_mode():
            if device.startswith("cuda"):
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = net(x)["out"]
            else:
                out = net(x)["out"]
            out = out.float()
            if out.ndim == 4:
                out = F.adaptive_avg_pool2d(out, grid_for(out.shape[1]))
        out = out.reshape(out.shape[0], -1)
        if self.dim is None:
            self.dim = int(out.shape[1])
        return out

    def extract(self, images, device: str = "cpu") -> np.ndarray:
        return self.extract_tensor(images, device).cpu().numpy()


def make_torchvision_space(model_name: str, layer: str, *, offline: bool = False) -> TorchvisionFeatureSpace:
    """``torchvision:<model_name>:<layer>`` with the model's default ImageNet weights.

    Raises FeatureError when torchvision is missing, the model is unknown, or
    (offline) its weights are not in the torch hub cache.
    """
    import torch

    tv = import_torchvision()
    from torchvision.models import get_model_weights, list_models

    if model_name not in list_models():
        raise FeatureError(f"unknown torchvision model {model_name!r}; known: {', '.join(list_models())}")
    weights = get_model_weights(model_name).DEFAULT
    filename = Path(weights.url).name
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not cached.is_file():
        if offline:
            raise FeatureError(
                f"{cached}: torchvision weights for {model_name} missing and --offline is set; "
                f"download {weights.url} into {cached.parent}/"
            )
        weights.get_state_dict(progress=True, check_hash=True)
    sha = hashlib.sha256(cached.read_bytes()).hexdigest()
    tf = weights.transforms()
    resize = int(getattr(tf, "resize_size", [256])[0])
    crop = int(getattr(tf, "crop_size", [224])[0])
    return TorchvisionFeatureSpace(
        name=f"torchvision:{model_name}:{layer}",
        group="other",
        dim=None,
        input_size=resize,
        description=f"torchvision {model_name} ({weights}) at layer {layer}, grid-average-pooled",
        provenance={
            "family": "torchvision",
            "model": model_name,
            "layer": layer,
            "weights": str(weights),
            "weights_file": filename,
            "weights_sha256": sha,
            "weights_url": weights.url,
            "resize": resize,
            "crop": crop,
            "pooling": f"adaptive average to g x g, C*g*g <= {MAX_DIM}",
            "preprocessing_version": TORCHVISION_SPACE_VERSION,
            "torchvision": tv.__version__,
            "torch": torch.__version__,
        },
        model_name=model_name,
        layer=layer,
        crop_size=crop,
        mean=tuple(getattr(tf, "mean", (0.485, 0.456, 0.406))),
        std=tuple(getattr(tf, "std", (0.229, 0.224, 0.225))),
        _weights=weights,
    )


class TorchvisionSpaces(FamilySpaces):
    """The ``torchvision`` family: ``torchvision:<model>:<layer>``, any model torchvision lists (not enumerated)."""

    def space(self, name: str) -> TorchvisionFeatureSpace:
        model, _, layer = name.partition(":")[2].partition(":")
        if not model or not layer:
            raise FeatureChoiceError(
                f"{name!r}: torchvision spaces are named torchvision:<model>:<layer>, e.g. torchvision:resnet50:layer3"
            )
        return make_torchvision_space(model, layer, offline=self.context.offline)
