"""``bids_taskenc-models``: fill and check the Taskonomy weights store (e.g. in a container build).

    bids_taskenc-models list   [--tasks T ...] [--dir DIR]
    bids_taskenc-models fetch  [--tasks T ...] [--dir DIR] [--offline]
    bids_taskenc-models verify [--tasks T ...] [--dir DIR]

``--tasks`` defaults to the paper's 21 tasks; ``all`` means all 25 published
encoders. ``--dir`` defaults to ``$BIDS_TASKENC_MODELS`` or
``$XDG_CACHE_HOME/bids_taskenc/models``; downloads come from
``$BIDS_TASKENC_MODELS_URL`` when set. Exit status: 0 all good, 1 a file is
missing, corrupt or failed to download, 64 usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager

from ..errors import EXIT_FAILURE as EXIT_FAIL
from ..errors import EXIT_OK, EXIT_USAGE
from ..features import store
from ..features.base import FeatureError
from ..features.taskonomy import (
    ALL_TASKS,
    ENCODER_SHA256,
    MULTI_VIEW_TASKS,
    PAPER_TASKS,
    TASK_GROUPS,
    TASK_INPUT,
    canonical_task,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


@contextmanager
def _quiet_custom_weights():
    """This command prints each file's status itself: the store's "custom weights" WARNING would repeat it."""
    logger = logging.getLogger(store.__name__)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bids_taskenc-models", description="Fetch, list and verify Taskonomy encoder weights.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_ in (
        ("fetch", "download missing weights (sha256-checked)"),
        ("list", "show the store's state per task"),
        ("verify", "re-hash every present file against its name"),
    ):
        c = sub.add_parser(name, help=help_)
        c.add_argument("--tasks", nargs="+", metavar="TASK", help="task names (default: the paper's 21; 'all': all 25)")
        c.add_argument("--dir", metavar="DIR", help="weights store (default: $BIDS_TASKENC_MODELS or the user cache)")
        c.add_argument("--offline", action="store_true", help="never download; report what is missing")
    return p


def _tasks(names: list[str] | None) -> list[str]:
    if not names:
        return list(PAPER_TASKS)
    if names == ["all"]:
        return list(ALL_TASKS)
    return list(dict.fromkeys(canonical_task(n) for n in names))


def _status(task: str, directory) -> tuple[str, str]:
    found = store.candidates(task, directory)
    if not found:
        return "missing", store.published_filename(task)
    if len(found) > 1:
        return "ambiguous", ", ".join(p.name for p, _ in found)
    path, digest = found[0]
    return ("published" if digest == ENCODER_SHA256[task] else "custom"), path.name


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        tasks = _tasks(args.tasks)
    except FeatureError as exc:
        print(f"bids_taskenc-models: {exc}", file=sys.stderr)
        return EXIT_USAGE
    directory = store.weights_dir(args.dir)
    print(f"weights store: {directory}")
    problems = 0
    if args.command == "list":
        for task in tasks:
            state, name = _status(task, directory)
            use = (
                "multi-view (not a feature space)"
                if task in MULTI_VIEW_TASKS
                else f"{TASK_GROUPS[task]}, input {TASK_INPUT[task]}"
            )
            print(f"{task:18s} {state:10s} {use:32s} {name}")
        return EXIT_OK
    for task in tasks:
        try:
            with _quiet_custom_weights():
                if args.command == "verify":
                    state, name = _status(task, directory)
                    if state == "missing":
                        print(f"MISSING  {task}: {store.how_to_get(task, directory)}")
                        problems += 1
                        continue
                    if state == "ambiguous":
                        raise FeatureError(f"{directory}: several files for {task}: {name}; keep exactly one")
                    path, digest = store.candidates(task, directory)[0]
                    store.verify_file(path, digest, force=True)
                    print(f"OK       {task}: {path.name} ({state})")
                else:
                    wf = store.ensure_weights(task, directory, offline=args.offline)
                    print(f"OK       {task}: {wf.path.name} ({'published' if wf.published else 'custom'})")
        except FeatureError as exc:
            print(f"FAILED   {task}: {exc}", file=sys.stderr)
            problems += 1
    if problems:
        print(f"{problems} of {len(tasks)} tasks have problems", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
