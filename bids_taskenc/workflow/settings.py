"""Typed, frozen settings of one participant's run: what the command line and the TOML config say, as values.

Each group of options is a frozen dataclass with the command line's defaults, so a notebook needs to name only
what differs::

    >>> from bids_taskenc.workflow.settings import FeatureSettings, FitSettings, ParticipantSettings
    >>> s = ParticipantSettings(features=FeatureSettings(spaces=("user:edge2da",)), fit=FitSettings(cv_folds=3))
    >>> s.fit.cv_folds, s.fit.test_fraction, s.responses.model
    (3, 0.15, 'travg')
    >>> ParticipantSettings.from_dict(s.to_dict()) == s
    True

Lists given for tuple fields become tuples (one string given for a tuple field is its one value) and strings
given for path fields become :class:`~pathlib.Path`, so the objects stay hashable and immutable.
:meth:`ParticipantSettings.to_dict` is JSON-ready (paths as text, tuples as lists); the work cache builds its keys
from the parts a result depends on (:mod:`bids_taskenc.workflow.cache`).

Each class checks its values when it is made: a value outside what a setting accepts raises
:class:`~bids_taskenc.errors.InvalidSettingError` (a :class:`ValueError`) naming the setting, before any work::

    >>> ResponseSettings(model="lss")
    Traceback (most recent call last):
    ...
    bids_taskenc.errors.InvalidSettingError: ResponseSettings.model must be one of travg, lsa, betas (got 'lss')

The command line does not repeat these checks: it builds the settings while it parses and names its option
instead (``--responses must be one of …``, exit 64; :mod:`bids_taskenc.cli.settings`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..core.fdr import DEFAULT_FDR_LEVEL
from ..encoding.alphas import ALPHA_GRIDS
from ..encoding.options import CV_SCORES, DEFAULT_CV_SCORE, P_VALUE_SIDES, PRECISIONS
from ..encoding.options import DEFAULT_ALPHAS as _ENCODING_ALPHAS
from ..errors import InvalidSettingError
from ..responses.options import DEFAULT_HRF_MODEL, DEFAULT_LSA_ZSCORE, HRF_MODELS, LSA_ZSCORE_UNITS, REPEATS, ZSCORING
from ..responses.registry import DEFAULT_RESPONSE_MODEL
from ..responses.registry import REGISTRY as RESPONSE_MODEL_REGISTRY

#: ``FitSettings.cv_scheme``'s choices: shuffled k-fold, leave-one-session-out, or one random validation split of
#: ``test_fraction`` of the training images (Wang et al. 2019's scheme).
CV_SCHEMES = ("kfold", "session", "split")
#: ``FitSettings.test_split``'s choices: images at random, or whole runs / sessions held out (docs/statistics.md).
TEST_SPLITS = ("image", "run", "session")
#: ``ComparisonSettings.contrast_p``'s choices.
CONTRAST_P_METHODS = ("analytic", "bootstrap")
#: ``FitSettings.precision``'s choices on the command line: the engines' modes but ``double`` (float64 throughout,
#: the reference of the benchmarks and tests, not a user's choice).
COMMAND_LINE_PRECISIONS = tuple(p for p in PRECISIONS if p != "double")
#: ``ResourceSettings.device``'s choices on the command line (the settings also take ``cuda:N``).
DEVICES = ("auto", "cpu", "cuda")

#: The ridge penalty grid of the command line (``--alphas``), as Python floats.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in _ENCODING_ALPHAS)


class _Settings:
    """Coercion (list -> tuple, str -> Path) and the checks of :meth:`check` on construction; the JSON round trip."""

    if typing.TYPE_CHECKING:  # every subclass is a dataclass
        __dataclass_fields__: typing.ClassVar[dict[str, dataclasses.Field[typing.Any]]]

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            coerced = _coerce(hints[f.name], value)
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)
        self.check()

    def check(self) -> None:
        """Raise :class:`~bids_taskenc.errors.InvalidSettingError` for the first value out of its range."""

    def to_dict(self) -> dict:
        """Every field, JSON-ready: nested settings as dicts, paths as text, tuples as lists."""
        return {f.name: _to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict):
        """The inverse of :meth:`to_dict` (missing keys take their defaults; unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown settings {unknown}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _from_json(hints[k], v) for k, v in data.items()})

    def replace(self, **changes):
        """A copy with ``changes`` (:func:`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)


def _to_json(value):
    if isinstance(value, _Settings):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    return value


def _optional_inner(hint):
    """``X | None`` -> X; anything else unchanged."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _coerce(hint, value):
    if value is None:
        return None
    hint = _optional_inner(hint)
    if hint is Path and isinstance(value, str):
        return Path(value)
    if typing.get_origin(hint) is tuple:
        if isinstance(value, (str, Path, numbers.Number)):
            value = (value,)  # one value, not its characters
        elif hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
            value = value.tolist()  # a numpy array: its Python numbers
            value = value if isinstance(value, list) else [value]
        if isinstance(value, (list, tuple)):
            inner = typing.get_args(hint)[0]
            return tuple(_coerce(inner, v) for v in value)
    if isinstance(value, numbers.Number) and hasattr(value, "item"):
        return value.item()  # a numpy scalar: the Python number (JSON, hashing)
    return value


def _from_json(hint, value):
    if value is None:
        return None
    hint = _optional_inner(hint)
    if isinstance(hint, type) and issubclass(hint, _Settings):
        return hint.from_dict(value)
    return _coerce(hint, value)


# ---------------------------------------------------------------------------- value checks


def require(owner, name: str, ok: bool, rule: str) -> None:
    """Raise :class:`InvalidSettingError` for ``owner.name`` (its value included) unless ``ok``."""
    if not ok:
        raise InvalidSettingError(f"{type(owner).__name__}.{name}", rule, getattr(owner, name))


def is_whole(value, minimum: int) -> bool:
    """A whole number (not a bool) of at least ``minimum``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= minimum


def is_number(value) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def is_fraction(value) -> bool:
    """A number strictly between 0 and 1 (an FDR level, a test fraction)."""
    return is_number(value) and 0 < value < 1


def is_choice(value, choices) -> bool:
    return isinstance(value, str) and value in choices


def one_of(choices) -> str:
    """The rule text of a choice."""
    return "must be one of " + ", ".join(choices)


@dataclass(frozen=True)
class InputSettings(_Settings):
    """Where the inputs are besides the BIDS folder, and which of its data to use."""

    derivatives: tuple[Path, ...] = ()  #: fMRIPrep folders; () = <bids_dir>/derivatives/fmriprep
    space: str | None = None  #: output space of the preprocessed BOLD; None = T1w when present
    stimuli_dirs: tuple[Path, ...] = ()  #: searched for the stimulus images; () = <bids_dir>/stimuli
    roi_dir: Path | None = None  #: ROI masks; None = <bids_dir>/derivatives/spm when present
    sessions: tuple[str, ...] = ()  #: () = every session
    tasks: tuple[str, ...] = ()  #: () = every task whose events name stimuli
    bids_filter_file: Path | None = None  #: JSON of pybids filters (as fMRIPrep's)
    skip_bids_validation: bool = False
    bids_database_dir: Path | None = None  #: pybids index shared by a run's jobs; None = index anew


@dataclass(frozen=True)
class ResponseSettings(_Settings):
    """BOLD -> one response per image (docs/responses.md)."""

    model: str = DEFAULT_RESPONSE_MODEL  #: a name of responses/registry.py: travg (the paper), lsa, betas
    response_trs: tuple[int, ...] = (3, 4)  #: travg: lags L averaged, the volumes nearest onset + L*TR
    confounds: tuple[str, ...] = ()  #: fMRIPrep confound columns regressed out
    hrf_model: str = DEFAULT_HRF_MODEL  #: lsa: nilearn's HRF (responses/options.py)
    lsa_zscore: str = DEFAULT_LSA_ZSCORE  #: lsa: z-score each voxel's betas per session (GLMsingle, NSD) or per run
    high_pass: float = 1 / 128  #: lsa: cosine drift cutoff, Hz
    betas_dir: Path | None = None  #: betas: the single-trial betas
    mask: Path | None = None  #: restrict the analysis to this mask
    resample_mask: bool = False  #: resample ``mask`` onto the BOLD grid when it differs
    repeats: str = "average"  #: an image's response: average, first or drop-repeats (responses/repeats.py)
    response_zscore: str = "run"  #: travg: z-score over the run's volumes, or over its trials (responses/zscoring.py)

    @property
    def reads_betas(self) -> bool:
        """Whether the model reads precomputed betas (``--betas-dir``) instead of BOLD: its registry entry says."""
        return self.model in RESPONSE_MODEL_REGISTRY and RESPONSE_MODEL_REGISTRY[self.model].reads == "betas"

    def check(self) -> None:
        models = RESPONSE_MODEL_REGISTRY.names()  # read now: a model registered later counts
        require(self, "model", is_choice(self.model, models), one_of(models))
        require(self, "hrf_model", is_choice(self.hrf_model, HRF_MODELS), one_of(HRF_MODELS))
        require(self, "lsa_zscore", is_choice(self.lsa_zscore, LSA_ZSCORE_UNITS), one_of(LSA_ZSCORE_UNITS))
        require(self, "repeats", is_choice(self.repeats, REPEATS), one_of(REPEATS))
        require(self, "response_zscore", is_choice(self.response_zscore, ZSCORING), one_of(ZSCORING))
        require(
            self,
            "response_zscore",
            self.response_zscore == "run" or self.model == "travg",
            "must be run unless the responses are travg (trials z-scores the travg volumes over the trials)",
        )
        trs = self.response_trs
        require(
            self,
            "response_trs",
            bool(trs) and all(is_whole(t, 0) for t in trs),
            "must be whole TRs >= 0 after the onset, at least one (e.g. 3 4)",
        )
        require(
            self, "high_pass", is_number(self.high_pass) and self.high_pass > 0, "must be a positive frequency in Hz"
        )
        require(
            self,
            "betas_dir",
            not self.reads_betas or self.betas_dir is not None,
            "must be given when the responses are betas (layout: docs/responses.md)",
        )


@dataclass(frozen=True)
class FeatureSettings(_Settings):
    """Which feature spaces, and where their inputs are."""

    spaces: tuple[str, ...] = ()  #: () = the features_dir spaces if given, else the paper's 21 Taskonomy encoders
    features_dir: Path | None = None  #: user-supplied spaces: <space>/features.npy + stimuli.tsv
    taskonomy_weights: Path | None = None  #: weights store (else $BIDS_TASKENC_MODELS)
    offline: bool = False  #: never download


@dataclass(frozen=True)
class FitSettings(_Settings):
    """The encoding models: split, cross-validated ridge, statistics. Every field changes the fitted numbers."""

    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    alpha_grid: str = "fixed"  #: fixed (``alphas``) or paper (logspace(-8, log10(p)/2 + 8, 100)): encoding/alphas.py
    cv_folds: int = 7
    test_fraction: float = 0.15
    test_split: str = "image"  #: image, run or session: what the held-out test set is drawn by
    cv_score: str = DEFAULT_CV_SCORE  #: r2 (default), r or negmse: the score that chooses alpha (docs/statistics.md)
    cv_scheme: str = "kfold"  #: kfold, session or split
    standardize: bool = True
    precision: str = "exact"  #: exact or fast
    n_permutations: int = 0  #: 0 = analytic p
    p_sides: str = "one-sided"  #: one-sided (H1: r > 0) or two-sided (H1: r != 0)
    fdr_alpha: float = DEFAULT_FDR_LEVEL
    seed: int = 0  #: split, folds, permutations, bootstrap

    def check(self) -> None:
        alphas = self.alphas
        require(
            self,
            "alphas",
            bool(alphas) and all(is_number(a) and a > 0 for a in alphas),
            "must be finite and positive, at least one",
        )
        require(self, "alpha_grid", is_choice(self.alpha_grid, ALPHA_GRIDS), one_of(ALPHA_GRIDS))
        require(self, "cv_folds", is_whole(self.cv_folds, 2), "must be at least 2")
        require(self, "test_fraction", is_fraction(self.test_fraction), "must be between 0 and 1")
        require(self, "cv_score", is_choice(self.cv_score, CV_SCORES), one_of(CV_SCORES))
        require(self, "cv_scheme", is_choice(self.cv_scheme, CV_SCHEMES), one_of(CV_SCHEMES))
        require(self, "test_split", is_choice(self.test_split, TEST_SPLITS), one_of(TEST_SPLITS))
        require(self, "precision", is_choice(self.precision, PRECISIONS), one_of(PRECISIONS))
        require(self, "n_permutations", is_whole(self.n_permutations, 0), "must be a whole number >= 0")
        require(self, "p_sides", is_choice(self.p_sides, P_VALUE_SIDES), one_of(P_VALUE_SIDES))
        require(self, "fdr_alpha", is_fraction(self.fdr_alpha), "must be between 0 and 1")
        require(self, "seed", is_whole(self.seed, 0), "must be a whole number >= 0")


@dataclass(frozen=True)
class ComparisonSettings(_Settings):
    """Comparisons between feature spaces: the 3D-vs-2D contrasts and variance partitionings."""

    contrast_bootstrap: int = 1000  #: 0 = no contrast maps
    contrast_p: str = "analytic"  #: analytic or bootstrap
    partitionings: tuple[tuple[str, ...], ...] = ()  #: each 2 or 3 SETs (``group:3D``, ``a+b``, a space)

    def check(self) -> None:
        require(self, "contrast_bootstrap", is_whole(self.contrast_bootstrap, 0), "must be a whole number >= 0")
        require(self, "contrast_p", is_choice(self.contrast_p, CONTRAST_P_METHODS), one_of(CONTRAST_P_METHODS))
        for sets in self.partitionings:
            if not (isinstance(sets, tuple) and 2 <= len(sets) <= 3 and all(isinstance(x, str) and x for x in sets)):
                raise InvalidSettingError(
                    "ComparisonSettings.partitionings",
                    "must each be 2 or 3 SETs (a space, spaces joined by +, or group:NAME)",
                    sets,
                )


@dataclass(frozen=True)
class OutputSettings(_Settings):
    """What is written (beside the maps and tables every run writes), where work is kept, what is shown."""

    save_weights: bool = False
    save_features: bool = False
    work_dir: Path = Path("work")  #: caches (features, responses, fits); relative to the current folder
    replace_outputs: bool = False  #: replace each participant's earlier outputs instead of adding to them
    progress: bool = False  #: progress bars


@dataclass(frozen=True)
class ResourceSettings(_Settings):
    """Where and with how much the run computes."""

    device: str = "auto"  #: auto, cpu or cuda
    nprocs: int | None = None  #: parallel workers; None = the libraries' defaults
    omp_nthreads: int | None = None  #: threads of one computation; None = the libraries' own choice
    mem_mb: float | None = None  #: memory ceiling in MB (decimal); None = a share of the free memory
    #: how the ceiling was given, for messages only (the command line's ``--mem 16GB``); None: this setting's name.
    #: Not compared: ``--mem 2GB`` and a config file's ``mem = 2000`` are the same settings
    mem_given_as: str | None = field(default=None, compare=False)

    def check(self) -> None:
        device = self.device
        require(
            self,
            "device",
            isinstance(device, str) and (device in DEVICES or re.fullmatch(r"cuda:\d+", device) is not None),
            one_of((*DEVICES, "cuda:N")),
        )
        for name in ("nprocs", "omp_nthreads"):
            value = getattr(self, name)
            require(self, name, value is None or is_whole(value, 1), "must be at least 1")
        mem = self.mem_mb
        require(self, "mem_mb", mem is None or (is_number(mem) and mem > 0), "must be a positive number of megabytes")

    @property
    def mem_gb(self) -> float | None:
        return None if self.mem_mb is None else self.mem_mb / 1000.0

    @property
    def mem_label(self) -> str:
        """The ceiling as the user gave it: ``--mem 500M`` from the command line, else ``mem_mb=500``."""
        if self.mem_given_as:
            return self.mem_given_as
        return "no memory ceiling" if self.mem_mb is None else f"mem_mb={self.mem_mb:g}"


@dataclass(frozen=True)
class ParticipantSettings(_Settings):
    """Everything one participant's run reads besides the BIDS folder, the output folder and the participant."""

    inputs: InputSettings = field(default_factory=InputSettings)
    responses: ResponseSettings = field(default_factory=ResponseSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    fit: FitSettings = field(default_factory=FitSettings)
    comparisons: ComparisonSettings = field(default_factory=ComparisonSettings)
    outputs: OutputSettings = field(default_factory=OutputSettings)
    resources: ResourceSettings = field(default_factory=ResourceSettings)
    preset: str | None = None  #: the named bundle the settings started from (workflow/presets.py), for the record

    def check(self) -> None:
        from .presets import PRESETS  # the presets are made of these settings

        require(self, "preset", self.preset is None or is_choice(self.preset, PRESETS), one_of(PRESETS))
