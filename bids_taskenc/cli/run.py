"""Entry point of ``bids_taskenc`` and ``python -m bids_taskenc``.

Turns every exception of ours into one line on stderr and its BIDS-Apps exit
code (the one table: :data:`bids_taskenc.errors.EXIT_CODES`); runs participants one after another and
reports, at exit, which succeeded and which failed.

After each participant its HTML report (``sub-X.html``) and the citation
files (``logs/CITATION.*``) are written, after the group level ``group.html``;
``--reports-only`` and ``--boilerplate-only`` write them from existing outputs
without fitting, ``--no-reports`` skips them. A report that cannot be written
is logged as an ERROR with its cause and listed in the summary, and the exit
code is 1 even though the analysis outputs are complete (an unnoticed missing
report would hide a problem; ``--reports-only`` rebuilds it without refitting).

Faults stay with their participant: any exception while one participant runs
(a truncated NIfTI, a corrupt table, a full disk) becomes one ERROR line naming
the file and what is wrong, its traceback goes to a crash file
``logs/crash-<time>-<participant>-<uuid>.txt``, the other participants go on
(unless ``--stop-on-first-crash``), the summary lists it, and the exit code is
1. Every run that gets as far as the output folder writes its whole log (DEBUG
included) to ``logs/bids_taskenc-<time>.log`` (names: :mod:`bids_taskenc.outputs.logs`).
"""

from __future__ import annotations

import logging
import platform
import shlex
import sys
import time
from pathlib import Path

from ..__about__ import __version__
from ..core.versions import software_versions
from ..errors import EXIT_FAILURE, EXIT_OK, TaskencError, exit_code, listed_exit_code
from ..workflow.dataset import check_output_dir, command_line
from ..workflow.faults import describe_error
from ..workflow.resources import apply_resources as _apply_resources
from ..workflow.resources import available_cpus
from ..workflow.timing import Laps
from .cluster import clean_work_dir, monitored
from .runlog import RunLog, setup_logging, write_crash_file
from .signals import Terminated, signal_name, terminating_like_interrupt

log = logging.getLogger("bids_taskenc")


#: The current run's log (set by :func:`main`).
_run_log: RunLog | None = None


def _say(line: str, level: int = logging.INFO) -> None:
    """Print a summary line on stderr and keep it in the run log."""
    print(line, file=sys.stderr)
    if _run_log is not None:
        _run_log.note(line, level)


def _open_run_log(output_dir: Path) -> None:
    if _run_log is not None:
        path = _run_log.open(output_dir)
        if path is not None:
            log.debug("run log: %s", path)


def _describe(exc: BaseException) -> str:
    """One line for an exception: the file and what is wrong where known, else its type and message."""
    return describe_error(exc)


def apply_resources(args) -> dict:
    """``--nprocs`` / ``--omp-nthreads`` / ``--mem`` applied to this process; the record for the log and sidecars.

    ``--nprocs`` defaults to :func:`available_cpus`, written back into ``args`` so the run's ``Config`` record
    and every later step see the number used (see :func:`bids_taskenc.workflow.resources.apply_resources`).
    """

    args.nprocs = args.nprocs or available_cpus()
    from .settings import resource_settings  # lazy: the settings import the workflow

    return _apply_resources(resource_settings(args))


def _config_record(args) -> dict:
    skip = {"bids_dir", "output_dir", "mem_given_as"}  # the last: for messages only (how --mem was typed)
    return {
        k: (
            str(v)
            if isinstance(v, Path)
            else [str(x) for x in v]
            if isinstance(v, list) and v and isinstance(v[0], Path)
            else v
        )
        for k, v in sorted(vars(args).items())
        if k not in skip
    }


def pycortex_subjects(values: list[str] | None) -> str | dict | None:
    """``--pycortex-subject`` values -> one subject for all, ``{label: subject}``, or None."""
    if not values:
        return None
    if "=" not in values[0]:
        return values[0]
    return {
        label[4:] if label.startswith("sub-") else label: name for label, _, name in (v.partition("=") for v in values)
    }


def build_level_reports(args, output_dir: Path, *, participants: list[str] | None, group: bool):
    """Reports after (or instead of) an analysis level; returns a ReportOutcome.

    The reports read the outputs only; a failure to write one is logged as an
    ERROR with its cause, summarised at exit, and makes the exit code 1 (the
    analysis outputs stay as written; ``--reports-only`` rebuilds the reports).
    """
    from ..report import build_reports

    task = args.task_label[0] if args.task_label else None
    return build_reports(
        output_dir,
        participants=participants,
        task=task,
        group=group,
        citation=True,
        pycortex_subject=pycortex_subjects(args.pycortex_subject),
        pycortex_xfm=args.pycortex_xfm,
    )


def _print_report_outcome(outcome) -> None:
    pages = [p for p in outcome.written if p.suffix == ".html" and p.parent.name != "logs"]
    if pages:
        _say(f"  reports: {', '.join(p.name for p in pages)}; citation files in logs/")
    for key, why in outcome.failures.items():
        _say(
            f"  report {key}: FAILED: {why} (the analysis outputs are complete; rebuild with --reports-only)",
            logging.ERROR,
        )


def run_reports_only(args) -> int:
    """``--reports-only`` / ``--boilerplate-only``: write reports and/or citation files from existing outputs."""
    from ..errors import InputMissingError
    from ..report import write_citation
    from ..report.inputs import list_participants

    bids_dir = args.bids_dir.resolve()
    output_dir = _output_dir_of_outputs(args, bids_dir)
    present = list_participants(output_dir) if output_dir.is_dir() else []
    if not present:
        raise InputMissingError(f"{output_dir}: no participant outputs to report on (run the participant level first)")
    _open_run_log(output_dir)
    task = args.task_label[0] if args.task_label else None
    if args.boilerplate_only:
        try:
            written = write_citation(output_dir, task=task)
        except FileNotFoundError as exc:
            raise InputMissingError(str(exc)) from exc
        print(f"bids_taskenc: wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
        return EXIT_OK
    if args.analysis_level == "participant":
        wanted = [p[4:] if p.startswith("sub-") else p for p in args.participant_label or []] or present
        missing = sorted(set(wanted) - set(present))
        if missing:
            raise InputMissingError(f"{output_dir}: no outputs for sub-{', sub-'.join(missing)}")
        outcome = build_level_reports(args, output_dir, participants=wanted, group=False)
    else:
        if not (output_dir / "group").is_dir():
            raise InputMissingError(f"{output_dir / 'group'}: no group outputs (run the group level first)")
        outcome = build_level_reports(args, output_dir, participants=[], group=True)
    print(
        f"bids_taskenc {args.analysis_level} --reports-only: {len(outcome.written)} files written, "
        f"{len(outcome.failures)} failed",
        file=sys.stderr,
    )
    _print_report_outcome(outcome)
    return EXIT_FAILURE if outcome.failures else EXIT_OK


def _log_run_header(argv: list[str], args, resources: dict) -> None:
    """The run log opens with what reproduces the run: command, settings, resources, versions."""
    import json

    log.info("command: %s", shlex.join(["bids_taskenc", *argv]))
    # the long lines go to the run log (DEBUG), on stderr only with -vv
    log.debug("settings: %s", json.dumps(_config_record(args), default=str, sort_keys=True))
    log.info("resources: %s", json.dumps(resources, sort_keys=True))
    log.debug("versions: %s", json.dumps(software_versions(), sort_keys=True))
    log.debug("host: %s, %s", platform.node(), platform.platform())


def run_participant_level(args, argv: list[str]) -> int:
    """The participant level: the dataset opened once, each participant run in turn, its faults kept to it."""
    from ..workflow.dataset import open_dataset

    laps = Laps("participant level")
    from .settings import participant_settings

    settings = participant_settings(args)
    dataset = open_dataset(
        args.bids_dir,
        args.output_dir,
        settings,
        participants=args.participant_label,
        command_line=command_line(argv),
        config=_config_record(args),
        laps=laps,
    )
    _open_run_log(dataset.output_dir)
    laps.lap("feature spaces and derivatives")
    subjects = dataset.participants
    log.info(
        "bids_taskenc %s: %d participant(s), space %s, %d feature space(s), device %s",
        __version__,
        len(subjects),
        dataset.space,
        len(dataset.spaces),
        dataset.device,
    )
    results, failures, crashes, reports = _run_each(args, argv, settings, dataset, laps)
    return _participant_summary(dataset, subjects, results, failures, crashes, reports)


def _run_each(args, argv: list[str], settings, dataset, laps):
    """Every participant in turn, and its report; an exception stays with its participant (a crash file, an
    ERROR line), unless it is the only participant's own error, whose exit code the run keeps."""
    from ..workflow.participant import run_participant

    subjects = dataset.participants
    output_dir = dataset.output_dir
    results, failures, crashes = {}, {}, {}
    reports = None  # ReportOutcome of this run's participant pages and citation files
    for subject in subjects:
        try:
            results[subject] = run_participant(dataset.bids_dir, output_dir, subject, settings, dataset=dataset)
            laps.lap(f"sub-{subject}")
            if not args.no_reports:
                outcome = build_level_reports(args, output_dir, participants=[subject], group=False)
                reports = outcome if reports is None else _merge(reports, outcome)
                laps.lap(f"sub-{subject} report")
        except Exception as exc:  # one participant's fault never ends the others' run
            laps.lap(f"sub-{subject} (failed)")
            failures[subject] = exc
            crashes[subject] = write_crash_file(output_dir, subject, exc, argv)
            log.debug("sub-%s failed", subject, exc_info=exc)
            if len(subjects) == 1 and listed_exit_code(exc) is not None:
                raise  # the only participant's own error: the run keeps its exit code
            log.error(
                "sub-%s failed: %s%s",
                subject,
                _describe(exc),
                f" (traceback: {crashes[subject]})" if crashes[subject] else "",
            )
            if args.stop_on_first_crash:
                skipped = subjects[subjects.index(subject) + 1 :]
                if skipped:
                    log.error("--stop-on-first-crash: sub-%s not processed", ", sub-".join(skipped))
                break
    return results, failures, crashes, reports


def _participant_summary(dataset, subjects, results, failures, crashes, reports) -> int:
    """The run's summary lines (stderr and the run log) and its exit code."""
    _say(f"bids_taskenc participant: {len(results)} succeeded, {len(failures)} failed; outputs in {dataset.output_dir}")
    for subject, res in results.items():
        _say(f"  sub-{subject}: ok ({res.seconds} s)")
    for subject, exc in failures.items():
        where = f" (traceback in {crashes[subject]})" if crashes.get(subject) else ""
        _say(f"  sub-{subject}: FAILED: {_describe(exc)}{where}", logging.ERROR)
    not_run = [s_ for s_ in subjects if s_ not in results and s_ not in failures]
    if not_run:
        _say(f"  not processed (--stop-on-first-crash): sub-{', sub-'.join(not_run)}", logging.ERROR)
    if reports is not None:
        _print_report_outcome(reports)
    if failures or (reports is not None and reports.failures):
        return EXIT_FAILURE
    return EXIT_OK


def _merge(total, outcome):
    """One participant's report outcome added to the run's (the citation files are rewritten each time)."""
    total.written.extend(p for p in outcome.written if p not in total.written)
    total.failures.pop("citation", None)
    total.failures.update(outcome.failures)
    total.details.update(outcome.details)
    return total


def _output_dir_of_outputs(args, bids_dir: Path) -> Path:
    """The output folder of a run over existing outputs (group level, reports), checked before the run log is
    opened there: not an input folder (the ROI folder, the dataset), not another pipeline's dataset."""
    from ..workflow.dataset import check_output_owner, resolve_roi_dir
    from ..workflow.folders import read_folders

    roi_dir = resolve_roi_dir(args.roi_dir, bids_dir)
    reads = read_folders(bids_dir, roi_dir=roi_dir, roi_dir_given=args.roi_dir is not None)
    output_dir = check_output_dir(bids_dir, args.output_dir, reads)
    check_output_owner(output_dir, [])
    return output_dir


def run_group_level(args, argv: list[str]) -> int:
    from ..errors import InputMissingError
    from ..workflow.group import run_group
    from ..workflow.timing import Laps
    from .settings import group_settings

    laps = Laps("group level")
    bids_dir = args.bids_dir.resolve()
    output_dir = _output_dir_of_outputs(args, bids_dir)
    if not output_dir.is_dir():
        raise InputMissingError(f"{output_dir}: no participant outputs (run the participant level first)")
    _open_run_log(output_dir)
    outcome = run_group(bids_dir, output_dir, group_settings(args, argv))  # a GroupInputError: exit 66
    laps.lap("group analysis")
    _say(f"bids_taskenc group: wrote {len(outcome.files)} files to {output_dir / 'group'}")
    if args.no_reports:
        return EXIT_OK
    reports = build_level_reports(args, output_dir, participants=[], group=True)
    laps.lap("group report")
    _print_report_outcome(reports)
    return EXIT_FAILURE if reports.failures else EXIT_OK


def _ended_by(exc: Exception, args, argv: list[str]) -> int:
    """One line for the exception that ended the run, and its exit code (:data:`~bids_taskenc.errors.EXIT_CODES`);
    an exception of no listed class (a bug, an unforeseen input) also leaves a crash file with its traceback."""
    if listed_exit_code(exc) is not None:
        log.debug("error", exc_info=exc)
        _say(f"bids_taskenc: error: {_describe(exc)}", logging.ERROR)
        return exit_code(exc)
    out = args.output_dir.resolve()
    who = args.analysis_level if args.analysis_level == "group" else "run"
    crash = write_crash_file(out, who, exc, argv) if out.is_dir() else None
    log.debug("unexpected error", exc_info=exc)
    where = f"traceback in {crash}" if crash else "rerun with -vv for the traceback"
    _say(f"bids_taskenc: error: {_describe(exc)} ({where})", logging.ERROR)
    return EXIT_FAILURE


def main(argv: list[str] | None = None) -> int:
    """Run the BIDS-App; returns the exit code."""
    from .parser import parse_args

    global _run_log
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
    except TaskencError as exc:
        print(f"bids_taskenc: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    setup_logging(args.verbose - args.quiet)
    _run_log = run_log = RunLog()
    t0 = time.perf_counter()
    with terminating_like_interrupt():
        return _main(args, argv, t0, run_log)


def _main(args, argv: list[str], t0: float, run_log: RunLog) -> int:
    """The run after its options are parsed; SIGTERM/SIGHUP arrive here as :class:`Terminated` (see
    :mod:`bids_taskenc.cli.signals`) and leave as Ctrl-C does: temporary files removed, one line, its code."""
    global _run_log
    try:
        resources = apply_resources(args)
        _log_run_header(argv, args, resources)
        if args.clean_workdir:
            clean_work_dir(args.work_dir, args.bids_dir, args.output_dir)
        with monitored(args, run_log.started, lambda: run_log.path):
            if args.reports_only or args.boilerplate_only:
                code = run_reports_only(args)
            elif args.analysis_level == "participant":
                code = run_participant_level(args, argv)
            else:
                code = run_group_level(args, argv)
    except Terminated as exc:
        _say(f"bids_taskenc: terminated by {signal_name(exc.signum)}; temporary files removed", logging.ERROR)
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        _say("bids_taskenc: interrupted", logging.ERROR)
        return exit_code(exc)
    except Exception as exc:
        return _ended_by(exc, args, argv)
    finally:
        from ..workflow import timing

        for line in timing.summary_lines():
            log.debug("timing: %s", line)
        timing.reset()
        log.info("done in %.1f s", time.perf_counter() - t0)
        run_log.close()
        _run_log = None
    return code


if __name__ == "__main__":
    raise SystemExit(main())
