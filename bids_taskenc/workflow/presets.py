"""Named bundles of settings: ``--preset paper`` makes every choice of Wang et al.'s (2019) code.

A preset is a set of values of the participant settings (``"fit.cv_score": "negmse"``), defined once here; the
command line applies it below the user's own options (``--preset paper --p-sides one-sided`` keeps the paper's
choices but the one-sided p), the settings record its name, and every sidecar records the preset, its values and
the settings that differ from them (:func:`preset_record`). docs/paper.md explains each difference.

    >>> s = preset_settings("paper", fit={"p_sides": "one-sided"})
    >>> s.preset, s.fit.cv_score, s.fit.alpha_grid, s.fit.p_sides
    ('paper', 'negmse', 'paper', 'one-sided')
    >>> preset_overrides(s)
    {'fit.p_sides': {'Preset': 'two-sided', 'Used': 'one-sided'}}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType

from .settings import ParticipantSettings, _to_json


@dataclass(frozen=True)
class Preset:
    """A named set of setting values (``"section.field" -> value``) and where they come from."""

    name: str
    description: str
    values: MappingProxyType


#: The paper's choices, as read in ariaaay/NeuralTaskonomy (``code/encodingmodel/encoding_model.py``
#: ``ridge_cv``, ``code/encodingmodel/ridge.py``, ``code/extract_cortical_voxels.py``,
#: ``code/featureprep/feature_prep.py``, ``code/run_significance_test.py``).
PAPER = Preset(
    name="paper",
    description="every choice of Wang, Tarr & Wehbe's (2019) code (ariaaay/NeuralTaskonomy)",
    values=MappingProxyType(
        {
            # volumes floor(onset/TR) + 3 and + 4 of each run z-scored over its trials, averaged (TRavg)
            "responses.model": "travg",
            "responses.response_trs": (3, 4),
            # each lag's volumes z-scored over the run's trials (zscore(d, axis=0) on the sampled volumes)
            "responses.response_zscore": "trials",
            # feature_prep: trials whose stimulus name starts with rep_ are left out
            "responses.repeats": "drop-repeats",
            # ridge_cv: train_test_split(test_size=0.15); ShuffleSplit(test_size=0.15) -> one validation split
            "fit.test_fraction": 0.15,
            "fit.cv_scheme": "split",
            # alphas = logspace(-tol, 1/2*log10(p) + tol, 100), tol = 8
            "fit.alpha_grid": "paper",
            # RidgeCVEstimator(..., scale_X=False): features centred, not scaled
            "fit.standardize": False,
            # scoring = -mse_loss(yhat, y)
            "fit.cv_score": "negmse",
            # pearsonr(y_test, yhat): two-sided p; run_significance_test: BH FDR (fdrcorrection) at 0.05
            "fit.p_sides": "two-sided",
            "fit.n_permutations": 0,
            "fit.fdr_alpha": 0.05,
        }
    ),
)

#: Preset name -> preset (the parser's ``--preset`` choices, the settings' check, the docs).
PRESETS = {PAPER.name: PAPER}


def _split(key: str) -> tuple[str, str]:
    section, _, name = key.partition(".")
    return section, name


def preset_settings(name: str, base: ParticipantSettings | None = None, **overrides: dict) -> ParticipantSettings:
    """``base`` (default: the defaults) with preset ``name``'s values, then ``overrides`` per section on top.

    ``overrides`` are dicts of fields by section, e.g. ``fit={"cv_folds": 5}``: the user's own choices win.
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")
    base = base or ParticipantSettings()
    changes: dict[str, dict] = {}
    for key, value in PRESETS[name].values.items():
        section, field = _split(key)
        changes.setdefault(section, {})[field] = value
    for section, fields in overrides.items():
        changes.setdefault(section, {}).update(fields)
    sections = {section: getattr(base, section).replace(**fields) for section, fields in changes.items()}
    return dataclasses.replace(base, preset=name, **sections)


def preset_overrides(settings: ParticipantSettings) -> dict:
    """The settings that differ from their preset's values: ``{"fit.p_sides": {"Preset": ..., "Used": ...}}``."""
    if settings.preset is None:
        return {}
    out = {}
    for key, value in PRESETS[settings.preset].values.items():
        section, field = _split(key)
        used = getattr(getattr(settings, section), field)
        if used != value:
            out[key] = {"Preset": _to_json(value), "Used": _to_json(used)}
    return out


def preset_record(settings: ParticipantSettings) -> dict:
    """The sidecar keys of a run's preset: ``Preset`` (its name, None without one), its values and the overrides."""
    if settings.preset is None:
        return {"Preset": None}
    preset = PRESETS[settings.preset]
    return {
        "Preset": preset.name,
        "PresetDescription": preset.description,
        "PresetSettings": {k: _to_json(v) for k, v in preset.values.items()},
        "PresetOverrides": preset_overrides(settings),
    }
