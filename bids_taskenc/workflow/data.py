"""The two matrices a task's models are fitted on: responses (images x voxels) and features (images x features),
and the train/test split of their rows."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from ..encoding import train_test_split_indices
from ..errors import InputDataError
from ..features.pipeline import featurize
from ..responses.betas import beta_responses
from ..responses.lsa import lsa_responses
from ..responses.repeats import select_showings
from ..responses.travg import tr_average_responses
from .cache import WorkCache, response_key
from .dataset import Dataset
from .inputs import TaskInputs, user_mask
from .settings import ParticipantSettings

log = logging.getLogger(__name__)


def compute_responses(ds: Dataset, inputs: TaskInputs, settings: ParticipantSettings, cache: WorkCache):
    """The task's :class:`~bids_taskenc.responses.base.Responses` (from the work cache when unchanged) and the
    cache key they were stored under, which every fit's key contains."""
    rs, res = settings.responses, settings.resources
    key = response_key(settings, inputs.preprocessed, inputs.beta_files)
    confounds = list(rs.confounds) or None
    progress = settings.outputs.progress
    if rs.model == "betas":
        beta_files = inputs.beta_files
        responses = cache.get_or_compute(
            "responses",
            key,
            lambda: beta_responses(beta_files, user_mask=user_mask(rs, beta_files[0].path if beta_files else None)),
        )
        missing = sorted(set(responses.image_ids) - set(inputs.trials["image_id"]))
        if missing:
            raise InputDataError(
                f"{rs.betas_dir}: stimulus {missing[0]!r} of the betas is in no events file "
                f"of sub-{inputs.subject} ({len(missing)} such)"
            )
    elif rs.model == "lsa":
        responses = cache.get_or_compute(
            "responses",
            key,
            lambda: lsa_responses(
                inputs.preprocessed,
                inputs.trials,
                hrf_model=rs.hrf_model,
                high_pass=rs.high_pass,
                confounds=confounds,
                user_mask=user_mask(rs, inputs.preprocessed[0].bold),
                device=ds.device,
                n_threads=res.nprocs,
                mem_gb=res.mem_gb,
                progress=progress,
            ),
        )
    else:
        responses = cache.get_or_compute(
            "responses",
            key,
            lambda: tr_average_responses(
                inputs.preprocessed,
                inputs.trials,
                response_trs=list(rs.response_trs),
                confounds=confounds,
                user_mask=user_mask(rs, inputs.preprocessed[0].bold),
                n_threads=res.nprocs,
                mem_gb=res.mem_gb,
                progress=progress,
                zscore=rs.response_zscore,
            ),
        )
    # one showing per image, when asked for, from the single trials (the cached responses hold them all)
    return select_showings(responses, rs.repeats), key


def compute_features(ds: Dataset, inputs: TaskInputs, responses, settings: ParticipantSettings):
    """Feature matrices of the responses' images, one per space (from the feature cache when computed before),
    and the seconds they took."""
    paths_by_image = dict(zip(inputs.trials["image_id"], inputs.trials["stimulus_path"]))
    t0 = time.perf_counter()
    features = featurize(
        ds.spaces,
        responses.image_ids,
        [paths_by_image[i] for i in responses.image_ids],
        cache_dir=ds.work_dir / "features",
        device=ds.device,
        progress=settings.outputs.progress,
        num_workers=settings.resources.nprocs or 2,
    )
    return features, time.perf_counter() - t0


def check_feature_values(space, X: np.ndarray, image_ids: list[str], train: np.ndarray) -> None:
    """Non-finite features (NaN, inf, values beyond float32's range) are an error naming the space;
    features constant over the training images (nothing to fit: r = 0 everywhere) a warning."""
    finite = np.isfinite(X)
    if not finite.all():
        rows, cols = np.nonzero(~finite)
        raise InputDataError(
            f"feature space {space.name}: {int((~finite).sum())} feature value(s) are NaN or infinite (first: "
            f"image {image_ids[rows[0]]!r}, column {int(cols[0])}); features are float32, so |x| must stay "
            f"below {float(np.finfo(np.float32).max):.3g}: rescale the features"
        )
    Xt = X[train]
    constant = Xt.max(0) == Xt.min(0) if len(Xt) else np.ones(X.shape[1], bool)
    if constant.all():
        log.warning(
            "feature space %s: every one of its %d columns is constant over the training images; "
            "it cannot predict anything (r = 0, p = 1 everywhere)",
            space.name,
            X.shape[1],
        )
    elif constant.mean() > 0.5:
        log.warning(
            "feature space %s: %d of its %d columns are constant over the training images",
            space.name,
            int(constant.sum()),
            X.shape[1],
        )


@dataclass(frozen=True)
class Split:
    """Training and test rows of the task's images, and the CV groups of the training rows (session scheme)."""

    train: np.ndarray
    test: np.ndarray
    cv_groups: np.ndarray | None


def split_images(inputs: TaskInputs, responses, features: dict, spaces, settings: ParticipantSettings) -> Split:
    """The held-out split (seeded), every space's features checked on it, and the session CV groups."""
    fit = settings.fit
    n = len(responses.image_ids)
    train_idx, test_idx = train_test_split_indices(n, fit.test_fraction, fit.seed)
    train_mask = np.zeros(n, bool)
    train_mask[train_idx] = True
    for space in spaces:
        check_feature_values(space, features[space.name], responses.image_ids, train_mask)
    cv_groups = None
    if fit.cv_scheme == "session":
        cv_groups = np.asarray(responses.image_sessions, dtype=object)[train_idx].astype(str)
        if len(set(cv_groups)) < 2:
            raise InputDataError(
                f"sub-{inputs.subject} task-{inputs.task}: --cv-scheme session needs training "
                f"images from at least 2 sessions (found {sorted(set(cv_groups))})"
            )
    return Split(train=train_idx, test=test_idx, cv_groups=cv_groups)
