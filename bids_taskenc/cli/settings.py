"""The command line's options (argparse + TOML, already checked by :mod:`.parser`) as the workflow's settings."""

from __future__ import annotations

import argparse
from pathlib import Path

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
        ),
        responses=ResponseSettings(
            model=args.responses,
            response_trs=tuple(args.response_trs),
            confounds=tuple(args.confounds or ()),
            hrf_model=args.hrf_model,
            high_pass=args.high_pass,
            betas_dir=args.betas_dir,
            mask=args.mask,
            resample_mask=bool(args.resample_mask),
        ),
        features=FeatureSettings(
            spaces=tuple(args.feature_spaces or ()),
            features_dir=args.features_dir,
            taskonomy_weights=args.taskonomy_weights,
            offline=args.offline,
        ),
        fit=FitSettings(
            alphas=tuple(float(a) for a in args.alphas),
            cv_folds=args.cv_folds,
            test_fraction=args.test_fraction,
            cv_score=args.cv_score,
            cv_scheme=args.cv_scheme,
            standardize=args.standardize,
            precision=args.precision,
            n_permutations=args.n_permutations,
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
            progress=args.verbose > 0,
        ),
        resources=ResourceSettings(
            device=args.device, nprocs=args.nprocs, omp_nthreads=args.omp_nthreads, mem_mb=args.mem
        ),
    )


def resource_settings(args: argparse.Namespace) -> ResourceSettings:
    """The resources alone (every level applies them)."""
    return ResourceSettings(device=args.device, nprocs=args.nprocs, omp_nthreads=args.omp_nthreads, mem_mb=args.mem)
