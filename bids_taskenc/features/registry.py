"""Feature spaces by name, through the feature families of :mod:`.families`.

A name is ``<family>:<rest>`` (``taskonomy:keypoints3d``, ``baseline:gabor``, ``torchvision:resnet50:layer3``,
``user:<folder>``), or a bare name (``keypoints3d``, ``gabor``, ``<folder>``) when exactly one family has it.
Which families exist, how each names, lists and makes its spaces, and which are the default is each family's
entry and implementation: nothing here names a family.

Default (``names=None``): every family's defaults, in registry order (every user space of ``features_dir``
when given, else the paper's 21 Taskonomy encoders).
"""

from __future__ import annotations

from pathlib import Path

from .base import FeatureChoiceError, FeatureError, FeatureSpace
from .families import REGISTRY, FamilyContext, FamilySpaces


class FeatureLabelConflict(FeatureError):
    """Two chosen feature spaces share a BIDS-safe label."""


def _families(context: FamilyContext) -> dict[str, FamilySpaces]:
    """Each registered family's implementation for ``context``, by family name, in registry order."""
    return {family.name: family.spaces(context) for family in REGISTRY}


def _context(features_dir: str | Path | None, weights_dir: str | Path | None, offline: bool) -> FamilyContext:
    return FamilyContext(
        features_dir=None if features_dir is None else Path(features_dir),
        weights_dir=None if weights_dir is None else Path(weights_dir),
        offline=bool(offline),
    )


def _available(families: dict[str, FamilySpaces]) -> list[str]:
    return [name for spaces in families.values() for name in spaces.names()]


def available_feature_spaces(features_dir: str | Path | None = None) -> list[str]:
    """Concrete names :func:`resolve_feature_spaces` accepts, family by family (a family whose names are a
    pattern, such as ``torchvision:<model>:<layer>``, lists none)."""
    return _available(_families(_context(features_dir, None, False)))


def _unknown(name: str, families: dict[str, FamilySpaces]) -> FeatureChoiceError:
    """The error for a name no family has: what is available, and the families that list no names."""
    patterns = [spaces.family.hint() for spaces in families.values() if not spaces.names()]
    listed = ", ".join(_available(families))
    more = f", or {', '.join(patterns)}" if patterns else ""
    return FeatureChoiceError(f"unknown feature space {name!r}; available: {listed}{more}")


def _full_name(name: str, families: dict[str, FamilySpaces]) -> str:
    """``name`` itself when it names its family, else the one family's name for the bare ``name``."""
    if ":" in name:
        return name
    hits = [full for spaces in families.values() if (full := spaces.bare(name)) is not None]
    if not hits:
        raise _unknown(name, families)
    if len(hits) > 1:
        raise FeatureChoiceError(f"feature space name {name!r} is ambiguous ({', '.join(hits)}); give the full name")
    return hits[0]


def _resolve_one(name: str, families: dict[str, FamilySpaces]) -> FeatureSpace:
    full = _full_name(name, families)
    spaces = families.get(full.partition(":")[0])
    space = spaces.space(full) if spaces is not None else None
    if space is None:
        raise _unknown(full if ":" in name else name, families)
    return space


def _check_labels(spaces: list[FeatureSpace]) -> None:
    """Maps are named by label: two spaces of one label would overwrite each other."""
    by_label: dict[str, FeatureSpace] = {}
    for space in spaces:
        other = by_label.setdefault(space.label.lower(), space)
        if other is not space:
            raise FeatureLabelConflict(
                f"feature spaces {other.name!r} and {space.name!r} both get the BIDS label {space.label!r} "
                f"(desc-{space.label}), so their maps would overwrite each other; rename one (a folder of "
                "--features-dir) or choose one of them"
            )


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
    families = _families(_context(features_dir, weights_dir, offline))
    if names is None:
        names = [name for spaces in families.values() for name in spaces.defaults()]
    spaces: list[FeatureSpace] = []
    seen: set[str] = set()
    for name in names:
        space = _resolve_one(str(name).strip(), families)
        if space.name not in seen:
            seen.add(space.name)
            spaces.append(space)
    _check_labels(spaces)
    return spaces
