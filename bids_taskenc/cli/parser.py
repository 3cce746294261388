"""The BIDS-App command line: ``bids_taskenc bids_dir output_dir {participant,group} [options]``.

Options can also come from a TOML file (``--config``, :mod:`.config`): keys are the long
option names with ``_`` or ``-`` (``cv_folds = 5``); the command line wins. The options are
added by :mod:`.options_data`, :mod:`.options_model` and :mod:`.options_run`, their choices and
defaults read from the settings and the layers' option modules (:mod:`.choices`).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..__about__ import __version__
from ..core.fdr import DEFAULT_FDR_LEVEL
from ..errors import InputMissingError, UsageError
from .config import config_defaults
from .options_data import (
    add_feature_options,
    add_input_options,
    add_preset_options,
    add_response_options,
    add_selection_options,
)
from .options_model import add_encoding_options, add_group_options
from .options_run import add_cluster_options, add_report_options, add_running_options


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, except for switches, whose "(default: True)" reads as the opposite of what they do,
    and options without a default value, whose help says what happens instead of "(default: None)"."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` (exit 64) instead of exiting with 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="bids_taskenc",
        description="Voxelwise encoding models of computer-vision task representations "
        "(Wang, Tarr & Wehbe 2019, Neural Taskonomy) as a BIDS-App.",
        formatter_class=_HelpFormatter,
        # "--mem 8000" must not silently become "--mem-gb 8000"
        allow_abbrev=False,
    )
    p.add_argument("bids_dir", type=Path, help="the input BIDS dataset")
    p.add_argument("output_dir", type=Path, help="where derivatives go (e.g. <bids_dir>/derivatives/bids_taskenc)")
    p.add_argument("analysis_level", choices=["participant", "group"], help="processing stage")
    p.add_argument("--version", action="version", version=f"bids_taskenc {__version__}")

    add_preset_options(p)
    add_selection_options(p)
    add_input_options(p)
    add_response_options(p)
    add_feature_options(p)
    add_encoding_options(p)
    add_group_options(p)
    add_running_options(p)
    add_report_options(p)
    add_cluster_options(p)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line, with ``--config`` values as defaults."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # --help and --version end here, before the settings (and their imports)
    from .settings import check_options, preset_defaults

    config = config_defaults(parser, args.config) if args.config is not None else {}
    preset = args.preset if args.preset is not None else config.get("preset")
    # a preset is of the participant level's settings; the group level reads what the participants recorded
    presetting = preset is not None and args.analysis_level == "participant"
    if presetting or config:
        # the preset's values are defaults below the config file's, which are below the command line's
        parser.set_defaults(**{**(preset_defaults(preset) if preset is not None and presetting else {}), **config})
        args = parser.parse_args(argv)
    if config:
        # argparse appends a repeatable option's uses to its default: the command line must replace them
        for action in parser._actions:
            if isinstance(action, argparse._AppendAction) and action.dest in config:
                given = parser.parse_args(argv, argparse.Namespace(**{action.dest: None}))
                if getattr(given, action.dest) is not None:
                    setattr(args, action.dest, getattr(given, action.dest))
    if args.fdr_alpha is None and args.analysis_level == "participant":
        args.fdr_alpha = DEFAULT_FDR_LEVEL
    if args.pycortex_subject:
        pairs = [v for v in args.pycortex_subject if "=" in v]
        if pairs and len(pairs) != len(args.pycortex_subject) or (not pairs and len(args.pycortex_subject) > 1):
            raise UsageError("--pycortex-subject takes one NAME, or LABEL=NAME pairs (one per participant)")
        if any(not a or not b for a, _, b in (v.partition("=") for v in pairs)):
            raise UsageError("--pycortex-subject: LABEL=NAME needs both a label and a name")
    if args.mem_gb is not None and not (math.isfinite(args.mem_gb) and args.mem_gb > 0):
        raise UsageError(f"--mem-gb must be a positive number of gigabytes (got {args.mem_gb})")
    if args.mem_gb is not None and args.mem is not None:
        raise UsageError("give --mem only (--mem-gb is its deprecated form)")
    args.mem_given_as = _mem_given_as(argv, args)
    if args.mem is not None:
        args.mem_gb = args.mem / 1000.0
    elif args.mem_gb is not None:
        args.mem = args.mem_gb * 1000.0

    check_options(args, argv)  # every value the settings hold is checked there, once (exit 64 before 66)
    for flag, value in (
        ("--mask", args.mask),
        ("--bids-filter-file", args.bids_filter_file),
        ("--reference-affinities", args.reference_affinities),
    ):
        if value is not None:
            _input_file(flag, value)
    for flag, value in (("--features-dir", args.features_dir), ("--betas-dir", args.betas_dir)):
        if value is not None and not value.is_dir():
            raise InputMissingError(f"{value}: {flag} folder does not exist")
    return args


def _mem_given_as(argv: list[str], args: argparse.Namespace) -> str | None:
    """How the memory ceiling was given, for messages: ``'--mem 500M'``, ``'--mem-gb 0.5'``, or the config file's
    ``'mem = "500M" (cfg.toml)'``; None without a ceiling. Read before ``--mem`` and ``--mem-gb`` are made one."""
    if args.mem is None and args.mem_gb is None:
        return None
    flags = ("--mem", "--mem-mb") if args.mem is not None else ("--mem-gb",)
    given = None
    for i, token in enumerate(argv):
        flag, eq, value = token.partition("=")
        if flag in flags:
            given = f"{flag} {value if eq else (argv[i + 1] if i + 1 < len(argv) else '')}"
    if given is not None:
        return given  # the last use wins, as in argparse
    value = args.mem if args.mem is not None else args.mem_gb
    key = "mem" if args.mem is not None else "mem_gb"
    return f"{key} = {value:g} ({args.config})" if args.config is not None else f"{flags[0]} {value:g}"


def _input_file(flag: str, path: Path) -> None:
    """An input file given by ``flag`` is there (exit 66 naming the flag), annexed content included."""
    from ..bids.files import missing_reason

    reason = missing_reason(path)
    if reason is not None:
        raise InputMissingError(f"{path}: {flag} file {reason}")
