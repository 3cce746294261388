"""The workflow's settings: frozen, the command line's defaults, a JSON round trip, and the cache keys they make."""

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bids_taskenc.cli.parser import parse_args
from bids_taskenc.cli.settings import participant_settings
from bids_taskenc.errors import InvalidSettingError, UsageError
from bids_taskenc.workflow.cache import WorkCache, fit_key, response_key
from bids_taskenc.workflow.group import GroupSettings
from bids_taskenc.workflow.settings import (
    ComparisonSettings,
    FeatureSettings,
    FitSettings,
    OutputSettings,
    ParticipantSettings,
    ResourceSettings,
    ResponseSettings,
)


def test_settings_are_frozen_and_hashable():
    s = ParticipantSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.fit.cv_folds = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.fit = FitSettings()
    assert hash(s) == hash(ParticipantSettings())


def test_lists_and_strings_become_tuples_and_paths():
    s = FeatureSettings(spaces=["user:a", "user:b"], features_dir="feats")
    assert s.spaces == ("user:a", "user:b") and s.features_dir == Path("feats")
    c = ParticipantSettings().comparisons.replace(partitionings=[["group:3D", "group:2D"]])
    assert c.partitionings == (("group:3D", "group:2D"),)
    assert ResponseSettings(response_trs=[2, 3]).response_trs == (2, 3)


def test_one_string_for_a_tuple_setting_is_one_value_not_its_characters():
    assert FeatureSettings(spaces="user:edge2da").spaces == ("user:edge2da",)
    assert ParticipantSettings().inputs.replace(derivatives="fmriprep").derivatives == (Path("fmriprep"),)
    assert GroupSettings(participants="CSI1").participants == ("CSI1",)  # was ("C", "S", "I", "1")


def test_command_line_defaults_are_the_settings_defaults():
    args = parse_args(["bids", "out", "participant"])
    assert participant_settings(args) == ParticipantSettings()


def test_a_toml_config_of_default_values_gives_the_defaults(tmp_path):
    config = tmp_path / "defaults.toml"
    config.write_text(
        'cv_folds = 7\nresponses = "travg"\nresponse_trs = [3, 4]\ntest_fraction = 0.15\n'
        "fdr_alpha = 0.05\ncontrast_bootstrap = 1000\n"
    )
    assert (
        participant_settings(parse_args(["bids", "out", "participant", "--config", str(config)]))
        == ParticipantSettings()
    )


def test_toml_config_gives_the_same_settings_as_the_command_line(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        'cv_folds = 4\nalphas = [1, 10]\nfeature_spaces = ["user:a"]\nsave_weights = true\n'
        'variance_partitioning = [["group:3D", "group:2D"]]\nmem = "2GB"\n'
    )
    from_toml = participant_settings(parse_args(["bids", "out", "participant", "--config", str(config)]))
    from_flags = participant_settings(
        parse_args(
            [
                "bids",
                "out",
                "participant",
                "--cv-folds",
                "4",
                "--alphas",
                "1",
                "10",
                "--feature-spaces",
                "user:a",
                "--save-weights",
                "--variance-partitioning",
                "group:3D",
                "group:2D",
                "--mem",
                "2GB",
            ]
        )
    )
    assert from_toml == from_flags
    assert from_toml.fit.cv_folds == 4 and from_toml.fit.alphas == (1.0, 10.0)
    assert from_toml.resources.mem_gb == 2.0 and from_toml.outputs.save_weights


def test_to_dict_is_json_and_round_trips():
    s = ParticipantSettings(
        features=FeatureSettings(spaces=("user:edge2da",), features_dir=Path("/data/features")),
        responses=ResponseSettings(confounds=("csf",), mask=Path("m.nii.gz")),
        fit=FitSettings(alphas=(1.0, 100.0), seed=3),
        resources=ResourceSettings(mem_mb=1500.0),
    )
    d = json.loads(json.dumps(s.to_dict()))
    assert d["features"]["features_dir"] == "/data/features" and d["fit"]["alphas"] == [1.0, 100.0]
    back = ParticipantSettings.from_dict(d)
    assert back == s and isinstance(back.responses.mask, Path)
    with pytest.raises(ValueError, match="unknown"):
        FitSettings.from_dict({"folds": 3})


def _key_inputs():
    run = SimpleNamespace(
        bold=None, mask=None, confounds=None, raw=SimpleNamespace(events=None, repetition_time=2.0), start_time=0.0
    )
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    return [run], X


def _keys(settings):
    pre, X = _key_inputs()
    rkey = response_key(settings, pre, [])
    return WorkCache.key(rkey), WorkCache.key(fit_key(settings, rkey, X, "cpu", False))


def test_cache_keys_follow_fit_and_response_settings_not_output_only_ones(tmp_path):
    base = ParticipantSettings()
    r0, f0 = _keys(base)
    # a fit setting: a new fit key, the same responses
    r1, f1 = _keys(base.replace(fit=base.fit.replace(cv_folds=3)))
    assert r1 == r0 and f1 != f0
    assert _keys(base.replace(fit=base.fit.replace(fdr_alpha=0.01)))[1] != f0
    # a response setting changes both (the fit key holds the responses key)
    r2, f2 = _keys(base.replace(responses=base.responses.replace(response_trs=(2, 3))))
    assert r2 != r0 and f2 != f0
    # output-only and resource settings change neither
    for changed in (
        base.replace(outputs=OutputSettings(save_features=True, progress=True, work_dir=tmp_path)),
        base.replace(resources=ResourceSettings(nprocs=7, mem_mb=1000.0)),
        base.replace(comparisons=base.comparisons.replace(contrast_bootstrap=10)),
    ):
        assert _keys(changed) == (r0, f0)
    # the weights are part of what a fit returns
    assert _keys(base.replace(outputs=OutputSettings(save_weights=True)))[1] != f0


@pytest.mark.parametrize(
    "make, setting",
    [
        (lambda: ResponseSettings(model="lss"), "ResponseSettings.model"),  # was read as travg
        (lambda: ResponseSettings(model="LSA"), "ResponseSettings.model"),
        (lambda: ResponseSettings(response_trs=()), "ResponseSettings.response_trs"),
        (lambda: ResponseSettings(response_trs=(3, -1)), "ResponseSettings.response_trs"),
        (lambda: ResponseSettings(response_trs=(3.5,)), "ResponseSettings.response_trs"),
        (lambda: ResponseSettings(high_pass=0.0), "ResponseSettings.high_pass"),
        (lambda: ResponseSettings(model="betas"), "ResponseSettings.betas_dir"),
        (lambda: FitSettings(cv_folds=1), "FitSettings.cv_folds"),
        (lambda: FitSettings(cv_folds=True), "FitSettings.cv_folds"),
        (lambda: FitSettings(test_fraction=1.0), "FitSettings.test_fraction"),
        (lambda: FitSettings(fdr_alpha=5), "FitSettings.fdr_alpha"),  # was refused only inside the first fit
        (lambda: FitSettings(fdr_alpha=float("nan")), "FitSettings.fdr_alpha"),
        (lambda: FitSettings(alphas=()), "FitSettings.alphas"),
        (lambda: FitSettings(alphas=(1.0, float("inf"))), "FitSettings.alphas"),
        (lambda: FitSettings(alphas=(0.0, 1.0)), "FitSettings.alphas"),
        (lambda: FitSettings(cv_score="R2"), "FitSettings.cv_score"),
        (lambda: FitSettings(cv_scheme="sessions"), "FitSettings.cv_scheme"),
        (lambda: FitSettings(precision="fp16"), "FitSettings.precision"),
        (lambda: FitSettings(n_permutations=-1), "FitSettings.n_permutations"),
        (lambda: FitSettings(seed=-1), "FitSettings.seed"),
        (lambda: ComparisonSettings(contrast_p="bootstap"), "ComparisonSettings.contrast_p"),
        (lambda: ComparisonSettings(contrast_bootstrap=-5), "ComparisonSettings.contrast_bootstrap"),
        (lambda: ComparisonSettings(partitionings=[["group:3D"]]), "ComparisonSettings.partitionings"),
        (lambda: ComparisonSettings(partitionings=[["a", "b", "c", "d"]]), "ComparisonSettings.partitionings"),
        (lambda: ResourceSettings(device="gpu"), "ResourceSettings.device"),
        (lambda: ResourceSettings(nprocs=0), "ResourceSettings.nprocs"),
        (lambda: ResourceSettings(mem_mb=-1.0), "ResourceSettings.mem_mb"),
        (lambda: GroupSettings(fdr_alpha=0.0), "GroupSettings.fdr_alpha"),
        (lambda: GroupSettings(tree_bootstrap="blocks"), "GroupSettings.tree_bootstrap"),
        (lambda: GroupSettings(bootstrap_block_mm=-2.0), "GroupSettings.bootstrap_block_mm"),
        (lambda: GroupSettings(n_bootstrap=-1), "GroupSettings.n_bootstrap"),
        (lambda: GroupSettings(top_k=0), "GroupSettings.top_k"),
    ],
)
def test_a_value_out_of_range_is_refused_naming_the_setting(make, setting):
    """The Python API's settings check what the command line checks: a typo is an error, never another choice."""
    with pytest.raises(InvalidSettingError, match=rf"^{setting} .*\(got ") as info:
        make()
    assert isinstance(info.value, ValueError) and info.value.setting == setting


def test_edge_values_are_accepted():
    FitSettings(cv_folds=2, test_fraction=0.5, alphas=(1e-3,), precision="double", cv_score="r2", seed=0)
    ResponseSettings(model="betas", betas_dir="betas", response_trs=(0,))
    ResourceSettings(device="cuda:1", nprocs=1, omp_nthreads=1, mem_mb=1.0)
    GroupSettings(fdr_alpha=None, bootstrap_block_mm=None, n_bootstrap=0, tree_bootstrap="participant")
    FitSettings(cv_folds=np.int64(3), alphas=(np.float32(1.0),))  # numpy scalars from a notebook


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--cv-folds", "1"], "--cv-folds must be at least 2 (got 1)"),
        (["--test-fraction", "0"], "--test-fraction must be between 0 and 1 (got 0.0)"),
        (["--fdr-alpha", "1.5"], "--fdr-alpha must be between 0 and 1 (got 1.5)"),
        (["--alphas", "1", "-1"], "--alphas must be finite and positive"),
        (["--response-trs", "3", "-1"], "--response-trs must be whole TRs >= 0 after the onset"),
        (["--responses", "betas"], "--responses betas needs --betas-dir DIR"),
        (["--seed", "-1"], "--seed must be a whole number >= 0"),
        (["--top-k", "0"], "--top-k must be at least 1"),
        (["--group-permutations", "-1"], "--group-permutations must be a whole number >= 0"),
        (["--nprocs", "0"], "--nprocs must be at least 1"),
        (["--variance-partitioning", "group:3D"], "--variance-partitioning must each be 2 or 3 SETs"),
        (["--mem-gb", "inf"], "--mem-gb must be a positive number of gigabytes"),
    ],
)
@pytest.mark.parametrize("level", ["participant", "group"])
def test_the_command_line_names_the_option_of_a_refused_setting(flags, message, level):
    """At either level (the participant options are checked at the group level too, as before)."""
    with pytest.raises(UsageError) as info:
        parse_args(["bids", "out", level, *flags])
    assert str(info.value).startswith(message), str(info.value)


def test_a_refused_value_is_a_usage_error_before_a_missing_file(tmp_path):
    with pytest.raises(UsageError, match="--cv-folds"):
        parse_args(["bids", "out", "participant", "--cv-folds", "1", "--mask", str(tmp_path / "missing.nii.gz")])


def test_only_the_bad_partitioning_is_named():
    with pytest.raises(UsageError) as info:
        parse_args(["bids", "out", "participant", "--variance-partitioning", "a", "b", "--variance-partitioning", "c"])
    assert str(info.value).endswith("(got c)"), str(info.value)


def test_numbers_and_arrays_for_tuple_settings_become_tuples_of_python_numbers():
    assert ResponseSettings(response_trs=0).response_trs == (0,)
    assert FitSettings(alphas=100.0).alphas == (100.0,)
    fit = FitSettings(alphas=np.logspace(0, 2, 3), cv_folds=np.int64(3))
    assert fit.alphas == (1.0, 10.0, 100.0) and type(fit.alphas[0]) is float and type(fit.cv_folds) is int
    assert ResponseSettings(response_trs=np.array([3, 4])).response_trs == (3, 4)
    json.dumps(fit.to_dict())  # numpy scalars would not serialise
