"""Command-line surface: no abbreviations, help text that reads right."""

import pytest

from bids_taskenc.cli.parser import build_parser
from bids_taskenc.errors import UsageError


def test_abbreviated_options_are_refused():
    """argparse's prefix matching read ``--mem 8000`` as ``--mem-gb 8000`` (8 TB)."""
    with pytest.raises(UsageError, match="unrecognized arguments: --mem-g 8"):
        build_parser().parse_args(["bids", "out", "participant", "--mem-g", "8"])


def test_help_gives_defaults_but_not_for_switches():
    text = build_parser().format_help()
    flat = " ".join(text.split())
    assert "--no-standardize only centre the features (default: z-score them with training statistics)" in flat
    assert "(default: True)" not in flat and "(default: False)" not in flat
    assert "where featurization and ridge run" in flat
    assert "(default: 0.15)" in flat  # valued options keep their default


def test_repeatable_option_in_config_and_command_line_wins(tmp_path):
    from bids_taskenc.cli.parser import parse_args

    config = tmp_path / "c.toml"
    config.write_text('variance_partitioning = [["group:3D", "group:2D"], ["a", "b", "c"]]\n')
    base = [str(tmp_path), str(tmp_path / "o"), "participant", "--config", str(config)]
    assert parse_args(base).variance_partitioning == [["group:3D", "group:2D"], ["a", "b", "c"]]
    # the command line replaces the config's uses instead of adding to them
    cli = parse_args([*base, "--variance-partitioning", "x", "y"])
    assert cli.variance_partitioning == [["x", "y"]]
    config.write_text('variance_partitioning = ["group:3D", "group:2D"]\n')
    with pytest.raises(UsageError, match="a list of lists"):
        parse_args(base)
