"""The two matrices a task's models are fitted on: responses (images x voxels) and features (images x features),
and the train/test split of their rows."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..encoding import grouped_train_test_split_indices, train_test_split_indices
from ..errors import InputDataError
from ..features.pipeline import featurize
from ..responses.base import Responses
from ..responses.registry import REGISTRY as RESPONSE_MODELS
from ..responses.registry import ResponseJob, ResponseModel
from ..responses.repeats import chosen_trials, select_showings
from .cache import WorkCache, response_key
from .dataset import Dataset
from .inputs import TaskInputs, user_mask
from .settings import ParticipantSettings

log = logging.getLogger(__name__)


def response_job(ds: Dataset, inputs: TaskInputs, settings: ParticipantSettings, model: ResponseModel) -> ResponseJob:
    """What ``model`` is given for this task: its inputs (the BOLD runs or the betas it reads), the response
    settings, ``--mask`` on the grid it reads, and the run's device, reader threads and memory ceiling."""
    rs, res = settings.responses, settings.resources
    if model.reads == "betas":
        reference = inputs.beta_files[0].path if inputs.beta_files else None
    else:
        reference = inputs.preprocessed[0].bold
    return ResponseJob(
        runs=inputs.preprocessed,
        trials=inputs.trials,
        beta_files=inputs.beta_files,
        options=rs,
        user_mask=user_mask(rs, reference),
        device=ds.device,
        n_threads=res.nprocs,
        mem_gb=res.mem_gb,
        progress=settings.outputs.progress,
    )


def compute_responses(ds: Dataset, inputs: TaskInputs, settings: ParticipantSettings, cache: WorkCache):
    """The task's :class:`~bids_taskenc.responses.base.Responses` by the response model of the settings (from the
    work cache when unchanged) and the cache key they were stored under, which every fit's key contains.

    The model is looked up in :data:`~bids_taskenc.responses.registry.REGISTRY`; its name is what the sidecars
    record as ``ResponseModel``.
    """
    rs = settings.responses
    model = RESPONSE_MODELS[rs.model]
    key = response_key(settings, inputs.preprocessed, inputs.beta_files)

    def compute() -> Responses:
        responses = model.function()(response_job(ds, inputs, settings, model))
        responses.provenance["ResponseModel"] = model.name
        return responses

    responses = cache.get_or_compute("responses", key, compute)
    # precomputed betas name their stimuli themselves (the BOLD models take theirs from the events)
    missing = sorted(set(responses.image_ids) - set(inputs.trials["image_id"])) if model.reads == "betas" else []
    if missing:
        raise InputDataError(
            f"{rs.betas_dir}: stimulus {missing[0]!r} of the betas is in no events file "
            f"of sub-{inputs.subject} ({len(missing)} such)"
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
        precision=settings.fit.precision,
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
    """Training and test rows of the task's images, the CV groups of the training rows (session scheme), and
    the run or session of each test row when whole runs or sessions are held out (``--test-split``)."""

    train: np.ndarray
    test: np.ndarray
    cv_groups: np.ndarray | None
    test_groups: np.ndarray | None = None


def image_runs(responses) -> np.ndarray:
    """The run (``run_key``) of each image's first showing, shape (n_images,), as text."""
    trials = responses.trials
    first = pd.Series(trials["run_key"].to_numpy()).groupby(np.asarray(responses.trial_image_index)).first()
    return first.reindex(range(len(responses.image_ids))).to_numpy().astype(str)


def image_groups(responses, unit: str) -> np.ndarray:
    """Each image's ``unit`` (``run`` or ``session``) of its first showing, as text, shape (n_images,)."""
    if unit == "run":
        return image_runs(responses)
    return np.asarray(responses.image_sessions, dtype=object).astype(str)


def response_groups(responses, unit: str, repeats: str) -> list[frozenset[str]]:
    r"""The ``unit``\s (runs or sessions) whose trials make each image's response, one set per image.

    Under ``--repeats average`` every showing counts, so a repeated image can draw on several runs or
    sessions; under ``first`` or ``drop-repeats`` only the kept showing does.
    """
    trials = responses.trials
    column = "run_key" if unit == "run" else "session"
    keys = trials[column].to_numpy().astype(str)
    index = np.asarray(responses.trial_image_index)
    if repeats != "average":
        rows = chosen_trials(responses, repeats)
        return [frozenset([keys[r]]) for r in rows]
    groups: list[set[str]] = [set() for _ in range(len(responses.image_ids))]
    for i, key in zip(index, keys):
        groups[i].add(key)
    return [frozenset(g) for g in groups]


def without_straddlers(train, test, held_out: set[str], members: list[frozenset[str]]):
    """``train`` and ``test`` less the images whose response draws on trials of both sides of a grouped split.

    An image averaged over showings in a held-out run and in a training run would carry the held-out run's
    noise into training (and back), which a split by run or session is there to prevent. ``held_out`` holds
    the held-out runs or sessions, ``members`` each image's (:func:`response_groups`). Returns the two index
    arrays and the number of images left out.
    """
    keep_train = np.array([not (members[i] & held_out) for i in train], dtype=bool)
    keep_test = np.array([members[i] <= held_out for i in test], dtype=bool)
    dropped = int((~keep_train).sum() + (~keep_test).sum())
    return np.asarray(train)[keep_train], np.asarray(test)[keep_test], dropped


def held_out_split(inputs: TaskInputs, responses, settings: ParticipantSettings):
    """Train and test rows by ``--test-split``, and the test rows' groups (None for a split by image).

    With whole runs or sessions held out, images whose response draws on trials of both sides (a repeated
    image shown in a held-out and in a training run, under ``--repeats average``) are left out of both.
    """
    fit = settings.fit
    n = len(responses.image_ids)
    if fit.test_split == "image":
        train, test = train_test_split_indices(n, fit.test_fraction, fit.seed)
        return train, test, None
    members = response_groups(responses, fit.test_split, settings.responses.repeats)
    groups = image_groups(responses, fit.test_split)
    if settings.responses.repeats != "average":  # the group of the showing that makes the response
        groups = np.array([next(iter(g)) for g in members])
    if len(set(groups)) < 2:
        raise InputDataError(
            f"sub-{inputs.subject} task-{inputs.task}: --test-split {fit.test_split} needs images from at least "
            f"2 {fit.test_split}s (found {sorted(set(groups))})"
        )
    train, test = grouped_train_test_split_indices(groups, fit.test_fraction, fit.seed)
    held_out = {str(g) for g in groups[test]}
    train, test, dropped = without_straddlers(train, test, held_out, members)
    log.info(
        "sub-%s task-%s: test set = %d whole %s(s) of %d (%d of %d images; images in the %s of their first showing)",
        inputs.subject,
        inputs.task,
        len(set(groups[test])),
        fit.test_split,
        len(set(groups)),
        len(test),
        n,
        fit.test_split,
    )
    if dropped:
        log.warning(
            "sub-%s task-%s: %d repeated image(s) left out of training and test: their showings fall in both a "
            "held-out and a training %s, so their averaged response would carry held-out noise into training "
            "(--repeats first keeps them, one showing each)",
            inputs.subject,
            inputs.task,
            dropped,
            fit.test_split,
        )
    if not fit.n_permutations:
        log.warning(
            "sub-%s task-%s: the analytic p assumes independent test images; with a blocked or temporally "
            "structured design use --n-permutations (circular shifts within each held-out %s; docs/statistics.md)",
            inputs.subject,
            inputs.task,
            fit.test_split,
        )
    return train, test, groups[test]


def split_images(inputs: TaskInputs, responses, features: dict, spaces, settings: ParticipantSettings) -> Split:
    """The held-out split (seeded), every space's features checked on it, and the session CV groups."""
    fit = settings.fit
    n = len(responses.image_ids)
    train_idx, test_idx, test_groups = held_out_split(inputs, responses, settings)
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
    return Split(train=train_idx, test=test_idx, cv_groups=cv_groups, test_groups=test_groups)
