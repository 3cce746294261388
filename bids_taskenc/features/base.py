"""What a feature space is, for every engine in :mod:`bids_taskenc.features`.

A feature space turns stimuli into a ``(n_stimuli, n_features)`` float32
matrix. Two kinds exist:

* :class:`ImageFeatureSpace` computes from decoded images (Taskonomy encoders,
  torchvision layers, weight-free baselines);
* :class:`LookupFeatureSpace` looks rows up by stimulus file name
  (user-supplied ``features.npy`` + ``stimuli.tsv``).

The participant run asks :func:`bids_taskenc.features.pipeline.featurize`
for all requested spaces at once so each image is decoded once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.labels import bids_label
from .cpu import EXACT, FP32

#: Groups a feature space may declare (Wang et al. 2019 group Taskonomy tasks so).
GROUPS = ("2D", "3D", "semantic", "other")


class FeatureError(ValueError):
    """A feature space cannot give what was asked: a file whose content is wrong, features that fail to compute
    (exit 1; the table of exit codes is ``bids_taskenc.errors.EXIT_CODES``)."""


class FeatureInputMissing(FeatureError):
    """A file or folder a feature space needs is not there: weights (offline, or the download failed), a user
    space's folder or files, a stimulus image (exit 66)."""


class FeatureChoiceError(FeatureError):
    """A feature space name that names no feature space, or names several (exit 64)."""


@dataclass
class FeatureSpace(ABC):
    """One feature space.

    Attributes
    ----------
    name : str
        Registry name, ``'<family>:<space>'`` (``'taskonomy:keypoints3d'``,
        ``'user:scenes'``, ``'baseline:gabor'``).
    group : str
        One of :data:`GROUPS`.
    dim : int or None
        Number of features, when known before extraction.
    description : str
        One line for sidecars and reports.
    provenance : dict
        Facts needed to reproduce the features (weights hash, file hash,
        preprocessing version); copied into every sidecar.
    """

    name: str
    group: str = "other"
    dim: int | None = None
    description: str = ""
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.group not in GROUPS:
            raise ValueError(f"feature space {self.name}: group {self.group!r} not in {GROUPS}")

    @property
    def label(self) -> str:
        """BIDS-safe label used in ``desc-<label>``."""
        return bids_label(self.name)

    @property
    @abstractmethod
    def needs_images(self) -> bool:
        """True when features are computed from decoded image pixels."""


@dataclass
class LookupFeatureSpace(FeatureSpace):
    """Features given per stimulus file name."""

    @property
    def needs_images(self) -> bool:
        return False

    @abstractmethod
    def lookup(self, stimulus_names: Sequence[str]) -> np.ndarray:
        """Rows for ``stimulus_names``, shape ``(n, dim)`` float32, in the same order.

        Raises :class:`FeatureError` naming the first missing stimulus.
        """


@dataclass
class ImageFeatureSpace(FeatureSpace):
    """Features computed from images.

    ``extract`` receives a batch of decoded images as a float32 torch tensor of
    shape ``(n, 3, H, W)`` in ``[0, 1]`` (RGB), already cropped/resized to
    ``input_size`` by the shared image pipeline, and returns ``(n, dim)``.
    """

    input_size: int = 256

    @property
    def needs_images(self) -> bool:
        return True

    @abstractmethod
    def extract(self, images, device: str = "cpu") -> np.ndarray:
        """``(n, 3, H, W)`` float tensor in [0, 1] -> ``(n, dim)`` float32 array."""

    def extract_tensor(self, images, device: str = "cpu", mode: str = EXACT):
        """Like :meth:`extract` but returns a float32 torch tensor, on ``device``
        where the space computes there (spares the pipeline a host sync per space).
        ``mode`` is the run's ``--precision`` (``exact`` or ``fast``); a space that has
        no faster path ignores it."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.extract(images, device), dtype=np.float32))

    def precision(self, device: str = "cpu", mode: str = EXACT) -> str:
        """Numeric precision ``extract_tensor`` uses on ``device`` under ``mode`` (part of the cache
        key and provenance)."""
        return FP32

    def cache_key(self) -> str:
        """Identifies model + weights + preprocessing for the feature cache."""
        return f"{self.name}|{sorted(self.provenance.items())}"
