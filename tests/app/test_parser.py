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
