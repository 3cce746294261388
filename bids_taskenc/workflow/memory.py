"""Does a participant's task fit under the memory ceiling (``--mem``)? Checked before anything is computed.

The responses step and each fit check the ceiling themselves when they start (they size their run readers and
voxel batches by it), but the first fit starts only after the responses and the noise ceiling were computed:
a ceiling too small for the fit was found minutes (hours, for BOLD5000) into the run. :func:`check_memory`
estimates both peaks from the headers, the masks and the feature spaces' dimensions at the start, with the same
terms those checks use, and refuses the run at once, naming the ceiling as the user gave it.
"""

from __future__ import annotations

import logging

from ..core.resources import room_bytes
from ..errors import UsageError
from ..responses.images import response_bytes
from ..responses.masking import combined_mask
from ..responses.runs import run_read_bytes
from . import resources
from .inputs import TaskInputs, user_mask
from .settings import ParticipantSettings

log = logging.getLogger(__name__)


def memory_estimate(inputs: TaskInputs, settings: ParticipantSettings, spaces: list, device: str) -> dict[str, int]:
    """Bytes the task's two peaks need beyond what the process holds: ``responses`` (the trial and image rows and
    one run being read) and ``fit`` (the image rows, the largest space's features and its float64 copies, the
    weights when written; 0 on a GPU, where the ceiling bounds the device's memory). Empty for precomputed betas.
    """
    if not inputs.preprocessed:
        return {}
    preprocessed = inputs.preprocessed
    mask = combined_mask(preprocessed, user_mask(settings.responses, preprocessed[0].bold))
    n_voxels = int(mask.get_fdata(dtype="float32").astype(bool).sum())
    n_trials, n_images = len(inputs.trials), len(inputs.image_ids)
    largest = max(preprocessed, key=lambda p: p.bold.stat().st_size)
    responses = response_bytes(n_trials, n_images, n_voxels) + run_read_bytes(largest, n_voxels)
    fit = 0
    if not str(device).startswith("cuda"):
        dim = max((int(s.dim or 0) for s in spaces), default=0)
        x_bytes = 4 * n_images * dim
        weights = 4 * dim * n_voxels if settings.outputs.save_weights else 0
        fit = 4 * n_images * n_voxels + 3 * x_bytes + weights  # Y, X and the fit's two float64-sized copies
    return {"responses": responses, "fit": fit, "n_voxels": n_voxels}


def check_memory(inputs: TaskInputs, settings: ParticipantSettings, spaces: list, device: str) -> None:
    """Refuse, before any work, a task whose responses or first fit cannot fit under the ceiling.

    Raises
    ------
    UsageError
        Naming the ceiling as given (``--mem 500M``), what the process holds and what each step needs.
    """
    res = settings.resources
    if res.mem_mb is None:
        return
    need = memory_estimate(inputs, settings, spaces, device)
    if not need:
        return
    ceiling, held = res.mem_mb * 1e6, resources.rss_bytes()
    room_fit = need["fit"] + (resources.FIT_MARGIN * ceiling if need["fit"] else 0)
    peak = held + max(need["responses"], room_fit)
    room = room_bytes(ceiling, held)
    log.debug(
        "sub-%s task-%s memory: %.2f GB held, responses %.2f GB, fit %.2f GB, ceiling %.2f GB",
        inputs.subject,
        inputs.task,
        held / 1e9,
        need["responses"] / 1e9,
        room_fit / 1e9,
        ceiling / 1e9,
    )
    if max(need["responses"], room_fit) > room:
        raise UsageError(
            f"{res.mem_label}: sub-{inputs.subject} task-{inputs.task} needs about {peak / 1e9:.3f} GB, more than "
            f"the {ceiling / 1e9:.3f} GB ceiling: the process holds {held / 1e9:.3f} GB, the responses need "
            f"{need['responses'] / 1e9:.3f} GB ({need['n_voxels']} voxels, {len(inputs.trials)} trials, one run "
            f"being read) and a fit {room_fit / 1e9:.3f} GB (with its batches' minimum); raise the ceiling or give "
            "a smaller --mask"
        )
