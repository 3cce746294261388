"""Feature families: the one table that says which kinds of feature space exist.

A feature space is named ``<family>:<rest>`` (``taskonomy:keypoints3d``, ``baseline:gabor``,
``torchvision:resnet50:layer3``, ``user:<folder>``). Each family is one :class:`FeatureFamily` entry of
:data:`REGISTRY` and one module that implements it (a :class:`FamilySpaces` subclass named by import path).
Everything that names families reads this table: :func:`bids_taskenc.features.registry.resolve_feature_spaces`
(names -> spaces), the command line's help (:func:`spaces_help`), the docs, and the methods text and
citations of ``report/citation.py`` (:func:`family_of`, :meth:`FeatureFamily.methods_text`).

Adding a family is one module and one ``REGISTRY.register(FeatureFamily(...))`` line here (or, for a plug-in
or a test, ``REGISTRY.temporarily(...)``). This module imports nothing heavier than the standard library, so
``bids_taskenc --help`` and the report read it without torch, scipy, nibabel or pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.registry import Registry, resolve

if TYPE_CHECKING:
    from .base import FeatureSpace

#: Where a methods sentence puts its family's citations (``[@key]`` each); without it they close the sentence.
CITE = "{cite}"


@dataclass(frozen=True)
class FeatureFamily:
    """One family of feature spaces.

    Attributes
    ----------
    name : str
        The prefix of its spaces' names: a space ``<name>:<rest>`` belongs to it.
    description : str
        One line for ``--help`` and the docs.
    pattern : str
        How its spaces are named, for help and error messages (``taskonomy:<task>``).
    methods : str
        The methods text's sentence for runs that fitted one of its spaces ("" for none); :data:`CITE` marks
        where the citations go.
    citations : tuple of str
        BibTeX keys of ``boilerplate/references.bib`` the sentence cites.
    implementation : str
        Import path (``"package.module:Class"``) of its :class:`FamilySpaces` subclass, imported on first use.
    needs : str
        What its spaces need beyond the defaults ("torchvision", "--features-dir"), for help and errors.
    """

    name: str
    description: str
    pattern: str
    methods: str
    citations: tuple[str, ...]
    implementation: str
    needs: str = ""

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name:
            raise ValueError(f"a feature family's name is a non-empty prefix without ':', got {self.name!r}")

    def owns(self, space_name: str) -> bool:
        """Whether ``space_name`` (``family:rest``) is one of this family's spaces."""
        family, colon, _ = space_name.partition(":")
        return bool(colon) and family == self.name

    def methods_text(self) -> str:
        """The methods sentence with its citations as ``[@key]`` (what the citation code reads back)."""
        cite = " ".join(f"[@{key}]" for key in self.citations)
        if CITE in self.methods:
            return self.methods.replace(CITE, cite)
        if not cite:
            return self.methods
        body = self.methods.rstrip()
        end = body[-1] if body.endswith((".", "!", "?")) else ""
        return f"{body[: len(body) - len(end)]} {cite}{end}"

    def spaces(self, context: FamilyContext) -> FamilySpaces:
        """The implementation, for one resolution of names (imports its module)."""
        return resolve(self.implementation)(self, context)

    def hint(self) -> str:
        """``pattern (needs ...)``: how to name its spaces, for messages."""
        return f"{self.pattern} (needs {self.needs})" if self.needs else self.pattern


@dataclass(frozen=True)
class FamilyContext:
    """What resolving names may use: the run's user-features folder, the weights store, and ``--offline``."""

    features_dir: Path | None = None
    weights_dir: Path | None = None
    offline: bool = False


class FamilySpaces:
    """A family's implementation: its spaces by name, for one :class:`FamilyContext`.

    Subclasses override :meth:`space` and, as needed, :meth:`names`, :meth:`bare` and :meth:`defaults`. They
    are made once per call of ``resolve_feature_spaces`` (a family that reads files, such as the user family,
    reads them in ``__init__``, before any name is resolved).
    """

    def __init__(self, family: FeatureFamily, context: FamilyContext) -> None:
        self.family = family
        self.context = context

    def names(self) -> list[str]:
        """Full names of the spaces this family offers here (listed in messages; may be empty)."""
        return []

    def defaults(self) -> list[str]:
        """Full names fitted when the run names no feature space."""
        return []

    def bare(self, name: str) -> str | None:
        """The full name a bare ``name`` (no ``family:``) stands for in this family, or None."""
        return None

    def space(self, name: str) -> FeatureSpace | None:
        """The space of full name ``name`` (``family:rest``), or None when the family has no such space.

        Raises :class:`~bids_taskenc.features.base.FeatureError` for a space it has but cannot give (missing
        weights, a missing optional dependency), with a message naming what to do.
        """
        raise NotImplementedError


#: The feature families, in the order of ``--help``, the docs, default spaces and the methods text.
REGISTRY: Registry[FeatureFamily] = Registry("feature family")

REGISTRY.register(
    FeatureFamily(
        name="taskonomy",
        description="the encoders of Taskonomy's single-image tasks (the paper's 21 are the default)",
        pattern="taskonomy:<task>",
        methods=(
            "Taskonomy features were the outputs of the task-specific encoders released with Taskonomy {cite}, "
            "computed with PyTorch."
        ),
        citations=("zamir2018taskonomy",),
        implementation="bids_taskenc.features.taskonomy:TaskonomySpaces",
    )
)
REGISTRY.register(
    FeatureFamily(
        name="baseline",
        description="weight-free image controls: Gabor energy, pixels, colour",
        pattern="baseline:<gabor|pixels|color>",
        methods="",
        citations=(),
        implementation="bids_taskenc.features.baselines:BaselineSpaces",
    )
)
REGISTRY.register(
    FeatureFamily(
        name="torchvision",
        description="a pretrained torchvision network's activations at one layer",
        pattern="torchvision:<model>:<layer>",
        methods="Torchvision features were activations of pretrained networks {cite}.",
        citations=("paszke2019pytorch",),
        implementation="bids_taskenc.features.torchvision_spaces:TorchvisionSpaces",
        needs="torchvision",
    )
)
REGISTRY.register(
    FeatureFamily(
        name="user",
        description="features you computed: one folder of --features-dir per space",
        pattern="user:<folder>",
        methods="User-supplied feature spaces were read as given.",
        citations=(),
        implementation="bids_taskenc.features.user:UserSpaces",
        needs="--features-dir",
    )
)


def family_of(space_name: str) -> FeatureFamily | None:
    """The registered family of a space name (``taskonomy:normal`` -> the Taskonomy entry), or None."""
    family, colon, _ = space_name.partition(":")
    return REGISTRY[family] if colon and family in REGISTRY else None


def spaces_help() -> str:
    """``--feature-spaces``' help: every family's name pattern, and the default."""
    patterns = " ".join(family.pattern for family in REGISTRY)
    return (
        f"{patterns} (e.g. taskonomy:keypoints3d baseline:gabor user:myspace; a bare name when one family has it); "
        "default: the --features-dir spaces if given, else the paper's 21 Taskonomy encoders"
    )
