"""The statistics of the maps: one registry entry per ``stat-`` value, read by the writer, the report and the docs.

An entry says what a map holds (``Description`` of its sidecars; the table of ``docs/outputs.md``), in which units,
how the participant workflow takes it from a fit (``source``: an attribute of the fit result, or a function's import
path), which value stands for "no value" (``fill``), and whether and how the participant report shows it
(:class:`MapDisplay`). Adding a statistic written for every feature space is one entry::

    STATISTICS.register(MapStatistic("rabs", "Absolute test-set r", "Pearson r", source="mypackage.stats:abs_r"))

and it is written (``..._desc-<space>_stat-rabs_statmap.nii.gz`` and its sidecar, GIFTI maps too), described and,
with a ``display``, shown. Statistics that other steps write (noise ceiling, contrasts, variance partitioning) are
entries without a ``source``: they are here for their descriptions and the docs.

This module imports nothing heavy: the command line and the docs may read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.registry import Registry, resolve

#: ``scope`` of a statistic written for every feature space from its fit (the entries with a ``source``).
PER_SPACE = "feature space"


@dataclass(frozen=True)
class MapDisplay:
    """How the participant report shows a statistic: one figure, one row per feature space, one colour scale.

    ``cmap`` is a matplotlib colour map; the scale runs from 0 (or ``-top`` when ``symmetric``) to ``top``, the
    largest absolute value over the shown voxels of every space (:func:`~bids_taskenc.report.brain.shared_vmax`),
    at least ``floor``. ``thresholded``: coloured only where the space's q is below the FDR level (else every
    voxel with a finite value). ``figure`` names the PNG (``..._desc-<figure>_figure.png``).
    """

    cmap: str
    label: str
    title: str
    caption: str
    figure: str
    symmetric: bool = False
    floor: float = 0.1
    thresholded: bool = True


@dataclass(frozen=True)
class MapStatistic:
    """One ``stat-`` value of the maps.

    ``name``: the BIDS ``stat-`` entity (letters and digits); with ``per_set`` the written names are ``name``
    followed by a feature set's label (``uniqueq3D``). ``description``: one line, the sidecars' ``Description``.
    ``units``: what the numbers are (docs). ``scope``: which step writes it (:data:`PER_SPACE` for the per-space
    maps). ``source``: for per-space statistics, an attribute of the fit result (``"r2"``) or the import path of a
    function of the result (``"package.module:function"``) giving ``(n_voxels,)`` values. ``fill``: the value
    written outside finite values (1 for p and q: "not significant"). ``display``: how the report shows it.
    ``citations``: keys of :mod:`bids_taskenc.report.citation`'s references for the method. ``own_description``:
    the step that writes the map gives its sidecar a Description of its own (naming the feature sets); the entry's
    is the docs' only. ``discrete``: values on a grid (sampled onto surfaces as the most frequent value, not an
    average). ``methods``: a sentence of the methods text for a run that wrote the maps, followed by its
    ``citations`` (the built-in maps are described by the methods template itself and have none).
    ``two_sided_description``: the Description instead when the map's sidecar says its p-values are two-sided
    (``PValueSides``, ``--p-sides two-sided``).
    """

    name: str
    description: str
    units: str
    scope: str = PER_SPACE
    source: str | None = None
    fill: float = 0.0
    display: MapDisplay | None = None
    citations: tuple[str, ...] = ()
    per_set: bool = False
    own_description: bool = False
    discrete: bool = False
    methods: str = ""
    two_sided_description: str = ""

    @property
    def written_name(self) -> str:
        """The ``stat-`` value as the docs write it (``uniqueq<set>`` for a per-set statistic)."""
        return f"{self.name}<set>" if self.per_set else self.name

    def values(self, result: Any) -> Any:
        """The statistic of one fit result, ``(n_voxels,)`` (an error for a statistic without a ``source``)."""
        if self.source is None:
            raise ValueError(f"statistic {self.name!r} is not taken from a fit result")
        if ":" in self.source:
            function: Callable[[Any], Any] = resolve(self.source)
            return function(result)
        return getattr(result, self.source)


STATISTICS = Registry[MapStatistic]("map statistic")

_R_DISPLAY = MapDisplay(
    cmap="inferno",
    label="r (test set)",
    title="prediction accuracy r where q is below the FDR level",
    caption="Test-set r of every feature space (one row each, grouped 2D / 3D / semantic / other), coloured where q "
    "is below the FDR level, on one colour scale (as in Wang et al. 2019, Figs. 2 and 4).",
    figure="rmaps",
)

for _entry in (
    MapStatistic(
        "r",
        "Pearson correlation between predicted and measured responses on the held-out test images",
        "Pearson r (-1 to 1)",
        source="r",
        display=_R_DISPLAY,
    ),
    MapStatistic(
        "rsquared",
        "Coefficient of determination (1 - SS_res/SS_tot) on the held-out test images; can be negative",
        "fraction of variance (at most 1)",
        source="r2",
    ),
    MapStatistic(
        "p",
        "One-sided p-value of r > 0",
        "probability",
        source="p",
        fill=1.0,
        two_sided_description="Two-sided p-value of r != 0",
    ),
    MapStatistic(
        "q",
        "Benjamini-Hochberg FDR q-value of p, over the voxels of the mask",
        "probability",
        source="q",
        fill=1.0,
        citations=("benjamini1995fdr",),
    ),
    MapStatistic(
        "alpha",
        "Ridge regularisation chosen for the voxel by cross-validation on the training images",
        "penalty on standardised features",
        source="alpha",
        discrete=True,
    ),
    MapStatistic(
        "cvscore",
        "Mean cross-validation score of the chosen alpha on the training images",
        "the CV score's units (sidecar CVScore)",
        source="cv_score",
    ),
    MapStatistic(
        "noiseceiling",
        "Noise ceiling (fraction of variance explainable given the repeats; NSD formula)",
        "fraction of variance (0 to 1)",
        scope="noise ceiling",
        citations=("allen2022nsd",),
    ),
    MapStatistic(
        "ncsnr",
        "Noise-ceiling signal-to-noise ratio",
        "ratio of standard deviations",
        scope="noise ceiling",
        citations=("allen2022nsd",),
    ),
    MapStatistic(
        "rsquarednorm",
        "Squared test correlation (r clipped at 0) divided by the noise ceiling; NaN where the "
        "ceiling is not reliably above 0",
        "fraction of the explainable variance",
        scope="noise ceiling",
    ),
    MapStatistic(
        "splithalf",
        "Split-half reliability: correlation across repeated images of two half-averages of their responses",
        "Pearson r (-1 to 1)",
        scope="noise ceiling",
    ),
    MapStatistic(
        "rdiff",
        "Mean test-set Pearson r of the contrast's A spaces minus that of its B spaces",
        "difference of Pearson r",
        scope="contrast",
    ),
    MapStatistic(
        "rdifflow",
        "Lower end of the percentile bootstrap interval of rdiff (level: Contrast.CILevel)",
        "difference of Pearson r",
        scope="contrast",
    ),
    MapStatistic(
        "rdiffhigh",
        "Upper end of the percentile bootstrap interval of rdiff (level: Contrast.CILevel)",
        "difference of Pearson r",
        scope="contrast",
    ),
    MapStatistic(
        "jointr",
        "test-set Pearson r of the joint banded ridge model",
        "Pearson r",
        scope="variance partitioning",
        own_description=True,
    ),
    MapStatistic(
        "jointrsquared",
        "test-set R-squared of the joint banded ridge model",
        "fraction of variance",
        scope="variance partitioning",
        own_description=True,
    ),
    MapStatistic(
        "sharedrsquared",
        "shared R-squared: joint R-squared minus the sum of every set's unique R-squared",
        "fraction of variance",
        scope="variance partitioning",
        own_description=True,
    ),
    MapStatistic(
        "uniquersquared",
        "unique R-squared of a set: joint R-squared minus that of the model without the set",
        "fraction of variance",
        scope="variance partitioning",
        own_description=True,
        per_set=True,
    ),
    MapStatistic(
        "uniquep",
        "one-sided p that the joint model predicts better than the model without the set",
        "probability",
        scope="variance partitioning",
        own_description=True,
        per_set=True,
    ),
    MapStatistic(
        "uniqueq",
        "Benjamini-Hochberg q of uniquep<set> over the mask voxels",
        "probability",
        scope="variance partitioning",
        own_description=True,
        per_set=True,
    ),
    MapStatistic(
        "splitrsquared",
        "product-measure share of a set in the joint R-squared",
        "fraction of variance",
        scope="variance partitioning",
        own_description=True,
        per_set=True,
    ),
):
    STATISTICS.register(_entry)


def description(stat: str | None, sidecar: Mapping[str, Any] | None = None) -> str:
    """The sidecar ``Description`` of a ``stat-`` value (``""`` for one not registered under that exact name).

    ``sidecar``: the map's other keys; a map of two-sided p-values (``PValueSides`` two-sided) is described as such.
    """
    if stat is None or stat not in STATISTICS or STATISTICS[stat].own_description:
        return ""
    entry = STATISTICS[stat]
    if entry.two_sided_description and str((sidecar or {}).get("PValueSides", "")).startswith("two-sided"):
        return entry.two_sided_description
    return entry.description


def is_discrete(stat: str | None) -> bool:
    """Whether a ``stat-`` value's maps hold values on a grid (``alpha``)."""
    return stat is not None and stat in STATISTICS and STATISTICS[stat].discrete


def per_space_statistics() -> list[MapStatistic]:
    """The statistics written for every feature space from its fit, in registration order."""
    return [s for s in STATISTICS if s.scope == PER_SPACE and s.source is not None]


def shown_statistics() -> list[MapStatistic]:
    """The per-space statistics the participant report shows, in registration order."""
    return [s for s in per_space_statistics() if s.display is not None]


def methods_sentences(written: Iterable[str]) -> list[str]:
    """The methods text's sentences of the statistics among ``written`` (``stat-`` values), with their citations."""
    names = set(written)
    return [
        " ".join([s.methods, *(f"[@{key}]" for key in s.citations)]).rstrip()
        for s in STATISTICS
        if s.methods and s.name in names
    ]


def markdown_table() -> str:
    """The table of ``docs/outputs.md``: every statistic, its scope, units and description (MyST Markdown)."""
    lines = ["| `stat-` | written by | units | what it holds |", "|---|---|---|---|"]
    for s in STATISTICS:
        text = s.description.replace("<", "&lt;")  # ``uniquep<set>``: not an HTML tag
        lines.append(f"| `{s.written_name}` | {s.scope} | {s.units} | {text} |")
    return "\n".join(lines) + "\n"
