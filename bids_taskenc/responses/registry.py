"""The response models, by name: what ``--responses`` offers, the settings accept, the docs list, the workflow runs,
the sidecars record and the methods text says.

Adding a response model is one new module (a function ``(job: ResponseJob) -> Responses``) and one
``REGISTRY.register(ResponseModel(...))`` entry here; nothing else names a model. This module imports nothing
heavier than :mod:`bids_taskenc.core.registry` (``bids_taskenc --help`` reads :data:`REGISTRY`'s names without
numpy, nibabel, pandas or torch; ``tests/app/test_cli_startup.py``): the implementation is an import path, imported
on first use (:meth:`ResponseModel.function`).

An entry's ``methods`` is the Jinja text of the response paragraph of the methods (``boilerplate/methods.md.j2``
renders it with the response facts the sidecars record: ``confounds``, ``repeats``, ``response_trs``,
``response_zscore``, ``lsa_zscore``, ``units``, ``response_model``); ``citations`` are the ``references.bib`` keys
it cites (``tests/responses/test_response_registry.py`` checks that they agree).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from ..core.registry import Registry, resolve

if TYPE_CHECKING:  # types only: importing them would load nibabel and pandas
    import nibabel as nib
    import pandas as pd

    from ..bids.betas import BetaFile
    from ..bids.preprocessed import PreprocessedRun
    from .base import Responses


class ResponseOptions(Protocol):
    """The response settings a model reads (``bids_taskenc.workflow.settings.ResponseSettings`` has them all)."""

    @property
    def response_trs(self) -> tuple[int, ...]: ...
    @property
    def confounds(self) -> tuple[str, ...]: ...
    @property
    def hrf_model(self) -> str: ...
    @property
    def lsa_zscore(self) -> str: ...
    @property
    def high_pass(self) -> float: ...
    @property
    def response_zscore(self) -> str: ...


@dataclass(frozen=True)
class ResponseJob:
    """What a response model is given: one participant's inputs for one task, the settings and the resources.

    ``runs`` are the preprocessed BOLD runs (empty for a model that reads betas), ``trials`` their ``Trials``
    rows, ``beta_files`` the precomputed betas (empty for a model that reads BOLD), ``user_mask`` the ``--mask``
    (already resampled onto the grid the model reads, when ``--resample-mask``), ``device`` the torch device,
    ``n_threads`` the runs read at once, ``mem_gb`` the memory ceiling (GB = 1e9 bytes), ``progress`` a bar.
    """

    runs: Sequence[PreprocessedRun]
    trials: pd.DataFrame
    beta_files: Sequence[BetaFile]
    options: ResponseOptions
    user_mask: str | Path | nib.Nifti1Image | None = None
    device: str = "cpu"
    n_threads: int | None = None
    mem_gb: float | None = None
    progress: bool = False

    @property
    def confounds(self) -> list[str] | None:
        """The confound columns to regress out, None for none."""
        return list(self.options.confounds) or None


@dataclass(frozen=True)
class ResponseModel:
    """One response model: the name users type (``--responses``), a one-line ``description`` (``--help``, the
    docs), the methods text's paragraph (Jinja), the ``references.bib`` keys it cites, the implementation
    (``"package.module:function"``, a function ``(ResponseJob) -> Responses``) and what it reads: ``bold``
    (fMRIPrep's preprocessed runs) or ``betas`` (``--betas-dir``)."""

    name: str
    description: str
    methods: str
    citations: tuple[str, ...]
    implementation: str
    reads: Literal["bold", "betas"] = "bold"

    def function(self) -> Callable[[ResponseJob], Responses]:
        """The implementation, imported on first use."""
        return resolve(self.implementation)


#: The response models by name, in the order of ``--help`` and the docs.
REGISTRY: Registry[ResponseModel] = Registry("response model")
#: ``--responses``' default: the paper's.
DEFAULT_RESPONSE_MODEL = "travg"

#: The methods' clause on repeated images, shared by the models whose responses are trials (``--repeats``).
REPEATS_METHODS = (
    '{% if repeats == "average" %}the responses to repeated presentations of an image were averaged'
    '{% elif repeats == "first" %}of an image shown more than once, only the response to its first presentation '
    "was used{% else %}of an image shown more than once, only the response to the presentation the events do not "
    "mark as a repeat (BOLD5000's `rep_` image types) was used, as in Wang et al.'s code{% endif %}"
)
#: The cleaning the BOLD models' paragraph starts with.
_PREPROCESSED = (
    "The preprocessed BOLD series (fMRIPrep derivatives [@esteban2019fmriprep]) were "
    "{% if confounds %}cleaned of the confounds {{ confounds }} and {% endif %}"
)
#: travg under ``--response-zscore trials``.
_TRIAL_ZSCORED = (
    "sampled at the volumes acquired nearest to {{ response_trs }} TRs after each trial's onset, each such volume "
    "z-scored per voxel over the trials of its run (as Wang et al.'s code); the response to a trial was the mean of "
    "its volumes"
)


def _bold_model_methods(run_zscored: str) -> str:
    """The paragraph of a model that reads BOLD and z-scores it per run (``run_zscored``: what it then does)."""
    return (
        f'{_PREPROCESSED}{{% if response_zscore == "trials" %}}{_TRIAL_ZSCORED}{{% else %}}z-scored per run and '
        f"voxel; {run_zscored}{{% endif %}}, and {REPEATS_METHODS}."
    )


#: The paragraph for outputs whose model is not registered (older outputs, another build's model).
UNREGISTERED_METHODS = _bold_model_methods("trial responses were estimated with the `{{ response_model }}` model")

REGISTRY.register(
    ResponseModel(
        name="travg",
        description="mean of chosen TRs after onset (the paper)",
        methods=_bold_model_methods(
            "the response to a trial was the mean of the volumes acquired nearest to {{ response_trs }} TRs after "
            "the trial's onset (volume times from the slice-timing reference fMRIPrep recorded, if any)"
        ),
        citations=("esteban2019fmriprep",),
        implementation="bids_taskenc.responses.travg:travg_model",
    )
)
REGISTRY.register(
    ResponseModel(
        name="lsa",
        description="single-trial GLM",
        methods=(
            "The response to each trial was estimated from the preprocessed BOLD series (fMRIPrep derivatives "
            "[@esteban2019fmriprep]) with a single-trial general linear model (least squares, all at once"
            "{% if confounds %}, with the confounds {{ confounds }} in the design{% endif %}), each voxel's "
            "single-trial betas were z-scored over the trials of their {{ lsa_zscore }}, and "
            f"{REPEATS_METHODS}."
        ),
        citations=("esteban2019fmriprep",),
        implementation="bids_taskenc.responses.lsa:lsa_model",
    )
)
REGISTRY.register(
    ResponseModel(
        name="betas",
        description="precomputed single-trial betas from --betas-dir",
        methods=(
            "The response to each image was a precomputed single-trial beta; "
            '{% if repeats == "average" %}the betas of repeated presentations were averaged'
            '{% elif repeats == "first" %}of an image shown more than once, only the beta of its first presentation '
            "was used{% else %}of an image shown more than once, only the beta of the presentation the events do not "
            "mark as a repeat was used{% endif %}."
        ),
        citations=(),
        implementation="bids_taskenc.responses.betas:betas_model",
        reads="betas",
    )
)
