"""--preset paper: every choice of Wang et al.'s code in one place, applied below the user's own options."""

from __future__ import annotations

import dataclasses

import pytest

from bids_taskenc.cli.parser import parse_args
from bids_taskenc.cli.settings import participant_settings, preset_defaults
from bids_taskenc.errors import InvalidSettingError, UsageError
from bids_taskenc.workflow.presets import PRESETS, preset_overrides, preset_record, preset_settings
from bids_taskenc.workflow.settings import ParticipantSettings

PAPER = PRESETS["paper"].values

#: What the paper's code does (ariaaay/NeuralTaskonomy), independently of the preset's table.
EXPECTED = {
    ("responses", "model"): "travg",
    ("responses", "response_trs"): (3, 4),
    ("responses", "response_zscore"): "trials",
    ("responses", "repeats"): "drop-repeats",
    ("fit", "test_fraction"): 0.15,
    ("fit", "cv_scheme"): "split",
    ("fit", "alpha_grid"): "paper",
    ("fit", "standardize"): False,
    ("fit", "cv_score"): "negmse",
    ("fit", "p_sides"): "two-sided",
    ("fit", "n_permutations"): 0,
    ("fit", "fdr_alpha"): 0.05,
}


def _get(settings, section, field):
    return getattr(getattr(settings, section), field)


def test_preset_sets_every_choice_of_the_paper():
    assert {tuple(k.split(".")) for k in PAPER} == set(EXPECTED)
    s = preset_settings("paper")
    assert s.preset == "paper"
    for (section, field), value in EXPECTED.items():
        assert _get(s, section, field) == value, (section, field)
    assert preset_overrides(s) == {}
    # the choices that make it differ from our defaults are all there
    defaults = ParticipantSettings()
    differ = {k for k in EXPECTED if _get(defaults, *k) != EXPECTED[k]}
    assert differ == {
        ("responses", "response_zscore"),
        ("responses", "repeats"),
        ("fit", "cv_scheme"),
        ("fit", "alpha_grid"),
        ("fit", "standardize"),
        ("fit", "cv_score"),
        ("fit", "p_sides"),
    }


def test_command_line_preset_sets_every_choice_and_the_user_wins():
    base = ["/b", "/o", "participant"]
    s = participant_settings(parse_args([*base, "--preset", "paper"]))
    for (section, field), value in EXPECTED.items():
        assert _get(s, section, field) == value, (section, field)
    s = participant_settings(
        parse_args([*base, "--preset", "paper", "--p-sides", "one-sided", "--standardize", "--cv-scheme", "kfold"])
    )
    assert (s.fit.p_sides, s.fit.standardize, s.fit.cv_scheme) == ("one-sided", True, "kfold")
    assert s.fit.cv_score == "negmse" and s.fit.alpha_grid == "paper" and s.responses.repeats == "drop-repeats"
    assert preset_overrides(s) == {
        "fit.cv_scheme": {"Preset": "split", "Used": "kfold"},
        "fit.standardize": {"Preset": False, "Used": True},
        "fit.p_sides": {"Preset": "two-sided", "Used": "one-sided"},
    }
    # without a preset nothing changes
    plain = participant_settings(parse_args(base))
    assert plain == dataclasses.replace(ParticipantSettings(), outputs=plain.outputs, fit=plain.fit)
    assert plain.preset is None and plain.fit.alpha_grid == "fixed" and plain.responses.repeats == "average"


def test_config_file_is_above_the_preset_and_below_the_command_line(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('preset = "paper"\ncv_score = "r2"\nrepeats = "first"\n')
    s = participant_settings(parse_args(["/b", "/o", "participant", "--config", str(config), "--repeats", "average"]))
    assert s.preset == "paper" and s.fit.cv_score == "r2" and s.responses.repeats == "average"
    assert s.fit.alpha_grid == "paper"
    record = preset_record(s)
    assert record["Preset"] == "paper" and record["PresetSettings"]["fit.cv_score"] == "negmse"
    assert set(record["PresetOverrides"]) == {"fit.cv_score", "responses.repeats"}


def test_group_level_ignores_the_preset():
    args = parse_args(["/b", "/o", "group", "--preset", "paper"])
    assert args.fdr_alpha is None and args.cv_score != "negmse"


def test_preset_defaults_name_real_options():
    dests = preset_defaults("paper")
    assert dests["responses"] == "travg" and dests["response_trs"] == [3, 4] and dests["standardize"] is False
    args = vars(parse_args(["/b", "/o", "participant"]))
    assert set(dests) <= set(args)


def test_bad_values_are_refused():
    with pytest.raises(UsageError):
        parse_args(["/b", "/o", "participant", "--preset", "nature"])
    with pytest.raises(InvalidSettingError, match="ParticipantSettings.preset"):
        ParticipantSettings(preset="nature")
    with pytest.raises(InvalidSettingError, match="FitSettings.alpha_grid"):
        preset_settings("paper", fit={"alpha_grid": "log"})
    with pytest.raises(InvalidSettingError, match="must be run unless the responses are travg"):
        preset_settings("paper", responses={"model": "lsa"})
    with pytest.raises(ValueError, match="preset must be one of"):
        preset_settings("nature")
    assert ParticipantSettings.from_dict(preset_settings("paper").to_dict()) == preset_settings("paper")
