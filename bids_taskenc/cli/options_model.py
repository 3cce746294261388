"""Options of the command line, part 2: the encoding models (split, CV, statistics, contrasts, partitionings) and
the group level."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..encoding.alphas import ALPHA_GRIDS
from ..encoding.options import CV_SCORES, P_VALUE_SIDES
from ..group.options import (
    DEFAULT_GROUP_PERMUTATIONS,
    DEFAULT_N_BOOTSTRAP,
    DEFAULT_TOP_K,
    DEFAULT_TREE_BOOTSTRAP,
    TREE_BOOTSTRAPS,
)
from ..workflow.settings import (
    COMMAND_LINE_PRECISIONS,
    CONTRAST_P_METHODS,
    CV_SCHEMES,
    TEST_SPLITS,
    ComparisonSettings,
    FitSettings,
)
from .choices import choices_help, default_of


def _split_options(enc) -> None:
    """Options: the held-out test set (docs/statistics.md)."""
    enc.add_argument(
        "--test-fraction",
        type=float,
        default=default_of(FitSettings, "test_fraction"),
        help="fraction of images held out for testing",
    )
    enc.add_argument(
        "--test-split",
        choices=list(TEST_SPLITS),
        default=default_of(FitSettings, "test_split"),
        help="what the held-out test set is drawn by: images at random (BOLD5000's random order), or whole runs "
        "or sessions (each image in the run/session of its first showing), needed for blocked or temporally "
        "structured designs; with run/session, --n-permutations shifts predictions circularly within each "
        "held-out run/session (docs/statistics.md)",
    )


def add_encoding_options(p: argparse.ArgumentParser) -> None:
    """Options: the encoding models, contrasts and partitionings."""
    enc = p.add_argument_group("encoding models")
    enc.add_argument(
        "--cv-folds",
        type=int,
        default=default_of(FitSettings, "cv_folds"),
        help="k of the k-fold CV choosing each voxel's alpha",
    )
    enc.add_argument(
        "--alphas",
        nargs="+",
        type=float,
        default=default_of(FitSettings, "alphas"),
        metavar="A",
        help="ridge regularisation grid",
    )
    _split_options(enc)
    enc.add_argument(
        "--cv-score",
        choices=list(CV_SCORES),
        default=default_of(FitSettings, "cv_score"),
        help="score that chooses each voxel's alpha: r2 = mean validation R² over the folds (as mean squared "
        "error; default); r = Pearson r, which ignores the predictions' scale and biases the test R² of "
        "unpredictable voxels downward (docs/statistics.md); negmse = negative mean squared error (the paper's)",
    )
    enc.add_argument(
        "--cv-scheme",
        choices=list(CV_SCHEMES),
        default=default_of(FitSettings, "cv_scheme"),
        help="folds of the alpha search: shuffled k-fold (--cv-folds), leave-one-session-out "
        "(each image belongs to the session of its first showing), or split: one random validation split "
        "holding out --test-fraction of the training images (the paper's)",
    )
    enc.add_argument(
        "--no-standardize",
        dest="standardize",
        action="store_false",
        help="only centre the features (default: z-score them with training statistics)",
    )
    enc.add_argument(
        "--save-weights",
        action="store_true",
        help="also write each feature space's ridge weights (sub-X/func/..._weights.npz; large)",
    )
    enc.add_argument(
        "--precision",
        choices=list(COMMAND_LINE_PRECISIONS),
        default=default_of(FitSettings, "precision"),
        help="fast = TF32 matrix products on CUDA, float32 eigendecompositions in banded ridge, and the Taskonomy "
        "encoders in bf16 on a CPU with native bf16 (AVX512-BF16, AMX); on CUDA the encoders run in bf16 in both "
        "modes (the sidecars record the precision used)",
    )
    enc.add_argument(
        "--n-permutations",
        type=int,
        default=default_of(FitSettings, "n_permutations"),
        help="permutation p-values with N permutations (0: analytic t-test p)",
    )
    enc.add_argument(
        "--fdr-alpha",
        type=float,
        default=None,
        help="FDR level for thresholds (default 0.05; at group level, default: the level each "
        "participant map was made with, from its sidecar)",
    )
    enc.add_argument(
        "--mem-gb", type=float, metavar="GB", help="deprecated: use --mem (GB here; --mem 16GB is the same budget)"
    )
    _comparison_options(enc)
    _fit_choice_options(enc)


def _comparison_options(enc) -> None:
    """Options: the 3D-vs-2D contrasts and the variance partitionings."""
    enc.add_argument(
        "--contrast-bootstrap",
        type=int,
        default=default_of(ComparisonSettings, "contrast_bootstrap"),
        metavar="N",
        help="bootstrap resamples of the test images for the 3D-vs-2D contrasts' confidence-interval "
        "maps (and for --contrast-p bootstrap); 0: no contrast maps at all",
    )
    enc.add_argument(
        "--contrast-p",
        choices=list(CONTRAST_P_METHODS),
        default=default_of(ComparisonSettings, "contrast_p"),
        help="p of the contrast maps: analytic = Williams' t for a pair of spaces, its "
        "normal-theory t for group means (continuous); bootstrap = percentile bootstrap (floor "
        "2/(N+1), too coarse for FDR over many voxels)",
    )
    enc.add_argument(
        "--variance-partitioning",
        nargs="+",
        action="append",
        metavar="SET",
        help="variance partitioning between 2 or 3 sets of features with banded ridge (repeat for "
        "more); a SET is a feature space, spaces joined with '+', or group:3D / group:2D / "
        "group:semantic / group:other (this run's spaces of that group)",
    )


def _fit_choice_options(enc) -> None:
    """Options: the fit's choices that ``--preset paper`` sets besides the older ones (docs/paper.md)."""
    enc.add_argument(
        "--alpha-grid",
        choices=list(ALPHA_GRIDS),
        default=default_of(FitSettings, "alpha_grid"),
        help="which alphas the CV searches: " + choices_help(ALPHA_GRIDS),
    )
    enc.add_argument(
        "--standardize",
        dest="standardize",
        action="store_true",
        default=default_of(FitSettings, "standardize"),
        help="z-score the features with training statistics (the default; overrides a preset's centring)",
    )
    enc.add_argument(
        "--p-sides",
        choices=list(P_VALUE_SIDES),
        default=default_of(FitSettings, "p_sides"),
        help="alternative of the p-values of r (analytic and permutation): " + choices_help(P_VALUE_SIDES),
    )


def add_group_options(p: argparse.ArgumentParser) -> None:
    """Options: the group level."""
    grp = p.add_argument_group("group level")
    grp.add_argument(
        "--reference-affinities",
        type=Path,
        metavar="FILE",
        help="Taskonomy transfer affinities (pickle, CSV or TSV) instead of the table bundled with the package "
        "(first-order entries of Taskonomy's all_affinities.pkl, MIT)",
    )
    grp.add_argument(
        "--n-bootstrap", type=int, default=DEFAULT_N_BOOTSTRAP, help="bootstrap resamples for tree support"
    )
    grp.add_argument(
        "--tree-bootstrap",
        choices=list(TREE_BOOTSTRAPS),
        default=DEFAULT_TREE_BOOTSTRAP,
        help="resampling for tree support: auto (default) = participant-t with >= 3 participants (calibrated "
        "support), else block (descriptive support); block = spatial boxes of each participant's voxels; "
        "participant = participants with replacement; participant-t = the mean similarity's Student-t "
        "distribution over participants (both need >= 3 participants)",
    )
    grp.add_argument(
        "--bootstrap-block-mm",
        type=float,
        metavar="MM",
        help="edge of the block bootstrap's boxes in mm (default: where the maps' autocorrelation falls to 0.1)",
    )
    grp.add_argument(
        "--group-permutations",
        type=int,
        default=DEFAULT_GROUP_PERMUTATIONS,
        metavar="N",
        help="permutations for the Mantel and consistency p-values (0: none)",
    )
    grp.add_argument(
        "--top-k", type=int, default=DEFAULT_TOP_K, metavar="K", help="neighbours per task in the graph's top-k table"
    )
    grp.add_argument(
        "--allow-one-participant",
        action="store_true",
        help="run the group level over one participant's outputs (its similarity matrix and tree alone; no "
        "consistency across participants, no group maps); without it one participant is an error",
    )
    grp.add_argument(
        "--unthresholded", action="store_true", help="similarity of the raw r maps instead of the FDR-thresholded ones"
    )
