"""Which run logs and crash files a report links to (``logs/`` of the output folder).

A run log (:func:`bids_taskenc.outputs.logs.run_logs`) starts with the line
``command: bids_taskenc BIDS_DIR OUTPUT_DIR LEVEL ...``; a page links the
newest log of its level (for a participant page: of a run that processed that
participant) that computed the outputs (a ``--reports-only`` rebuild's log only
when there is no other), and the crash files of that participant (or of the group level),
by paths relative to the output folder, where the pages live. Nothing is
linked when nothing was written (a run from before run logs existed, or one
that failed before it had an output folder).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..outputs.logs import crash_files, run_logs

_COMMAND = "command: "


@dataclass
class LogLinks:
    """``run_log``: relative path of the newest matching run log (or None); ``crashes``: crash files."""

    run_log: str | None = None
    crashes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.run_log is not None or bool(self.crashes)


def _command(path: Path) -> list[str] | None:
    """The logged command of a run log, split as the shell would; None when it has no command line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh):
                if n > 200:
                    return None
                at = line.find(_COMMAND)
                if at >= 0 and "bids_taskenc" in line[at:]:
                    try:
                        return shlex.split(line[at + len(_COMMAND) :].strip())
                    except ValueError:
                        return None
    except OSError:
        return None
    return None


def _matches(words: list[str], level: str, participant: str | None) -> bool:
    # the analysis level: the first 'participant'/'group' that is not an option's value
    found = next(
        (
            w
            for i, w in enumerate(words)
            if i >= 3 and w in ("participant", "group") and not words[i - 1].startswith("-")
        ),
        None,
    )
    if found != level:
        return False
    if participant is None or "--participant-label" not in words and "--participant_label" not in words:
        return True  # a run without a selection processed every participant
    flag = next(i for i, w in enumerate(words) if w in ("--participant-label", "--participant_label"))
    labels = []
    for w in words[flag + 1 :]:
        if w.startswith("-"):
            break
        labels.append(w[4:] if w.startswith("sub-") else w)
    return participant in labels


def log_links(output_dir: str | Path, level: str, participant: str | None = None) -> LogLinks:
    """Links for a page of ``level`` (``participant`` or ``group``) in ``output_dir``."""
    out = Path(output_dir)
    links = LogLinks()
    commands = [
        (p, words)
        for p in reversed(run_logs(out))
        if (words := _command(p)) is not None and _matches(words, level, participant)
    ]
    # the run that computed the outputs, rather than a later --reports-only rebuild
    computing = [p for p, words in commands if not {"--reports-only", "--boilerplate-only"} & set(words)]
    matching = [p for p, _ in commands]
    if computing or matching:
        links.run_log = (computing or matching)[0].relative_to(out).as_posix()
    who = participant if level == "participant" else "group"
    if who:
        label = "".join(c for c in who if c.isalnum())
        links.crashes = [p.relative_to(out).as_posix() for p in crash_files(out) if p.name.split("-")[3:4] == [label]]
    return links


#: A run-log line: ``2026-12-04 22:10:40 WARNING bids_taskenc.workflow.fit: message`` (``cli/run.py``'s format).
_RECORD_RE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (DEBUG|INFO|WARNING|ERROR|CRITICAL) ([\w.]+): ?(.*)$")
_SUBJECT_RE = re.compile(r"\bsub-([A-Za-z0-9]+)")
#: Levels a page lists.
SHOWN_LEVELS = ("WARNING", "ERROR", "CRITICAL")


@dataclass
class LogRecord:
    """One WARNING (or worse) of a run log: when, how bad, which module, what (continuation lines included)."""

    time: str
    level: str
    logger: str
    message: str


def run_log_warnings(output_dir: str | Path, links: LogLinks, participant: str | None = None) -> list[LogRecord]:
    """The WARNING, ERROR and CRITICAL records of the page's run log (``links.run_log``), in the log's order.

    For a participant page (``participant`` given) the records naming another participant (``sub-<label>``) are
    left out: a run of several participants logs them all in one file. Records naming none (the run's own, e.g.
    a dataset quirk) stay. ``[]`` without a run log.
    """
    if links.run_log is None:
        return []
    try:
        lines = (Path(output_dir) / links.run_log).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    records: list[LogRecord] = []
    current: LogRecord | None = None
    for line in lines:
        match = _RECORD_RE.match(line)
        if match:
            current = LogRecord(*match.groups()) if match.group(2) in SHOWN_LEVELS else None
            if current is not None:
                records.append(current)
        elif current is not None:  # a continuation line of a multi-line message
            current.message += "\n" + line
    if participant is None:
        return records
    return [r for r in records if set(_SUBJECT_RE.findall(r.message)) <= {participant}]
