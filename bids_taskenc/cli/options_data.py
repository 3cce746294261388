"""Options of the command line, part 1: presets, which data, where the inputs are, responses, feature spaces."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..features.families import spaces_help
from ..responses.options import HRF_MODELS, LSA_ZSCORE_UNITS, REPEATS, ZSCORING
from ..responses.registry import REGISTRY as RESPONSE_MODELS
from ..workflow.presets import PRESETS
from ..workflow.settings import ResponseSettings
from .choices import choices_help, default_of


def add_preset_options(p: argparse.ArgumentParser) -> None:
    """Options: a named bundle of settings."""
    pre = p.add_argument_group("presets")
    pre.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="start from a named bundle of settings; options given on the command line or in --config win, and "
        "the sidecars record the preset and every setting that differs from it (docs/paper.md). "
        + choices_help({k: v.description for k, v in PRESETS.items()}),
    )


def add_selection_options(p: argparse.ArgumentParser) -> None:
    """Options: what data to use."""
    sel = p.add_argument_group("selecting data")
    sel.add_argument(
        "--participant-label",
        "--participant_label",
        nargs="+",
        metavar="LABEL",
        help="participants to process ('CSI1' or 'sub-CSI1'); default all",
    )
    sel.add_argument("--session-label", nargs="+", metavar="LABEL", help="sessions to use; default all")
    sel.add_argument(
        "--task-label", nargs="+", metavar="LABEL", help="tasks; default every task whose events name stimuli"
    )
    sel.add_argument(
        "--bids-filter-file",
        type=Path,
        metavar="FILE",
        help='JSON of pybids filters, as fMRIPrep: {"bold": {"session": ["01"]}}',
    )
    sel.add_argument("--skip-bids-validation", action="store_true", help="do not check BIDS file names")


def add_input_options(p: argparse.ArgumentParser) -> None:
    """Options: where the inputs are."""
    inp = p.add_argument_group("inputs")
    inp.add_argument(
        "--derivatives",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="preprocessed BOLD (fMRIPrep); default <bids_dir>/derivatives/fmriprep",
    )
    inp.add_argument("--space", help="output space of the preprocessed BOLD; default T1w when present")
    inp.add_argument(
        "--stimuli-dir",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="folders searched recursively for stimulus images; default <bids_dir>/stimuli",
    )
    inp.add_argument(
        "--roi-dir",
        type=Path,
        metavar="DIR",
        help="ROI masks (BOLD5000's sub-X_mask-LHPPA.nii.gz or BIDS desc-<roi>_mask); "
        "default <bids_dir>/derivatives/spm when present",
    )
    inp.add_argument("--mask", type=Path, metavar="FILE", help="restrict the analysis to this mask (NIfTI)")
    inp.add_argument(
        "--resample-mask",
        action="store_true",
        help="resample --mask (nearest neighbour) onto the BOLD grid when its grid differs "
        "(default: a mask on another grid is an error naming both grids)",
    )


def add_response_options(p: argparse.ArgumentParser) -> None:
    """Options: BOLD -> responses."""
    resp = p.add_argument_group("responses")
    resp.add_argument(
        "--responses",
        choices=list(RESPONSE_MODELS.names()),
        default=default_of(ResponseSettings, "model"),
        help=choices_help({m.name: m.description for m in RESPONSE_MODELS}) + " (see docs/responses.md)",
    )
    resp.add_argument(
        "--hrf-model",
        choices=list(HRF_MODELS),
        default=default_of(ResponseSettings, "hrf_model"),
        help="HRF of --responses lsa",
    )
    resp.add_argument(
        "--lsa-zscore",
        choices=list(LSA_ZSCORE_UNITS),
        default=default_of(ResponseSettings, "lsa_zscore"),
        help="--responses lsa: z-score each voxel's single-trial betas over the trials of their session (default, "
        "as GLMsingle and NSD) or of their run (about 37 trials in BOLD5000)",
    )
    resp.add_argument(
        "--high-pass",
        type=float,
        default=default_of(ResponseSettings, "high_pass"),
        metavar="HZ",
        help="cosine drift cutoff of --responses lsa",
    )
    resp.add_argument(
        "--betas-dir",
        type=Path,
        metavar="DIR",
        help="single-trial betas for --responses betas (layout: docs/responses.md)",
    )
    resp.add_argument(
        "--response-trs",
        nargs="+",
        type=int,
        default=default_of(ResponseSettings, "response_trs"),
        metavar="N",
        help="lags L (whole TRs >= 0): the volumes acquired nearest to onset + L*TR are averaged "
        "into a trial's response (docs/responses.md)",
    )
    resp.add_argument(
        "--confounds", nargs="+", metavar="COLUMN", help="fMRIPrep confound columns regressed out before z-scoring"
    )
    resp.add_argument(
        "--response-zscore",
        choices=list(ZSCORING),
        default=default_of(ResponseSettings, "response_zscore"),
        help="travg units: " + choices_help(ZSCORING),
    )
    resp.add_argument(
        "--repeats",
        choices=list(REPEATS),
        default=default_of(ResponseSettings, "repeats"),
        help="the response of an image shown more than once: " + choices_help(REPEATS),
    )


def add_feature_options(p: argparse.ArgumentParser) -> None:
    """Options: feature spaces."""
    feat = p.add_argument_group("features")
    feat.add_argument(
        "--feature-spaces",
        nargs="+",
        metavar="NAME",
        help=spaces_help(),
    )
    feat.add_argument(
        "--features-dir",
        type=Path,
        metavar="DIR",
        help="user-supplied feature spaces: <space>/features.npy + stimuli.tsv",
    )
    feat.add_argument(
        "--taskonomy-weights",
        type=Path,
        metavar="DIR",
        help="Taskonomy encoder weights store (env BIDS_TASKENC_MODELS)",
    )
    feat.add_argument("--offline", action="store_true", help="never download weights or reference files")
    feat.add_argument(
        "--save-features", action="store_true", help="also write the feature matrices to <output_dir>/features/"
    )
