"""``--variance-partitioning SET SET [SET]``: resolve the sets, fit, write maps and an ROI table.

A SET is a feature space (``taskonomy:keypoints3d`` or its label
``keypoints3d``), several joined with ``+`` (``keypoints3d+depthzbuffer``), or
a whole group of this run's spaces (``group:3D``, ``group:2D``,
``group:semantic``, ``group:other``). The columns of a set's spaces form one
band of a banded ridge model (:mod:`bids_taskenc.encoding.banded`), fitted on
the same training images, with the same folds, alpha grid and options as the
single-space fits.

Names: a partitioning's ``desc-`` is ``vp`` followed by its set labels joined
with ``VS`` (``desc-vp3DVS2D``); a set's label is the group (``3D``), the
space's label, or the labels of joined spaces joined with ``PLUS``. Feature
labels never contain ``VS`` (reserved), so the name reads back unambiguously.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..core.fdr import below_fdr_level
from ..encoding.alphas import alpha_grid
from ..encoding.banded import variance_partitioning
from ..errors import UsageError
from ..outputs.atomic import write_json, write_tsv
from ..outputs.naming import PARTITIONING_ROI_DESC as ROI_TABLE_DESC
from ..outputs.naming import bids_label, derivative_path, sidecar_path
from .resources import fit_mem_gb

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ..features.base import FeatureSpace
    from .task import TaskRun

log = logging.getLogger(__name__)

#: Score that chooses each partitioning model's (ratio, alpha), whatever ``--cv-score`` is: R² is what
#: the partitioning splits. With Pearson r, a model that predicts a voxel not at all may take a tiny
#: penalty (r ignores the scale of the predictions); its noisy predictions then have a very negative
#: test R², which inflates the other set's unique R² beyond the joint R² (seen on the synthetic data:
#: unique R² up to 2.4).
PARTITIONING_CV_SCORE = "r2"


@dataclass(frozen=True)
class FeatureSet:
    token: str  # as given on the command line
    label: str  # BIDS-safe
    spaces: tuple[str, ...]  # feature-space names, in the run's order


@dataclass(frozen=True)
class Partitioning:
    name: str  # desc- value
    sets: tuple[FeatureSet, ...]


def _resolve_set(token: str, spaces: Sequence[FeatureSpace]) -> FeatureSet:
    by_name = {s.name: s for s in spaces}
    by_label = {s.label: s for s in spaces}
    groups = {s.group.lower(): s.group for s in spaces}
    chosen: list[str] = []
    labels: list[str] = []
    for part in token.split("+"):
        part = part.strip()
        if not part:
            raise UsageError(f"--variance-partitioning: empty feature space in set {token!r}")
        if part.lower().startswith("group:"):
            wanted = part.split(":", 1)[1]
            group = groups.get(wanted.lower())
            if group is None:
                raise UsageError(
                    f"--variance-partitioning: no feature space of this run is in group {wanted!r} "
                    f"(groups here: {', '.join(sorted(set(groups.values()))) or 'none'})"
                )
            names = [s.name for s in spaces if s.group == group]
            labels.append(bids_label(group))
        else:
            space = by_name.get(part) or by_label.get(part) or by_label.get(bids_label(part))
            if space is None:
                raise UsageError(
                    f"--variance-partitioning: {part!r} is not a feature space of this run "
                    f"(spaces: {', '.join(s.name for s in spaces)})"
                )
            names = [space.name]
            labels.append(space.label)
        chosen += [n for n in names if n not in chosen]
    order = [s.name for s in spaces]
    return FeatureSet(token, "PLUS".join(labels), tuple(sorted(chosen, key=order.index)))


def resolve_partitionings(
    specs: Iterable[str | Sequence[str]] | None, spaces: Sequence[FeatureSpace]
) -> list[Partitioning]:
    """Turn the ``--variance-partitioning`` values (lists of 2–3 SET tokens) into :class:`Partitioning`.

    Raises
    ------
    UsageError
        Unknown space or group, a space in two sets of one partitioning, a
        set count other than 2 or 3, or two partitionings with one name.
    """
    out: list[Partitioning] = []
    for tokens in specs or []:
        tokens = [tokens] if isinstance(tokens, str) else list(tokens)
        if not 2 <= len(tokens) <= 3:
            raise UsageError(f"--variance-partitioning takes 2 or 3 sets, got {len(tokens)}: {' '.join(tokens)}")
        sets = tuple(_resolve_set(t, spaces) for t in tokens)
        seen: dict[str, str] = {}
        for s in sets:
            for name in s.spaces:
                if name in seen:
                    raise UsageError(
                        f"--variance-partitioning {' '.join(tokens)}: {name} is in sets "
                        f"{seen[name]!r} and {s.token!r}; sets must not overlap"
                    )
                seen[name] = s.token
        name = "vp" + "VS".join(s.label for s in sets)
        if any(p.name == name for p in out):
            raise UsageError(f"--variance-partitioning {' '.join(tokens)} is given twice")
        out.append(Partitioning(name, sets))
    return out


def _fit_plan(run: TaskRun, plan: Partitioning):
    """The banded ridge models of one partitioning: its sets' feature matrices and the result."""
    fit, features, train, test = run.settings.fit, run.features, run.split.train, run.split.test
    xs = [
        np.concatenate([features[n] for n in s.spaces], axis=1) if len(s.spaces) > 1 else features[s.spaces[0]]
        for s in plan.sets
    ]
    res = variance_partitioning(
        [x[train] for x in xs],
        run.Y[train],
        [x[test] for x in xs],
        run.Y[test],
        set_names=[s.label for s in plan.sets],
        fdr_alpha=fit.fdr_alpha,
        alphas=alpha_grid(fit.alpha_grid, sum(x.shape[1] for x in xs), fit.alphas),
        n_folds=fit.cv_folds,
        groups=run.split.cv_groups,
        cv_score=PARTITIONING_CV_SCORE,
        standardize=fit.standardize,
        precision=fit.precision,
        device=run.ds.device,
        # --mem is a ceiling here too: what the process holds (the rows just copied included) and the models'
        # float64 copies of the sets come off before the voxel batches are sized
        mem_gb=fit_mem_gb(
            run.settings.resources.mem_gb,
            run.ds.device,
            2 * sum(x.nbytes for x in xs),
            0,
            given_as=run.settings.resources.mem_label,
        ),
        seed=fit.seed,
    )
    return xs, res


def _write_plan_maps(run: TaskRun, plan: Partitioning, xs: list, res) -> None:
    emit = run.writer.emit
    sets_meta = [
        {"Label": s.label, "Given": s.token, "FeatureSpaces": list(s.spaces), "NFeatures": int(x.shape[1])}
        for s, x in zip(plan.sets, xs)
    ]
    meta = {
        **run.writer.common,
        "VariancePartitioning": {**res.metadata(), "Name": plan.name, "Sets": sets_meta},
        "FDRLevel": run.settings.fit.fdr_alpha,
    }
    d = plan.name
    emit(
        res.joint.r,
        {**meta, "Description": "test-set Pearson r of the joint banded ridge model"},
        desc=d,
        stat="jointr",
    )
    emit(
        res.joint.r2,
        {**meta, "Description": "test-set R-squared of the joint banded ridge model"},
        desc=d,
        stat="jointrsquared",
    )
    emit(
        res.shared_r2,
        {**meta, "Description": "shared R-squared: joint R-squared minus the sum of every set's unique R-squared"},
        desc=d,
        stat="sharedrsquared",
    )
    for b, s in enumerate(plan.sets):
        emit(
            res.unique_r2[b],
            {
                **meta,
                "Description": f"unique R-squared of set {s.label}: joint R-squared "
                "minus that of the model without the set",
            },
            desc=d,
            stat=f"uniquersquared{s.label}",
        )
        emit(
            res.unique_p[b],
            {
                **meta,
                "Description": f"one-sided p that the joint model predicts better than "
                f"the model without {s.label} (Williams' test)",
            },
            fill=1.0,
            desc=d,
            stat=f"uniquep{s.label}",
        )
        emit(
            res.unique_q[b],
            {**meta, "Description": f"Benjamini-Hochberg q of uniquep{s.label} over the mask voxels"},
            fill=1.0,
            desc=d,
            stat=f"uniqueq{s.label}",
        )
        emit(
            res.split_r2[b],
            {
                **meta,
                "Description": f"product-measure share of set {s.label} in the joint "
                "R-squared (himalaya's r2_score_split)",
            },
            desc=d,
            stat=f"splitrsquared{s.label}",
        )


def _plan_roi_rows(run: TaskRun, plan: Partitioning, res) -> list[dict]:
    rows = []
    for roi, inside in run.rois.items():
        n = int(inside.sum())
        base = {"partitioning": plan.name, "roi": roi, "n_voxels": n}

        def mean(v, inside=inside, n=n):
            return float(np.nanmean(v[inside])) if n else np.nan

        rows.append({**base, "component": "joint", "mean_rsquared": mean(res.joint.r2), "fraction_significant": np.nan})
        rows.append(
            {**base, "component": "shared", "mean_rsquared": mean(res.shared_r2), "fraction_significant": np.nan}
        )
        for b, s in enumerate(plan.sets):
            rows.append(
                {
                    **base,
                    "component": f"unique{s.label}",
                    "mean_rsquared": mean(res.unique_r2[b]),
                    "fraction_significant": mean(below_fdr_level(res.unique_q[b], run.settings.fit.fdr_alpha)),
                }
            )
    return rows


def _write_roi_table(run: TaskRun, roi_rows: list[dict]) -> None:
    ents = run.writer.ents
    path = derivative_path(
        run.writer.staging, sub=ents["sub"], task=ents["task"], desc=ROI_TABLE_DESC, suffix="scores", extension=".tsv"
    )
    write_tsv(path, pd.DataFrame(roi_rows))
    write_json(
        sidecar_path(path),
        {
            **run.writer.common,
            "FDRLevel": run.settings.fit.fdr_alpha,
            "Columns": {
                "partitioning": "desc- of the partitioning's maps",
                "roi": "ROI; 'LH-'/'RH-' prefix for one hemisphere, none for both pooled",
                "n_voxels": "analysed voxels inside the ROI",
                "component": "joint, shared, or unique<set label>",
                "mean_rsquared": "mean over the ROI's voxels of the component's test-set R-squared",
                "fraction_significant": "unique rows: fraction of ROI voxels whose unique q is below FDRLevel",
            },
        },
    )


def run_partitionings(run: TaskRun) -> dict:
    """Fit every partitioning of the task, write its maps (through the task's writer) and one ROI table; returns a
    summary."""
    summary: dict = {}
    roi_rows = []
    alpha = run.settings.fit.fdr_alpha
    for plan in run.inputs.partitionings:
        xs, res = _fit_plan(run, plan)
        _write_plan_maps(run, plan, xs, res)
        roi_rows += _plan_roi_rows(run, plan, res)
        n_sig = {s.label: int(np.sum(res.unique_q[b] < alpha)) for b, s in enumerate(plan.sets)}
        summary[plan.name] = {"n_unique_significant": n_sig, "seconds": round(res.joint.timings.get("total", 0.0), 2)}
        log.info(
            "sub-%s task-%s partitioning %s: voxels with unique variance (q<%.3g): %s",
            run.subject,
            run.task,
            plan.name,
            alpha,
            ", ".join(f"{k} {v}" for k, v in n_sig.items()),
        )
    if roi_rows:
        _write_roi_table(run, roi_rows)
    return summary
