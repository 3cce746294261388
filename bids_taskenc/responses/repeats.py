"""Which trials of a repeated image make its response: all of them averaged, or one showing.

:data:`REPEATS` is the registry the command line (``--repeats``), the settings and the docs read. Every response
model gives one row per trial; :func:`~bids_taskenc.responses.images.average_repeats` averages an image's trials
(``average``, our default). :func:`select_showings` instead takes one trial per image:

* ``first``: the first showing in time;
* ``drop-repeats``: the showing the events do not mark as a repeat (BOLD5000's ``ImgType`` without ``rep_``),
  which is what Wang et al.'s (2019) code kept (it dropped every ``rep_`` trial). In BOLD5000 that is not always
  the first showing (77 of CSI1's 113 repeated images have ``rep_`` on their first). An image whose trials are
  not marked so that exactly one is left (events without ``ImgType``, or every showing marked) keeps its first
  showing, and the run log counts them.

The single trials stay in :attr:`Responses.trial_data` for the noise ceiling, whose test responses then are
single trials (:attr:`Responses.n_averaged` is 1 for every image).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from .base import Responses

log = logging.getLogger(__name__)

from .options import REPEATS as REPEATS  # noqa: E402  (its home is .options)


def chosen_trials(responses: Responses, rule: str) -> np.ndarray:
    """Row of ``responses.trial_data`` making each image's response under ``rule`` (not ``average``), (n_images,)."""
    if rule not in ("first", "drop-repeats"):
        raise ValueError(f"repeats rule must be first or drop-repeats here, got {rule!r}")
    index = np.asarray(responses.trial_image_index)
    n_images = len(responses.image_ids)
    trial_order = np.arange(len(index))
    first = np.full(n_images, len(index))
    np.minimum.at(first, index, trial_order)
    if rule == "first":
        return first
    marked = responses.trials.get("declared_repeat")
    if marked is None:
        log.warning("--repeats drop-repeats: the events mark no repeats (no ImgType column); kept every first showing")
        return first
    unmarked = ~np.asarray(marked, dtype=bool)
    n_unmarked = np.bincount(index[unmarked], minlength=n_images)
    chosen = first.copy()
    one = np.flatnonzero(n_unmarked[index] == 1)
    keep = one[unmarked[one]]
    chosen[index[keep]] = keep
    fallback = int(((n_unmarked != 1) & (np.bincount(index, minlength=n_images) > 1)).sum())
    if fallback:
        log.warning(
            "--repeats drop-repeats: %d repeated image(s) have not exactly one showing without 'rep_' in the "
            "events; their first showing was kept",
            fallback,
        )
    return chosen


def select_showings(responses: Responses, rule: str) -> Responses:
    """``responses`` with each image's response taken as ``rule`` says (:data:`REPEATS`); ``average`` returns it.

    The rows of ``data`` become single trials (float32, as given); ``n_averaged`` is 1 for every image and the
    provenance records ``Repeats`` and ``NImagesRepeatsDropped``.
    """
    if rule not in REPEATS:
        raise ValueError(f"repeats rule must be one of {', '.join(REPEATS)}, got {rule!r}")
    if rule == "average":
        return dataclasses.replace(responses, provenance={**responses.provenance, "Repeats": rule})
    if responses.trial_data is None:
        raise ValueError("the single trials were released; select the showings before the noise ceiling")
    rows = chosen_trials(responses, rule)
    data = np.asarray(responses.trial_data[rows], dtype=np.float32)
    counts = np.asarray(responses.n_presentations)
    provenance = {
        **responses.provenance,
        "Repeats": rule,
        "NImagesRepeatsDropped": int((counts > 1).sum()),
        "NTrialsDropped": int((counts - 1).sum()),
    }
    return dataclasses.replace(responses, data=data, n_averaged=np.ones(len(rows), np.int64), provenance=provenance)
