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

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import FeatureChoiceError, FeatureError, ImageFeatureSpace
from .cpu import EXACT, FP32, encoder_precision
from .families import FamilySpaces
from .taskonomy_net import (
    build_encoder,
    load_encoder,
    load_state_dict,
    make_random_checkpoint,
    random_state_dict,
    to_network_input,
)
from .taskonomy_tasks import (
    ALL_TASKS,
    ENCODER_SHA256,
    INPUT_SIZE,
    LATENT_SHAPE,
    MULTI_VIEW_TASKS,
    PAPER_TASKS,
    TASK_GROUPS,
    TASK_INPUT,
    TASKBANK_ALIASES,
    TASKONOMY_VERSION,
    canonical_task,
)

__all__ = [
    "ALL_TASKS",
    "ENCODER_SHA256",
    "INPUT_SIZE",
    "LATENT_SHAPE",
    "MULTI_VIEW_TASKS",
    "PAPER_TASKS",
    "TASKBANK_ALIASES",
    "TASKONOMY_VERSION",
    "TASK_GROUPS",
    "TASK_INPUT",
    "TaskonomyFeatureSpace",
    "TaskonomySpaces",
    "build_encoder",
    "canonical_task",
    "load_encoder",
    "load_state_dict",
    "make_random_checkpoint",
    "random_state_dict",
    "taskonomy_space",
    "to_network_input",
]

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
            elif self.weights_path is not None:
                enc = load_encoder(self.weights_path, trusted=self.weights_trusted)
            else:
                raise FeatureError(f"{self.name}: neither a weights file nor a random seed to build the encoder from")
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

    def precision(self, device: str = "cpu", mode: str = EXACT) -> str:
        return encoder_precision(device, mode)

    def extract_tensor(self, images, device: str = "cpu", mode: str = EXACT):
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

    def extract(self, images, device: str = "cpu", mode: str = EXACT) -> np.ndarray:
        return self.extract_tensor(images, device, mode).cpu().numpy()


class TaskonomySpaces(FamilySpaces):
    """The ``taskonomy`` family: ``taskonomy:<task>`` for a single-image task (or a task-bank alias).

    The weights are located (and, unless offline, downloaded) when a space is resolved, so a missing file
    fails before any heavy work. The default is the paper's 21 tasks, unless the run brings its own
    features (``--features-dir``).
    """

    def names(self) -> list[str]:
        return [f"taskonomy:{task}" for task in PAPER_TASKS]

    def defaults(self) -> list[str]:
        return self.names() if self.context.features_dir is None else []

    def bare(self, name: str) -> str | None:
        task = TASKBANK_ALIASES.get(name, name)
        return f"taskonomy:{task}" if task in ALL_TASKS else None

    def space(self, name: str) -> TaskonomyFeatureSpace | None:
        rest = name.partition(":")[2]
        if TASKBANK_ALIASES.get(rest, rest) not in ALL_TASKS:
            return None
        return taskonomy_space(rest, self.context.weights_dir, self.context.offline)


def taskonomy_space(task: str, weights_dir: Path | None, offline: bool) -> TaskonomyFeatureSpace:
    """The space of a Taskonomy task (or alias) with its weights from the store.

    Raises
    ------
    FeatureError
        A multi-view task (not a single-image feature space), missing weights when offline, corrupt weights.
    """
    from . import store

    task = canonical_task(task)
    if task in MULTI_VIEW_TASKS:
        raise FeatureChoiceError(
            f"taskonomy:{task}: this encoder's input is two or three views of one scene (camera pose / "
            f"egomotion / point matching), not a single stimulus image, so it is not a feature space here; "
            f"single-image tasks: {', '.join(PAPER_TASKS)}"
        )
    found = store.ensure_weights(task, weights_dir, offline=offline)
    return TaskonomyFeatureSpace.from_weights(task, found.path, found.sha256, published=found.published, url=found.url)
