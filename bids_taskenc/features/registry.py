"""Feature spaces by name.

Names:

* ``taskonomy:<task>`` - one of the 21 single-image Taskonomy encoders
  (task-bank aliases such as ``rgb2depth`` work too);
* ``baseline:gabor``, ``baseline:pixels``, ``baseline:color`` - weight-free controls;
* ``torchvision:<model>:<layer>`` - needs torchvision;
* ``user:<folder>`` - a subfolder of ``features_dir``;
* a bare name (``keypoints3d``, ``gabor``, ``<folder>``) when exactly one family has it.

Default (``names=None``): every user space in ``features_dir`` when given, else
the paper's 21 Taskonomy encoders.
"""

from __future__ import annotations

from pathlib import Path

from .base import FeatureChoiceError, FeatureError, FeatureInputMissing, FeatureSpace
from .baselines import BASELINES, make_baseline
from .taskonomy import ALL_TASKS, MULTI_VIEW_TASKS, PAPER_TASKS, TASKBANK_ALIASES, TaskonomyFeatureSpace, canonical_task
from .user import discover_user_feature_spaces

FAMILIES = ("taskonomy", "baseline", "torchvision", "user")


def _user_names(features_dir) -> list[str]:
    if features_dir is None:
        return []
    return [s.name for s in discover_user_feature_spaces(features_dir)]


def available_feature_spaces(features_dir: str | Path | None = None) -> list[str]:
    """Concrete names :func:`resolve_feature_spaces` accepts (torchvision spaces,
    ``torchvision:<model>:<layer>``, are a pattern and not listed)."""
    names = [f"taskonomy:{t}" for t in PAPER_TASKS]
    names += [f"baseline:{b}" for b in BASELINES]
    names += _user_names(features_dir)
    return names


def _taskonomy(task: str, weights_dir, offline: bool) -> TaskonomyFeatureSpace:
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


def _unknown(name: str, features_dir) -> FeatureChoiceError:
    avail = available_feature_spaces(features_dir) if features_dir is not None else available_feature_spaces()
    return FeatureChoiceError(
        f"unknown feature space {name!r}; available: {', '.join(avail)}, "
        f"or torchvision:<model>:<layer> (needs torchvision)"
    )


def _resolve_one(name: str, *, user: dict, features_dir, weights_dir, offline) -> FeatureSpace:
    family, _, rest = name.partition(":")
    if not rest:  # bare name
        hits = []
        bare = TASKBANK_ALIASES.get(name, name)
        if bare in ALL_TASKS:
            hits.append(f"taskonomy:{bare}")
        if name in BASELINES:
            hits.append(f"baseline:{name}")
        if f"user:{name}" in user:
            hits.append(f"user:{name}")
        if not hits:
            raise _unknown(name, features_dir)
        if len(hits) > 1:
            raise FeatureChoiceError(
                f"feature space name {name!r} is ambiguous ({', '.join(hits)}); give the full name"
            )
        return _resolve_one(hits[0], user=user, features_dir=features_dir, weights_dir=weights_dir, offline=offline)
    if family == "taskonomy":
        if TASKBANK_ALIASES.get(rest, rest) not in ALL_TASKS:
            raise _unknown(name, features_dir)
        return _taskonomy(rest, weights_dir, offline)
    if family == "baseline":
        if rest not in BASELINES:
            raise _unknown(name, features_dir)
        return make_baseline(rest)
    if family == "torchvision":
        model, _, layer = rest.partition(":")
        if not model or not layer:
            raise FeatureChoiceError(
                f"{name!r}: torchvision spaces are named torchvision:<model>:<layer>, e.g. torchvision:resnet50:layer3"
            )
        from .torchvision_spaces import make_torchvision_space

        return make_torchvision_space(model, layer, offline=offline)
    if family == "user":
        if features_dir is None:
            raise FeatureChoiceError(f"{name!r}: user feature spaces need --features-dir")
        if name not in user:
            raise FeatureInputMissing(f"{name!r}: no such folder in {features_dir} (has: {', '.join(user) or 'none'})")
        return user[name]
    raise _unknown(name, features_dir)


def resolve_feature_spaces(
    names: list[str] | None,
    *,
    features_dir: str | Path | None = None,
    weights_dir: str | Path | None = None,
    offline: bool = False,
) -> list[FeatureSpace]:
    """Feature spaces for ``names`` in the given order (duplicates dropped).

    Taskonomy weights are located (and, unless ``offline``, downloaded) here, so
    a missing file fails before any heavy work.

    Raises
    ------
    FeatureError
        Unknown or ambiguous name (the message lists what is available), missing
        weights when offline, corrupt weights, unreadable user features.
    """
    user = {s.name: s for s in discover_user_feature_spaces(features_dir)} if features_dir is not None else {}
    if names is None:
        names = list(user) if features_dir is not None else [f"taskonomy:{t}" for t in PAPER_TASKS]
    spaces: list[FeatureSpace] = []
    seen: set[str] = set()
    for name in names:
        space = _resolve_one(
            str(name).strip(), user=user, features_dir=features_dir, weights_dir=weights_dir, offline=offline
        )
        if space.name not in seen:
            seen.add(space.name)
            spaces.append(space)
    by_label: dict[str, FeatureSpace] = {}
    for space in spaces:  # maps are named by label: two spaces of one label would overwrite each other
        other = by_label.setdefault(space.label.lower(), space)
        if other is not space:
            raise FeatureLabelConflict(
                f"feature spaces {other.name!r} and {space.name!r} both get the BIDS label {space.label!r} "
                f"(desc-{space.label}), so their maps would overwrite each other; rename one (a folder of "
                "--features-dir) or choose one of them"
            )
    return spaces


class FeatureLabelConflict(FeatureError):
    """Two chosen feature spaces share a BIDS-safe label."""
