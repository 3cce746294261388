"""The workflow layer: one participant's run and the group's run, from typed settings to written derivatives.

``cli/`` parses the command line and the TOML config into the frozen settings dataclasses of this package and turns
errors into exit codes; everything a run does between the two happens here, as steps that read like the method.
The engines (``features/``, ``encoding/``) below it take arrays and return arrays.

From Python (docs/examples/fit_one_participant.py)::

    from bids_taskenc.workflow import FeatureSettings, ParticipantSettings, run_participant

    settings = ParticipantSettings(features=FeatureSettings(spaces=("user:edge2da",), features_dir=features))
    outcome = run_participant(bids_dir, output_dir, "CSI1", settings)
"""

from ..core.lazy import lazy_exports

#: Public name -> the module that defines it (imported on first use, so ``cli`` importing one step of the workflow
#: does not load them all).
_PUBLIC = {
    "Dataset": "dataset",
    "open_dataset": "dataset",
    "ParticipantOutcome": "participant",
    "run_participant": "participant",
    **{
        name: "settings"
        for name in (
            "ComparisonSettings",
            "FeatureSettings",
            "FitSettings",
            "InputSettings",
            "OutputSettings",
            "ParticipantSettings",
            "ResourceSettings",
            "ResponseSettings",
        )
    },
}
__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
