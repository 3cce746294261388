"""HTML reports, figures and citation boilerplate (reads the outputs; never refits).

- :func:`write_participant_report` -> ``<out>/sub-X.html``
- :func:`write_group_report` -> ``<out>/group.html``
- :func:`write_citation` -> ``<out>/logs/CITATION.{md,html,bib}``
- :func:`build_reports`: all of the above, for the CLI after each analysis level.

Figures are PNG files under ``<out>/figures/``; the pages load nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bids_taskenc.report.citation import write_citation
from bids_taskenc.report.group import write_group_report
from bids_taskenc.report.inputs import list_participants
from bids_taskenc.report.participant import write_participant_report

__all__ = ["build_reports", "write_citation", "write_group_report", "write_participant_report"]

log = logging.getLogger("bids_taskenc")


def build_reports(
    output_dir: str | Path,
    *,
    participants: list[str] | None = None,
    task: str | None = None,
    group: bool = True,
) -> list[Path]:
    """Write the participant reports, the group report (when the group level ran) and the citation files.

    Parameters
    ----------
    output_dir : path
        The bids_taskenc derivatives folder.
    participants : list of str, optional
        Labels (with or without ``sub-``); every participant folder when omitted.
    task : str, optional
        Task label; the first one found when omitted.
    group : bool
        Also write ``group.html`` when the group outputs exist.

    Returns
    -------
    The files written (HTML pages and citation files; figures are not listed).
    """
    out = Path(output_dir)
    labels = list_participants(out) if participants is None else list(participants)
    written = []
    for p in labels:
        try:
            written.append(write_participant_report(out, p, task=task))
        except FileNotFoundError as exc:
            log.warning("participant report skipped: %s", exc)
    if group and (out / "group").is_dir():
        try:
            written.append(write_group_report(out, task=task))
        except FileNotFoundError as exc:
            log.warning("group report skipped: %s", exc)
    if labels:
        try:
            written.extend(write_citation(out, task=task))
        except FileNotFoundError as exc:
            log.warning("citation files skipped: %s", exc)
    return written
