"""HTML reports, figures and citation boilerplate (reads the outputs; never refits).

- :func:`write_participant_report` -> ``<out>/sub-X.html``
- :func:`write_group_report` -> ``<out>/group.html``
- :func:`write_citation` -> ``<out>/logs/CITATION.{md,html,bib}``
- :func:`build_reports`: any of the above, for the CLI after each analysis level
  and for ``--reports-only`` / ``--boilerplate-only``.

Figures are PNG files under ``<out>/figures/``; the pages load nothing else.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bids_taskenc.outputs.naming import strip_prefix
from bids_taskenc.report.citation import write_citation
from bids_taskenc.report.group import write_group_report
from bids_taskenc.report.inputs import find_tasks, list_participants
from bids_taskenc.report.participant import write_participant_report

__all__ = ["ReportOutcome", "build_reports", "write_citation", "write_group_report", "write_participant_report"]

log = logging.getLogger("bids_taskenc")


@dataclass
class ReportOutcome:
    """What :func:`build_reports` wrote and what failed.

    ``failures`` maps ``sub-X`` / ``group`` / ``citation`` to a one-line error;
    ``details`` holds the full tracebacks for the log.
    """

    written: list[Path] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def _pycortex_for(subjects: str | Mapping[str, str] | None, participant: str) -> str | None:
    if subjects is None or isinstance(subjects, str):
        return subjects
    return subjects.get(participant)


def build_reports(
    output_dir: str | Path,
    *,
    participants: list[str] | None = None,
    task: str | None = None,
    group: bool = True,
    citation: bool = True,
    pycortex_subject: str | Mapping[str, str] | None = None,
    pycortex_xfm: str | None = None,
) -> ReportOutcome:
    """Write participant reports, the group report and the citation files; never raises for one page.

    Parameters
    ----------
    output_dir : path
        The bids_taskenc derivatives folder.
    participants : list of str, optional
        Labels (with or without ``sub-``) whose pages to write; every participant
        folder when omitted, none when ``[]``.
    task : str, optional
        Task label; the first one found when omitted.
    group : bool
        Also write ``group.html`` (skipped, not failed, when the group level has not run).
    citation : bool
        Also write ``logs/CITATION.*``.
    pycortex_subject : str or mapping, optional
        One pycortex subject for every participant, or participant label -> subject.
    pycortex_xfm : str, optional
        pycortex transform name.

    Returns
    -------
    :class:`ReportOutcome`; every failure is also logged (one ERROR line each).
    """
    out = Path(output_dir)
    labels = list_participants(out) if participants is None else [strip_prefix(p, "sub") for p in participants]
    outcome = ReportOutcome()

    def attempt(key: str, func, *args, **kwargs) -> None:
        try:
            result = func(*args, **kwargs)
        except Exception as exc:  # one bad page must not hide the others; the caller sees every failure
            outcome.failures[key] = f"{type(exc).__name__}: {exc}"
            outcome.details[key] = traceback.format_exc()
            log.error("report %s failed: %s", key, outcome.failures[key])
            log.debug("%s", outcome.details[key])
            return
        outcome.written.extend(result if isinstance(result, list) else [result])

    for p in labels:
        tasks = find_tasks(out, p) if task is None else [task]
        if len(tasks) > 1:
            log.warning(
                "sub-%s has tasks %s; its report covers task %s (choose with --task-label)",
                p,
                ", ".join(tasks),
                tasks[0],
            )
        attempt(
            f"sub-{p}",
            write_participant_report,
            out,
            p,
            task=task,
            pycortex_subject=_pycortex_for(pycortex_subject, p),
            pycortex_xfm=pycortex_xfm,
        )
    if group and (out / "group").is_dir():
        attempt("group", write_group_report, out, task=task)
    if citation:
        attempt("citation", write_citation, out, task=task)
    return outcome
