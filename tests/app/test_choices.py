"""Choices and defaults are defined once: the command line reads them from the settings and the layers' option
modules, and the settings refuse a value outside them with one message naming the setting and the choices."""

from __future__ import annotations

import pytest

from bids_taskenc.cli.parser import build_parser
from bids_taskenc.errors import EXIT_USAGE, InvalidSettingError
from bids_taskenc.responses.options import HRF_MODELS
from bids_taskenc.responses.registry import REGISTRY as RESPONSE_MODELS
from bids_taskenc.workflow import settings as S

#: option dest -> (settings class, field, the choices the settings accept)
CHOICES = {
    "responses": (S.ResponseSettings, "model", RESPONSE_MODELS.names()),
    "hrf_model": (S.ResponseSettings, "hrf_model", tuple(HRF_MODELS)),
    "lsa_zscore": (S.ResponseSettings, "lsa_zscore", S.LSA_ZSCORE_UNITS),
    "repeats": (S.ResponseSettings, "repeats", tuple(S.REPEATS)),
    "response_zscore": (S.ResponseSettings, "response_zscore", tuple(S.ZSCORING)),
    "alpha_grid": (S.FitSettings, "alpha_grid", tuple(S.ALPHA_GRIDS)),
    "cv_score": (S.FitSettings, "cv_score", S.CV_SCORES),
    "cv_scheme": (S.FitSettings, "cv_scheme", S.CV_SCHEMES),
    "test_split": (S.FitSettings, "test_split", S.TEST_SPLITS),
    "precision": (S.FitSettings, "precision", S.COMMAND_LINE_PRECISIONS),
    "p_sides": (S.FitSettings, "p_sides", tuple(S.P_VALUE_SIDES)),
    "contrast_p": (S.ComparisonSettings, "contrast_p", S.CONTRAST_P_METHODS),
    "device": (S.ResourceSettings, "device", S.DEVICES),
}


def _actions():
    return {a.dest: a for a in build_parser()._actions}


@pytest.mark.parametrize("dest", sorted(CHOICES))
def test_the_parser_offers_the_settings_choices_and_default(dest):
    cls, name, choices = CHOICES[dest]
    action = _actions()[dest]
    assert tuple(action.choices) == tuple(choices)
    assert action.default == getattr(cls(), name)


def test_every_default_of_the_parser_is_the_settings_default():
    """Options whose value is a setting start from the setting's default (a notebook and the command line agree)."""
    from bids_taskenc.cli.settings import option_of

    actions = _actions()
    checked = 0
    for cls in (S.ResponseSettings, S.FitSettings, S.ComparisonSettings, S.OutputSettings, S.ResourceSettings):
        default = cls()
        for field in cls.__dataclass_fields__:
            dest = option_of(f"{cls.__name__}.{field}")[2:].replace("-", "_")
            dest = {"mem": "mem", "stimuli_dirs": "stimuli_dir"}.get(dest, dest)
            action = actions.get(dest)
            if action is None or action.default is None or dest in ("fdr_alpha", "mem", "progress"):
                continue
            value = action.default
            value = tuple(value) if isinstance(value, list) else value
            assert value == getattr(default, field), f"--{dest.replace('_', '-')} vs {cls.__name__}.{field}"
            checked += 1
    assert checked >= 20, checked


@pytest.mark.parametrize("dest", sorted(CHOICES))
def test_a_value_outside_the_choices_is_one_clear_error(dest):
    cls, name, choices = CHOICES[dest]
    with pytest.raises(InvalidSettingError) as info:
        cls(**{name: "bogus"})
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}.{name} must be one of ") and "(got 'bogus')" in message, message
    assert all(c in message for c in choices), message
    assert info.value.exit_code == EXIT_USAGE


def test_the_docs_name_only_choices_the_parser_offers():
    """``--option a|b`` in the docs' prose: every value is one of the option's choices (docs that drift are caught)."""
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    actions = {opt: a for a in build_parser()._actions for opt in a.option_strings}
    seen = 0
    for page in sorted(docs.glob("*.md")):
        for option, values in re.findall(r"`(--[a-z-]+) ([a-z0-9-]+(?:\|[a-z0-9-]+)+)", page.read_text()):
            if option not in actions:
                continue  # another program's option (the benchmarks' --job)
            assert set(values.split("|")) <= set(actions[option].choices), f"{page.name}: {option} {values}"
            seen += 1
    assert seen >= 4, seen
