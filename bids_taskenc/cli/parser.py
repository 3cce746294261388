"""The BIDS-App command line: ``bids_taskenc bids_dir output_dir {participant,group} [options]``.

Options can also come from a TOML file (``--config``): keys are the long
option names with ``_`` or ``-`` (``cv_folds = 5``); the command line wins.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from types import SimpleNamespace

from ..__about__ import __version__
from ..core.fdr import DEFAULT_FDR_LEVEL
from ..core.textfiles import UnreadableFileError, read_toml
from ..encoding.alphas import ALPHA_GRIDS
from ..encoding.options import CV_SCORES, DEFAULT_CV_SCORE, P_VALUE_SIDES
from ..encoding.options import DEFAULT_ALPHAS as ENCODING_ALPHAS
from ..errors import InputMissingError, UsageError
from ..features.families import spaces_help
from ..group.options import TREE_BOOTSTRAPS
from ..responses.options import DEFAULT_HRF_MODEL, DEFAULT_LSA_ZSCORE, HRF_MODELS, LSA_ZSCORE_UNITS, REPEATS, ZSCORING
from ..responses.registry import DEFAULT_RESPONSE_MODEL
from ..responses.registry import REGISTRY as RESPONSE_MODELS
from ..workflow.presets import PRESETS
from ..workflow.settings import CV_SCHEMES

DEFAULT_ALPHAS = [float(a) for a in ENCODING_ALPHAS]


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

    _preset_options(p)
    _selection_options(p)
    _input_options(p)
    _response_options(p)
    _feature_options(p)
    _encoding_options(p)
    _group_options(p)
    _running_options(p)
    _report_options(p)
    _cluster_options(p)
    return p


def _choices_help(registry: dict) -> str:
    """``name = what it does; ...`` of a registry of choices."""
    return "; ".join(f"{k} = {v}" for k, v in registry.items())


def _preset_options(p: argparse.ArgumentParser) -> None:
    """Options: a named bundle of settings."""
    pre = p.add_argument_group("presets")
    pre.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="start from a named bundle of settings; options given on the command line or in --config win, and "
        "the sidecars record the preset and every setting that differs from it (docs/paper.md). "
        + _choices_help({k: v.description for k, v in PRESETS.items()}),
    )


def _selection_options(p: argparse.ArgumentParser) -> None:
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


def _input_options(p: argparse.ArgumentParser) -> None:
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


def _response_options(p: argparse.ArgumentParser) -> None:
    """Options: BOLD -> responses."""
    resp = p.add_argument_group("responses")
    resp.add_argument(
        "--responses",
        choices=RESPONSE_MODELS.names(),
        default=DEFAULT_RESPONSE_MODEL,
        help=_choices_help({m.name: m.description for m in RESPONSE_MODELS}) + " (see docs/responses.md)",
    )
    resp.add_argument("--hrf-model", choices=list(HRF_MODELS), default=DEFAULT_HRF_MODEL, help="HRF of --responses lsa")
    resp.add_argument(
        "--lsa-zscore",
        choices=list(LSA_ZSCORE_UNITS),
        default=DEFAULT_LSA_ZSCORE,
        help="--responses lsa: z-score each voxel's single-trial betas over the trials of their session (default, "
        "as GLMsingle and NSD) or of their run (about 37 trials in BOLD5000)",
    )
    resp.add_argument(
        "--high-pass", type=float, default=1 / 128, metavar="HZ", help="cosine drift cutoff of --responses lsa"
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
        default=[3, 4],
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
        default="run",
        help="travg units: " + _choices_help(ZSCORING),
    )
    resp.add_argument(
        "--repeats",
        choices=list(REPEATS),
        default="average",
        help="the response of an image shown more than once: " + _choices_help(REPEATS),
    )


def _feature_options(p: argparse.ArgumentParser) -> None:
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


def _split_options(enc) -> None:
    """Options: the held-out test set (docs/statistics.md)."""
    enc.add_argument("--test-fraction", type=float, default=0.15, help="fraction of images held out for testing")
    enc.add_argument(
        "--test-split",
        choices=["image", "run", "session"],
        default="image",
        help="what the held-out test set is drawn by: images at random (BOLD5000's random order), or whole runs "
        "or sessions (each image in the run/session of its first showing), needed for blocked or temporally "
        "structured designs; with run/session, --n-permutations shifts predictions circularly within each "
        "held-out run/session (docs/statistics.md)",
    )


def _encoding_options(p: argparse.ArgumentParser) -> None:
    """Options: the encoding models, contrasts and partitionings."""
    enc = p.add_argument_group("encoding models")
    enc.add_argument("--cv-folds", type=int, default=7, help="k of the k-fold CV choosing each voxel's alpha")
    enc.add_argument(
        "--alphas", nargs="+", type=float, default=DEFAULT_ALPHAS, metavar="A", help="ridge regularisation grid"
    )
    _split_options(enc)
    enc.add_argument(
        "--cv-score",
        choices=list(CV_SCORES),
        default=DEFAULT_CV_SCORE,
        help="score that chooses each voxel's alpha: r2 = mean validation R² over the folds (as mean squared "
        "error; default); r = Pearson r, which ignores the predictions' scale and biases the test R² of "
        "unpredictable voxels downward (docs/statistics.md); negmse = negative mean squared error (the paper's)",
    )
    enc.add_argument(
        "--cv-scheme",
        choices=list(CV_SCHEMES),
        default="kfold",
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
        choices=["exact", "fast"],
        default="exact",
        help="fast = TF32 matrix products on CUDA, float32 eigendecompositions in banded ridge, and the Taskonomy "
        "encoders in bf16 on a CPU with native bf16 (AVX512-BF16, AMX); on CUDA the encoders run in bf16 in both "
        "modes (the sidecars record the precision used)",
    )
    enc.add_argument(
        "--n-permutations", type=int, default=0, help="permutation p-values with N permutations (0: analytic t-test p)"
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
        default=1000,
        metavar="N",
        help="bootstrap resamples of the test images for the 3D-vs-2D contrasts' confidence-interval "
        "maps (and for --contrast-p bootstrap); 0: no contrast maps at all",
    )
    enc.add_argument(
        "--contrast-p",
        choices=["analytic", "bootstrap"],
        default="analytic",
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
        default="fixed",
        help="which alphas the CV searches: " + _choices_help(ALPHA_GRIDS),
    )
    enc.add_argument(
        "--standardize",
        dest="standardize",
        action="store_true",
        default=True,
        help="z-score the features with training statistics (the default; overrides a preset's centring)",
    )
    enc.add_argument(
        "--p-sides",
        choices=list(P_VALUE_SIDES),
        default="one-sided",
        help="alternative of the p-values of r (analytic and permutation): " + _choices_help(P_VALUE_SIDES),
    )


def _group_options(p: argparse.ArgumentParser) -> None:
    """Options: the group level."""
    grp = p.add_argument_group("group level")
    grp.add_argument(
        "--reference-affinities",
        type=Path,
        metavar="FILE",
        help="Taskonomy transfer affinities (pickle, CSV or TSV) instead of the table bundled with the package "
        "(first-order entries of Taskonomy's all_affinities.pkl, MIT)",
    )
    grp.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap resamples for tree support")
    grp.add_argument(
        "--tree-bootstrap",
        choices=list(TREE_BOOTSTRAPS),
        default="auto",
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
        default=10000,
        metavar="N",
        help="permutations for the Mantel and consistency p-values (0: none)",
    )
    grp.add_argument("--top-k", type=int, default=3, metavar="K", help="neighbours per task in the graph's top-k table")
    grp.add_argument(
        "--allow-one-participant",
        action="store_true",
        help="run the group level over one participant's outputs (its similarity matrix and tree alone; no "
        "consistency across participants, no group maps); without it one participant is an error",
    )
    grp.add_argument(
        "--unthresholded", action="store_true", help="similarity of the raw r maps instead of the FDR-thresholded ones"
    )


def _running_options(p: argparse.ArgumentParser) -> None:
    """Options: where and how the run computes."""
    run = p.add_argument_group("running")
    run.add_argument(
        "--work-dir",
        "-w",
        type=Path,
        default=Path("work"),
        help="intermediate results and caches (features, responses)",
    )
    run.add_argument("--seed", type=int, default=0, help="seed of the split, folds and permutations")
    run.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="where featurization and ridge run (auto: CUDA when available, else CPU)",
    )
    run.add_argument(
        "--nprocs",
        "--n-cpus",
        type=int,
        metavar="N",
        help="parallel workers (image decode threads, runs read at once); default: the CPUs this process may use",
    )
    run.add_argument(
        "--omp-nthreads",
        type=int,
        metavar="N",
        help="threads of one computation: torch and BLAS (OpenMP/MKL/OpenBLAS); default: the libraries' own choice",
    )
    run.add_argument(
        "--mem",
        "--mem-mb",
        dest="mem",
        type=_mem_arg,
        metavar="MB",
        help="memory ceiling of a participant on the CPU (runs read at once, noise ceiling, each fit's "
        "voxel batches; on a GPU: the fit's device memory), in MB as fMRIPrep's --mem (16000), "
        "or with a unit: "
        "16GB, 16G, 500MB, 500M, 1TB (decimal units: 1 GB = 1000 MB); default: a share of the "
        "free (GPU) memory",
    )
    run.add_argument(
        "--replace-outputs",
        action="store_true",
        help="participant level: replace each participant's earlier outputs (every map of every space) instead of "
        "adding this run's spaces to them; needed when the shared settings (responses, split, seed, mask, FDR "
        "level) differ from those of the earlier maps (docs/output-safety.md)",
    )
    run.add_argument("--stop-on-first-crash", action="store_true", help="stop at the first failing participant")
    run.add_argument("--config", type=Path, metavar="FILE", help="TOML file of options; the command line wins")
    run.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    run.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=0,
        help="less output: no progress bars nor progress lines (-qq: errors only)",
    )


def _report_options(p: argparse.ArgumentParser) -> None:
    """Options: reports and citation files."""
    rep = p.add_argument_group(
        "reports",
        "HTML reports (sub-X.html after each participant, group.html after the group level) and "
        "logs/CITATION.{md,html,bib} are written from the outputs after every run",
    )
    only = rep.add_mutually_exclusive_group()
    only.add_argument(
        "--reports-only",
        action="store_true",
        help="rebuild the reports and citation files of this level from the existing outputs; fit nothing",
    )
    only.add_argument(
        "--boilerplate-only",
        action="store_true",
        help="write only logs/CITATION.{md,html,bib} from the existing outputs",
    )
    only.add_argument(
        "--no-reports",
        action="store_true",
        help="write no reports or citation files (build them later with --reports-only)",
    )
    rep.add_argument(
        "--pycortex-subject",
        nargs="+",
        metavar="NAME",
        help="pycortex subject for flatmaps: one NAME for every participant, or LABEL=NAME pairs; "
        "default: a subject named sub-<label> or <label> in the pycortex filestore. Needs "
        "the optional 'flatmaps' extra (pycortex)",
    )
    rep.add_argument(
        "--pycortex-xfm",
        metavar="NAME",
        help="pycortex transform from the maps' grid to the subject's anatomy; default: the subject's only transform",
    )


def _cluster_options(p: argparse.ArgumentParser) -> None:
    """Options: running many jobs over one dataset (BABS, DataLad, SLURM arrays; docs/clusters.md)."""
    grp = p.add_argument_group("clusters", "many jobs over one dataset: BABS, DataLad, SLURM arrays (docs/clusters.md)")
    grp.add_argument(
        "--bids-database-dir",
        type=Path,
        metavar="DIR",
        help="pybids index of the dataset, read when there and written there otherwise, so the jobs of an "
        "array share one index instead of each indexing the dataset (as fMRIPrep's)",
    )
    grp.add_argument(
        "--clean-workdir",
        action="store_true",
        help="empty --work-dir before the run (never while other jobs use the same work dir: the feature cache "
        "is shared)",
    )
    grp.add_argument(
        "--resource-monitor",
        action="store_true",
        help="sample this run's memory and CPU use every second into logs/resources-<time>.tsv; the peaks go "
        "to the run log",
    )


_MEM_UNITS = {"": 1.0, "K": 1e-3, "KB": 1e-3, "M": 1.0, "MB": 1.0, "G": 1e3, "GB": 1e3, "T": 1e6, "TB": 1e6}


def parse_mem(text) -> float:
    """``--mem`` value -> megabytes: a plain number is MB (fMRIPrep), else a unit K/M/G/T with optional B.

    ``16GB`` and ``16G`` -> 16000.0, ``500M`` -> 500.0, ``16000`` -> 16000.0. Raises ``ValueError``
    (argparse turns it into a usage error) for anything else or a value that is not > 0.
    """
    import re

    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).upper() not in _MEM_UNITS:
            raise ValueError(f"{text!r}: expected MB or a number with a unit (16GB, 16G, 500MB, 500M)")
        value, unit = float(m.group(1)), m.group(2).upper()
    mb = value * _MEM_UNITS[unit]
    if not (mb > 0 and math.isfinite(mb)):
        raise ValueError(f"{text!r}: the memory budget must be > 0")
    return mb


def _mem_arg(text) -> float:
    try:
        return parse_mem(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


_mem_arg.__name__ = "memory"


def _config_defaults(parser: argparse.ArgumentParser, path: Path) -> dict:
    if not path.is_file():
        raise InputMissingError(f"{path}: --config file does not exist")
    try:
        data = read_toml(path, "--config file")
    except UnreadableFileError as exc:
        raise UsageError(str(exc)) from exc
    known = {a.dest for a in parser._actions}
    out = {}
    for key, value in data.items():
        dest = key.replace("-", "_")
        if dest not in known or dest in ("bids_dir", "output_dir", "analysis_level", "config", "help", "version"):
            raise UsageError(f"{path}: unknown option {key!r}")
        action = next(a for a in parser._actions if a.dest == dest)
        out[dest] = _config_value(path, key, action, value)
    return out


def _config_value(path: Path, key: str, action: argparse.Action, value):
    """A TOML value checked and converted as argparse would the same option on the command line."""

    def bad(expected: str) -> UsageError:
        return UsageError(f"{path}: {key} = {value!r}: expected {expected}")

    if isinstance(action, argparse._AppendAction):
        # a repeatable option: one list of values per use, e.g. [["group:3D", "group:2D"]]
        if not isinstance(value, list) or not value or not all(isinstance(v, list) for v in value):
            raise bad(f"a list of lists, one per use of the option, e.g. {key} = [[...]]")
        one_use = SimpleNamespace(nargs=action.nargs, type=action.type, choices=action.choices)
        return [_config_value(path, key, one_use, v) for v in value]
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(action, argparse._CountAction):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad("a whole number >= 0")
        return value
    many = action.nargs in ("+", "*")
    if many:
        if not isinstance(value, list):
            raise bad(f"a list, e.g. {key} = [{value!r}]")
        if action.nargs == "+" and not value:
            raise bad("a list of at least one value")
        items = value
    else:
        if isinstance(value, (list, dict)):
            raise bad("a single value")
        items = [value]
    conv = action.type or str
    converted = []
    for item in items:
        if isinstance(item, (list, dict, bool)) and conv is not str:
            raise bad(f"{'a list of ' if many else ''}{conv.__name__} value{'s' if many else ''}")
        if conv is int and not isinstance(item, int):
            raise bad("whole numbers" if many else "a whole number")
        if conv is float and not isinstance(item, (int, float)):
            raise bad("numbers" if many else "a number")
        if conv in (str, Path) and not isinstance(item, (str, int)) or isinstance(item, (dict, list)):
            raise bad("text")
        try:
            item = conv(item) if conv is not str else str(item)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise bad(str(exc)) from exc
        if action.choices is not None and item not in action.choices:
            raise bad(f"one of {', '.join(map(str, action.choices))}")
        converted.append(item)
    return converted if many else converted[0]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line, with ``--config`` values as defaults."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # --help and --version end here, before the settings (and their imports)
    from .settings import check_options, preset_defaults

    config = _config_defaults(parser, args.config) if args.config is not None else {}
    preset = args.preset if args.preset is not None else config.get("preset")
    # a preset is of the participant level's settings; the group level reads what the participants recorded
    presetting = preset is not None and args.analysis_level == "participant"
    if presetting or config:
        # the preset's values are defaults below the config file's, which are below the command line's
        parser.set_defaults(**{**(preset_defaults(preset) if presetting else {}), **config})
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
