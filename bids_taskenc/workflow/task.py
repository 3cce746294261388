"""What the steps of one participant's task share once its inputs, responses and features are there."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..responses.base import Responses
from .cache import WorkCache
from .data import Split
from .dataset import Dataset
from .inputs import TaskInputs
from .settings import ParticipantSettings
from .timing import Laps
from .writer import TaskWriter


@dataclass
class TaskRun:
    """One task of one participant, from the fits on: inputs, data, split, the writer and the work cache."""

    ds: Dataset
    settings: ParticipantSettings
    inputs: TaskInputs
    responses: Responses  # its trial data are released before the fits
    features: dict  # space name -> (n_images, n_features) float32
    split: Split
    writer: TaskWriter
    cache: WorkCache
    response_key: dict
    laps: Laps
    rois: dict = field(default_factory=dict)  # ROI name -> (n_voxels,) bool
    roi_rows: list = field(default_factory=list)  # the ROI table, one row per space and ROI
    roi_permutations: np.ndarray | None = None  # test-image permutations of the ROI p (None: no ROI p)

    @property
    def subject(self) -> str:
        return self.inputs.subject

    @property
    def task(self) -> str:
        return self.inputs.task

    @property
    def Y(self) -> np.ndarray:
        return self.responses.data

    @cached_property
    def y_test(self) -> np.ndarray:
        """The test images' responses ``(n_test, n_voxels)`` float32, copied once for the contrasts and ROI
        permutations (the fits gather their rows a voxel batch at a time and need no copy)."""
        return self.Y[self.split.test]
