"""Taskonomy encoders: the published PyTorch weights, our architecture, their input.

Facts (Zamir et al., CVPR 2018; weights converted to PyTorch by the visualpriors
project, MIT license):

* 25 task-specific encoders share one architecture: a ResNet-50 trunk whose
  stride-2 bottleneck sits at the *end* of ``layer1`` and ``layer2`` (layers 3
  and 4 keep stride 1), then a 3x3 conv 2048 -> 8, BatchNorm and ReLU. A
  256x256 input gives an ``(N, 8, 16, 16)`` latent; flattened in C, H, W order
  it is the 2048-value feature vector of Wang et al. (2019).
* Original features are the encoder output *without* visualpriors' optional
  output GroupNorm.
* Each task's input preprocessing in the original TensorFlow task bank
  (``taskbank/tools/run_img_task.py`` and ``experiments/final/<task>/config.py``
  of StanfordVL/taskonomy) is recorded in :data:`TASK_INPUT`; see
  :func:`to_network_input`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.atomic import reserve_temp
from .base import FeatureError, ImageFeatureSpace
from .cpu import FP32, encoder_precision

#: sha256 in the published file name ``{task}_encoder-{sha256}.pth`` (visualpriors 0.3.5).
ENCODER_SHA256: dict[str, str] = {
    "autoencoding": "e35146c09253720e97c0a7f8ee4e896ac931f5faa1449df003d81e6089ac6307",
    "class_object": "4a4e42dad58066039a0d2f9d128bb32e93a7e4aa52edb2d2a07bcdd1a6536c18",
    "class_scene": "ad85764467cddafd98211313ceddebb98adf2a6bee2cedfe0b922a37ae65eaf8",
    "colorization": "5ed817acdd28d13e443d98ad15ebe1c3059a3252396a2dff6a2090f6f86616a5",
    "curvature": "3767cf5d06d9c6bca859631eb5a3c368d66abeb15542171b94188ffbe47d7571",
    "denoising": "b64cab95af4a2c565066a7e8effaf37d6586c3b9389b47fff9376478d849db38",
    "depth_euclidean": "88f18d41313de7dbc88314a7f0feec3023047303d94d73eb8622dc40334ef149",
    "depth_zbuffer": "cc343a8ed622fd7ee3ce54398be8682bbbbfb5d11fa80e8d03a56a5ae4e11b09",
    "edge_occlusion": "5ac3f3e918131f61e01fe95e49f462ae2fc56aa463f8d353ca84cd4e248b9c08",
    "edge_texture": "be2d686a6a4dfebe968d16146a17176eba37e29f736d5cd9a714317c93718810",
    "egomotion": "9aa647c34bf98f9e491e0b37890d77566f6ae35ccf41d9375c674511318d571c",
    "fixated_pose": "78cf321518abc16f9f4782b9e5d4e8f5d6966c373d951928a26f872e55297567",
    "inpainting": "bf96fbaaea9268a820a19a1d13dbf6af31798f8983c6d9203c00fab2d236a142",
    "jigsaw": "0c2b342c9080f8713c178b04aa6c581ed3a0112fecaf78edc4c04e0a90516e39",
    "keypoints2d": "6b77695acff4c84091c484a7b128a1e28a7e9c36243eda278598f582cf667fe0",
    "keypoints3d": "7e3f1ec97b82ae30030b7ea4fec2dc606b71497d8c0335d05f0be3dc909d000d",
    "nonfixated_pose": "3433a600ca9ff384b9898e55d86a186d572c2ebbe4701489a373933e3cfd5b8b",
    "normal": "f5e2c7737e4948e3b2a822f584892c342eaabbe66661576ba50db7cdd40561c5",
    "point_matching": "4bd2a6b2909d9998fabaf0278ab568f42f2b692a648e28555ede6c6cda5361f4",
    "reshading": "de456246e171dc8407fb2951539aa60d75925ae0f1dbb43f110b7768398b36a6",
    "room_layout": "1e1662f43b834261464b1825227a04efba59b50cc8883bee9adc3ddafd4796c1",
    "segment_semantic": "bb3007244520fc89cd111e099744a22b1e5c98cd83ed3f116fbff6376d220127",
    "segment_unsup25d": "7d12d2500c18c003ffc23943214f5dfd74932f0e3d03dde2c3a81ebc406e31a0",
    "segment_unsup2d": "b679053a920e8bcabf0cd454606098ae85341e054080f2be29473971d4265964",
    "vanishing_point": "afd2ae9b71d46a54efc5231b3e38ebc3e35bfab78cb0a78d9b75863a240b19a8",
}

ALL_TASKS: tuple[str, ...] = tuple(sorted(ENCODER_SHA256))

#: The 21 single-image tasks of Wang, Tarr & Wehbe (NeurIPS 2019), in the paper's order.
PAPER_TASKS: tuple[str, ...] = (
    "autoencoding",
    "colorization",
    "curvature",
    "denoising",
    "depth_zbuffer",
    "depth_euclidean",
    "edge_texture",
    "edge_occlusion",
    "keypoints2d",
    "keypoints3d",
    "reshading",
    "room_layout",
    "segment_unsup2d",
    "segment_unsup25d",
    "normal",
    "vanishing_point",
    "segment_semantic",
    "class_object",
    "class_scene",
    "jigsaw",
    "inpainting",
)

#: Tasks whose encoder sees two or three views at once (camera pose, egomotion,
#: point matching). A single stimulus image is not their input, so they are not
#: feature spaces here; the store can still fetch their weights.
MULTI_VIEW_TASKS: tuple[str, ...] = ("egomotion", "fixated_pose", "nonfixated_pose", "point_matching")

#: Group of each single-image task, after Taskonomy's task-similarity tree
#: (Zamir et al. 2018, Fig. 13): 2D, 3D and semantic clusters; its fourth cluster,
#: low-dimensional geometry (room layout, vanishing point), and jigsaw, which
#: sits in none of the three, are "other".
TASK_GROUPS: dict[str, str] = {
    **dict.fromkeys(
        ("autoencoding", "colorization", "denoising", "edge_texture", "inpainting", "keypoints2d", "segment_unsup2d"),
        "2D",
    ),
    **dict.fromkeys(
        (
            "curvature",
            "depth_zbuffer",
            "depth_euclidean",
            "edge_occlusion",
            "keypoints3d",
            "normal",
            "reshading",
            "segment_unsup25d",
        ),
        "3D",
    ),
    **dict.fromkeys(("class_object", "class_scene", "segment_semantic"), "semantic"),
    **dict.fromkeys(("room_layout", "vanishing_point", "jigsaw"), "other"),
}

#: Names the 2018 task bank used for the same tasks (accepted as aliases).
TASKBANK_ALIASES: dict[str, str] = {
    "autoencoder": "autoencoding",
    "denoise": "denoising",
    "edge2d": "edge_texture",
    "edge3d": "edge_occlusion",
    "keypoint2d": "keypoints2d",
    "keypoint3d": "keypoints3d",
    "reshade": "reshading",
    "rgb2depth": "depth_zbuffer",
    "rgb2mist": "depth_euclidean",
    "rgb2sfnorm": "normal",
    "segment25d": "segment_unsup25d",
    "segment2d": "segment_unsup2d",
    "segmentsemantic": "segment_semantic",
    "class_1000": "class_object",
    "class_places": "class_scene",
    "inpainting_whole": "inpainting",
    "ego_motion": "egomotion",
    "fix_pose": "fixated_pose",
    "non_fixated_pose": "nonfixated_pose",
    "point_match": "point_matching",
}

#: Input each encoder saw in the task bank (run_img_task.py + the task's config):
#:
#: ``low_sat``   pixels clipped to [0.1, 0.9] before scaling to [-1, 1] (so [-0.8, 0.8]);
#:               run_img_task.py does this for these tasks because near-0/1 pixels overflowed.
#: ``rgb``       [0, 1] -> [-1, 1].
#: ``lightness`` colorization's input is the CIELAB L channel only (L/100 -> [-1, 1]); the
#:               PyTorch conv1 takes 3 channels, so L is repeated in all three.
#: ``center_masked`` inpainting's context-encoder input: [-1, 1] with the central
#:               half (H/4:3H/4, W/4:3W/4) set to 0.
#: jigsaw: the whole image, as the task bank's representation-extraction script feeds it
#: (``generate_jigsaw_input_for_representation_extraction``). Wang et al. (2019) ran
#: ``run_img_task.py --store-rep``, whose jigsaw branch instead cuts nine randomly
#: permuted, randomly offset tiles (``generate_jigsaw_input``): an input that differs
#: on every run and no single 8x16x16 latent. We keep the deterministic one.
TASK_INPUT: dict[str, str] = {
    **dict.fromkeys(
        (
            "autoencoding",
            "curvature",
            "denoising",
            "edge_texture",
            "edge_occlusion",
            "keypoints2d",
            "keypoints3d",
            "reshading",
            "depth_zbuffer",
            "depth_euclidean",
            "normal",
            "segment_unsup25d",
            "segment_unsup2d",
            "room_layout",
        ),
        "low_sat",
    ),
    **dict.fromkeys(("class_object", "class_scene", "segment_semantic", "vanishing_point", "jigsaw"), "rgb"),
    "colorization": "lightness",
    "inpainting": "center_masked",
}

#: Bump when the image-to-latent computation changes (cache keys include it).
TASKONOMY_VERSION = "1"

LATENT_SHAPE = (8, 16, 16)
INPUT_SIZE = 256


def canonical_task(name: str) -> str:
    """Task name from a task-bank alias or itself; FeatureError when unknown."""
    task = TASKBANK_ALIASES.get(name, name)
    if task not in ENCODER_SHA256:
        raise FeatureError(f"unknown Taskonomy task {name!r}; known: {', '.join(ALL_TASKS)}")
    return task


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


# ----------------------------------------------------------------------------
# Feature space
# ----------------------------------------------------------------------------


@dataclass
class TaskonomyFeatureSpace(ImageFeatureSpace):
    """One Taskonomy encoder's latent as a feature space (dim 2048).

    The weights load on first use. ``extract`` takes ``(N, 3, 256, 256)`` images
    in [0, 1] and returns ``(N, 2048)`` float32 (latent flattened C, H, W).
    On CUDA the encoder runs channels-last under bf16 autocast; on the CPU in exact fp32, or under
    ``--precision fast`` channels-last under bf16 autocast where the CPU has native bf16 (:mod:`.cpu`).
    """

    task: str = ""
    weights_path: Path | None = None
    weights_trusted: bool = False
    random_seed: int | None = None
    compile: bool = False
    _encoder: object = field(default=None, repr=False)
    _encoder_device: tuple[str, bool] | None = field(default=None, repr=False)

    @classmethod
    def from_weights(
        cls, task: str, weights_path: Path, sha256: str, *, published: bool, url: str | None = None
    ) -> TaskonomyFeatureSpace:
        """Space reading ``weights_path`` (already verified by the store)."""
        import torch

        return cls(
            name=f"taskonomy:{task}",
            group=TASK_GROUPS[task],
            dim=2048,
            input_size=INPUT_SIZE,
            description=f"Taskonomy {task} encoder latent (8x16x16), Zamir et al. 2018",
            provenance={
                "family": "taskonomy",
                "task": task,
                "weights_file": Path(weights_path).name,
                "weights_sha256": sha256,
                "weights_published": bool(published),
                **({"weights_url": url} if url else {}),
                "input": TASK_INPUT[task],
                "preprocessing_version": TASKONOMY_VERSION,
                "image_preprocessing": "center-crop square, PIL bilinear antialiased resize to 256",
                "output": "encoder latent without output GroupNorm, flattened (C,H,W)=(8,16,16)",
                "torch": torch.__version__,
            },
            task=task,
            weights_path=Path(weights_path),
            weights_trusted=bool(published),
        )

    @classmethod
    def random(cls, task: str, seed: int = 0) -> TaskonomyFeatureSpace:
        """Space with seeded random weights held in memory (benchmarks; no store)."""
        import torch

        task = canonical_task(task)
        return cls(
            name=f"taskonomy:{task}",
            group=TASK_GROUPS.get(task, "other"),
            dim=2048,
            input_size=INPUT_SIZE,
            description=f"Taskonomy {task} architecture, RANDOM weights (seed {seed})",
            provenance={
                "family": "taskonomy",
                "task": task,
                "weights_file": None,
                "weights_sha256": f"random-seed-{seed}",
                "weights_published": False,
                "input": TASK_INPUT.get(task, "rgb"),
                "preprocessing_version": TASKONOMY_VERSION,
                "torch": torch.__version__,
            },
            task=task,
            random_seed=seed,
        )

    def encoder(self, device: str = "cpu", channels_last: bool = False):
        """The loaded encoder on ``device`` (loaded once, then moved as needed); channels-last on CUDA,
        and on the CPU when ``channels_last`` (the bf16 path)."""
        import torch

        if self._encoder is None:
            if self.random_seed is not None:
                enc = build_encoder()
                enc.load_state_dict(random_state_dict(self.random_seed), strict=True)
            else:
                enc = load_encoder(self.weights_path, trusted=self.weights_trusted)
            self._encoder = enc
        cuda = device.startswith("cuda")
        layout = cuda or bool(channels_last)
        if self._encoder_device != (device, layout):
            enc = getattr(self._encoder, "_orig_mod", self._encoder)  # unwrap torch.compile
            enc = enc.to(device, memory_format=torch.channels_last if layout else torch.contiguous_format)
            if cuda and self.compile:
                enc = torch.compile(enc, dynamic=False)
            self._encoder, self._encoder_device = enc, (device, layout)
        return self._encoder

    def release(self) -> None:
        """Drop the loaded encoder (frees its memory)."""
        self._encoder, self._encoder_device = None, None

    def precision(self, device: str = "cpu", mode: str = "exact") -> str:
        return encoder_precision(device, mode)

    def extract_tensor(self, images, device: str = "cpu", mode: str = "exact"):
        """``(N, 3, 256, 256)`` [0, 1] tensor on ``device`` -> ``(N, 2048)`` float32 tensor on ``device``.

        In :meth:`precision`'s bf16 modes (CUDA; the CPU under ``mode='fast'`` where it has native
        bf16) the encoder runs channels-last under bf16 autocast; otherwise in exact fp32.
        """
        import torch

        if images.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            raise FeatureError(f"{self.name}: needs {INPUT_SIZE}x{INPUT_SIZE} images, got {tuple(images.shape[-2:])}")
        precision = self.precision(device, mode)
        enc = self.encoder(device, channels_last=precision != FP32)
        x = to_network_input(images.to(device, torch.float32), TASK_INPUT.get(self.task, "rgb"))
        with torch.inference_mode():
            if precision == FP32:
                out = enc(x)
            else:
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16):
                    out = enc(x)
        return out.float().reshape(out.shape[0], -1)

    def extract(self, images, device: str = "cpu", mode: str = "exact") -> np.ndarray:
        return self.extract_tensor(images, device, mode).cpu().numpy()
