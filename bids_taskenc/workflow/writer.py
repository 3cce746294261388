"""Writing one task's derivatives into the participant's staging folder.

:class:`TaskWriter` knows the entities and the metadata every sidecar of the task shares; :meth:`TaskWriter.emit`
writes a statistic's volume map now and queues its surface maps, which :meth:`TaskWriter.finish` samples at the end
in one call per hemisphere.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..bids.surfaces import SurfaceSet
from ..outputs.atomic import write_json, write_tsv
from ..outputs.derivatives import bids_uri, write_mask, write_statmap
from ..outputs.naming import derivative_path, sidecar_path
from ..outputs.surfaces import project_statmaps
from .data import Split, image_runs
from .dataset import Dataset
from .inputs import TaskInputs
from .rerun import SHARED_KEY, shared_settings
from .settings import ParticipantSettings

if TYPE_CHECKING:
    from ..responses.base import Responses

log = logging.getLogger(__name__)

#: Columns of the ROI table (its sidecar); ``p_mean_r`` only with ROI permutations.
ROI_COLUMNS = {
    "feature_space": "feature space label (desc- of the maps)",
    "feature_group": "2D, 3D, semantic or other",
    "roi": "ROI; 'LH-'/'RH-' prefix for one hemisphere, none for both pooled",
    "n_voxels": "analysed voxels inside the ROI",
    "mean_r": "mean test-set Pearson r",
    "mean_rsquared": "mean test-set R-squared",
    "fraction_significant": "fraction of ROI voxels with q below FDRLevel",
}
ROI_P_COLUMN = {
    "p_mean_r": "permutation p of the ROI's mean r (test images permuted, the same permutation for every voxel)"
}


def common_metadata(ds: Dataset, inputs: TaskInputs, responses, split: Split, settings: ParticipantSettings) -> dict:
    """The keys every sidecar of the task starts with: who, what, the sources, the responses, the split, the run."""
    subject, task = inputs.subject, inputs.task
    n = len(responses.image_ids)
    common = {
        "Participant": subject,
        "Task": task,
        "Space": ds.space,
        "Sources": [bids_uri(p, ds.links) for p in inputs.sources],
        "Responses": responses.provenance,
        "Split": {
            "NImages": n,
            "NTrain": int(len(split.train)),
            "NTest": int(len(split.test)),
            "TestFraction": settings.fit.test_fraction,
            "TestSplit": settings.fit.test_split,
            **({"TestGroups": sorted(set(split.test_groups.tolist()))} if split.test_groups is not None else {}),
            "Seed": settings.fit.seed,
            "SplitFile": derivative_path(
                "", desc="split", suffix="stimuli", extension=".tsv", sub=subject, task=task
            ).name,
        },
        SHARED_KEY: shared_settings(settings, ds.space),
        **ds.provenance,
    }
    reference = _reference(ds, inputs)
    if ds.space == "T1w" and reference:
        common["SpatialReference"] = reference
    return common


def _reference(ds: Dataset, inputs: TaskInputs) -> str | None:
    """The grid the maps are on, as a BIDS URI: the first preprocessed run (or betas file)."""
    return bids_uri(inputs.sources[0], ds.links) if inputs.sources else None


def split_table(responses, split: Split) -> pd.DataFrame:
    labels = np.full(len(responses.image_ids), "excluded", dtype=object)  # straddling a grouped split
    labels[split.train] = "train"
    labels[split.test] = "test"
    return pd.DataFrame(
        {
            "stimulus": responses.image_ids,
            "split": labels,
            "n_presentations": responses.n_presentations,
            "session": responses.image_sessions,
            "run": image_runs(responses),
        }
    )


@dataclass
class TaskWriter:
    """Writes one task's maps and tables into ``staging``."""

    staging: Path
    ents: dict  # sub, task, space
    common: dict  # metadata every sidecar starts with
    responses: Responses  # its mask puts a voxel vector back into a volume
    surfaces: SurfaceSet | None = None
    surface_queue: list = field(default_factory=list)

    @classmethod
    def start(
        cls, staging: Path, ds: Dataset, inputs: TaskInputs, responses, split: Split, settings: ParticipantSettings
    ) -> TaskWriter:
        """A writer for the task, after writing what every task has: the brain mask and the split table."""
        subject, task = inputs.subject, inputs.task
        ents = {"sub": subject, "task": task, "space": ds.space}
        common = common_metadata(ds, inputs, responses, split, settings)
        # the mask is a BIDS file the validator checks: only keys the spec defines or leaves free
        mask_meta = {
            "Description": "Voxels analysed: inside the brain masks of all runs (and --mask), finite and not constant",
            "Sources": common["Sources"],
            "Participant": subject,
            "Task": task,
            "Space": ds.space,
            "NVoxels": responses.n_voxels,
            "CommandLine": ds.provenance.get("CommandLine"),
        }
        reference = _reference(ds, inputs)
        if reference:  # the mask is validated: it names the grid it is on in every space, template spaces too
            mask_meta["SpatialReference"] = reference
        write_mask(staging, responses.mask_img, mask_meta, **ents)
        log.info("sub-%s task-%s: %s", subject, task, inputs.surface_note)
        common["Surfaces"] = inputs.surface_note
        surfaces = inputs.surfaces
        if surfaces is not None and not isinstance(surfaces, SurfaceSet):
            raise TypeError(f"inputs.surfaces must be a SurfaceSet or None, got {type(surfaces).__name__}")
        writer = cls(staging=staging, ents=ents, common=common, responses=responses, surfaces=surfaces)
        write_tsv(
            derivative_path(staging, sub=subject, task=task, desc="split", suffix="stimuli", extension=".tsv"),
            split_table(responses, split),
        )
        return writer

    def emit(self, values: np.ndarray, meta: dict, fill: float = 0.0, **entities) -> None:
        """One statistic over the mask voxels -> volume map now, surface maps queued for the end."""
        values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=fill)
        write_statmap(self.staging, self.responses.unmask(values, fill=fill), meta, **self.ents, **entities)
        if self.surfaces is not None:
            self.surface_queue.append((values, fill, meta, {**self.ents, **entities}))

    def path(self, **entities) -> Path:
        """A derivative's path in the staging folder, the task's entities filled in."""
        return derivative_path(self.staging, **{**self.ents, **entities})

    def finish(
        self, roi_rows: list[dict], *, fdr_alpha: float, roi_dir: Path | None, n_permutations: int | None
    ) -> None:
        """The surface maps of everything emitted, and the ROI table (``n_permutations``: its p column's)."""
        if self.surfaces is not None:
            t0 = time.perf_counter()
            responses = self.responses
            written = project_statmaps(
                self.staging,
                self.surface_queue,
                self.surfaces,
                mask_img=responses.mask_img,
                unmask=lambda values, fill: responses.unmask(values, fill=fill),
            )
            log.info(
                "sub-%s task-%s: %d GIFTI maps on %s (%.1f s)",
                self.ents["sub"],
                self.ents["task"],
                len(written),
                self.surfaces.space,
                time.perf_counter() - t0,
            )
        if not roi_rows:
            return
        table_path = derivative_path(
            self.staging, sub=self.ents["sub"], task=self.ents["task"], desc="roi", suffix="scores", extension=".tsv"
        )
        write_tsv(table_path, pd.DataFrame(roi_rows))
        write_json(
            sidecar_path(table_path),
            {
                **self.common,
                "FDRLevel": fdr_alpha,
                "ROIDirectory": str(roi_dir),
                "Columns": {**ROI_COLUMNS, **(ROI_P_COLUMN if n_permutations is not None else {})},
                **({"NPermutations": n_permutations} if n_permutations is not None else {}),
            },
        )
