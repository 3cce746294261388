"""The command line's options (argparse + TOML, parsed by :mod:`.parser`) as the workflow's settings.

The settings check their own values (:mod:`bids_taskenc.workflow.settings`); :func:`check_options` builds them
while the command line is parsed and turns a value out of range into a usage error naming the option.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..core.fdr import DEFAULT_FDR_LEVEL
from ..errors import InvalidSettingError, UsageError
from ..workflow.group import GroupSettings
from ..workflow.presets import PRESETS
from ..workflow.settings import (
    ComparisonSettings,
    FeatureSettings,
    FitSettings,
    InputSettings,
    OutputSettings,
    ParticipantSettings,
    ResourceSettings,
    ResponseSettings,
)
from .cluster import show_progress


def _paths(values) -> tuple[Path, ...]:
    return tuple(Path(v) for v in values or ())


def participant_settings(args: argparse.Namespace) -> ParticipantSettings:
    """One participant run's settings from the parsed options (``--fdr-alpha`` already defaulted to 0.05)."""
    return ParticipantSettings(
        inputs=InputSettings(
            derivatives=_paths(args.derivatives),
            space=args.space,
            stimuli_dirs=_paths(args.stimuli_dir),
            roi_dir=args.roi_dir,
            sessions=tuple(args.session_label or ()),
            tasks=tuple(args.task_label or ()),
            bids_filter_file=args.bids_filter_file,
            skip_bids_validation=args.skip_bids_validation,
            bids_database_dir=args.bids_database_dir,
        ),
        responses=ResponseSettings(
            model=args.responses,
            response_trs=tuple(args.response_trs),
            confounds=tuple(args.confounds or ()),
            hrf_model=args.hrf_model,
            lsa_zscore=args.lsa_zscore,
            high_pass=args.high_pass,
            betas_dir=args.betas_dir,
            mask=args.mask,
            resample_mask=bool(args.resample_mask),
            repeats=args.repeats,
            response_zscore=args.response_zscore,
        ),
        features=FeatureSettings(
            spaces=tuple(args.feature_spaces or ()),
            features_dir=args.features_dir,
            taskonomy_weights=args.taskonomy_weights,
            offline=args.offline,
        ),
        fit=FitSettings(
            alphas=tuple(float(a) for a in args.alphas),
            alpha_grid=args.alpha_grid,
            cv_folds=args.cv_folds,
            test_fraction=args.test_fraction,
            test_split=args.test_split,
            cv_score=args.cv_score,
            cv_scheme=args.cv_scheme,
            standardize=args.standardize,
            precision=args.precision,
            n_permutations=args.n_permutations,
            p_sides=args.p_sides,
            fdr_alpha=args.fdr_alpha,
            seed=args.seed,
        ),
        comparisons=ComparisonSettings(
            contrast_bootstrap=args.contrast_bootstrap,
            contrast_p=args.contrast_p,
            partitionings=tuple(tuple(s) for s in args.variance_partitioning or ()),
        ),
        outputs=OutputSettings(
            save_weights=args.save_weights,
            save_features=args.save_features,
            work_dir=args.work_dir,
            replace_outputs=args.replace_outputs,
            progress=show_progress(args),
        ),
        resources=resource_settings(args),
        preset=args.preset,
    )


def resource_settings(args: argparse.Namespace) -> ResourceSettings:
    """The resources alone (every level applies them)."""
    return ResourceSettings(
        device=args.device,
        nprocs=args.nprocs,
        omp_nthreads=args.omp_nthreads,
        mem_mb=args.mem,
        mem_given_as=getattr(args, "mem_given_as", None),
    )


def group_settings(args: argparse.Namespace, argv: list[str]) -> GroupSettings:
    """The group run's settings from the parsed options; ``argv`` is recorded as the command line."""
    participants = tuple(p[4:] if p.startswith("sub-") else p for p in args.participant_label or []) or None
    return GroupSettings(
        task=args.task_label[0] if args.task_label else None,
        participants=participants,
        space=args.space,
        fdr_alpha=args.fdr_alpha,
        thresholded=not args.unthresholded,
        roi_dir=args.roi_dir,
        reference_affinities=args.reference_affinities,
        offline=args.offline,
        n_bootstrap=args.n_bootstrap,
        n_permutations=args.group_permutations,
        tree_bootstrap=args.tree_bootstrap,
        bootstrap_block_mm=args.bootstrap_block_mm,
        top_k=args.top_k,
        seed=args.seed,
        command_line=shlex.join(["bids_taskenc", *argv]),
        progress=show_progress(args),
        allow_one_participant=args.allow_one_participant,
    )


#: The option of a setting whose name is not the option's (``--`` + the field's name with dashes otherwise).
_OPTIONS = {
    "ResponseSettings.model": "--responses",
    "ResourceSettings.mem_mb": "--mem",
    "ComparisonSettings.partitionings": "--variance-partitioning",
    "GroupSettings.n_permutations": "--group-permutations",
}


def preset_defaults(name: str) -> dict:
    """Preset ``name``'s values as parser defaults (``{"cv_score": "negmse", "responses": "travg", ...}``): the
    command line's and the config file's own values go on top."""
    sections = {"responses": "ResponseSettings", "fit": "FitSettings"}
    out = {}
    for key, value in PRESETS[name].values.items():
        section, _, field = key.partition(".")
        dest = option_of(f"{sections[section]}.{field}")[2:].replace("-", "_")
        out[dest] = list(value) if isinstance(value, tuple) else value
    return out


def option_of(setting: str) -> str:
    """``'FitSettings.cv_folds'`` -> ``'--cv-folds'``."""
    return _OPTIONS.get(setting, "--" + setting.rpartition(".")[2].replace("_", "-"))


def check_options(args: argparse.Namespace, argv: list[str]) -> None:
    """Build every level's settings from ``args`` (participant, group, resources) so that their checks run before
    any work; a value out of range becomes a :class:`~bids_taskenc.errors.UsageError` (exit 64)
    naming the option, e.g. ``--cv-folds must be at least 2 (got 1)``."""
    try:
        resource_settings(args)
        group_settings(args, argv)
        # the group level has no FDR level of its own by default; the participant options are checked all the same
        fdr = DEFAULT_FDR_LEVEL if args.fdr_alpha is None else args.fdr_alpha
        participant_settings(argparse.Namespace(**{**vars(args), "fdr_alpha": fdr}))
    except InvalidSettingError as exc:
        if exc.setting == "ResponseSettings.betas_dir":
            raise UsageError("--responses betas needs --betas-dir DIR (layout: docs/responses.md)") from exc
        value = exc.value
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
        raise UsageError(f"{option_of(exc.setting)} {exc.rule} (got {shown})") from exc
