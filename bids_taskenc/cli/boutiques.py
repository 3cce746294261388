"""The Boutiques descriptor of the command line, generated from the argparse parser (never written by hand).

``bids_taskenc-boutiques`` prints it; the repository ships it as ``container/boutiques.json`` and a test checks
the two agree, that ``bosh validate`` accepts it and that ``bosh exec simulate`` builds the documented command.

What Boutiques cannot say: a repeatable option (``--variance-partitioning``) is one use of it here; a counted
switch (``-v``, ``-q``) is one flag (``-vv`` cannot be asked for).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..__about__ import __version__
from .parser import build_parser

#: Path options the run creates (outputs, work): Boutiques ``String``; other paths are input ``File``s.
_CREATED = {"output_dir", "work_dir", "bids_database_dir"}
_SKIPPED = (argparse._HelpAction, argparse._VersionAction)


def _type(action: argparse.Action) -> dict:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._CountAction)):
        return {"type": "Flag"}
    if action.type is int:
        return {"type": "Number", "integer": True}
    if action.type is float:
        return {"type": "Number"}
    if action.type is Path and action.dest not in _CREATED:
        return {"type": "File"}
    return {"type": "String"}


def _input_ids(actions: list[argparse.Action]) -> dict[argparse.Action, str]:
    """Each action's Boutiques id: its ``dest``, or, where two switches share one (``--standardize`` and
    ``--no-standardize``), its long option's name, since Boutiques ids must be unique."""
    dests = [a.dest for a in actions]
    return {
        a: (max(a.option_strings, key=len).lstrip("-").replace("-", "_") if dests.count(a.dest) > 1 else a.dest)
        for a in actions
    }


def _input(action: argparse.Action, ident: str) -> dict:
    """One Boutiques input from one argparse action."""
    entry = {"id": ident, "name": ident.replace("_", " "), **_type(action)}
    entry["value-key"] = f"[{ident.upper()}]"
    entry["optional"] = bool(action.option_strings) and not action.required
    if action.help:
        entry["description"] = " ".join(action.help.split()) % {"default": action.default, "prog": "bids_taskenc"}
    if action.option_strings:
        entry["command-line-flag"] = max(action.option_strings, key=len) if entry["type"] != "Flag" else _flag(action)
    if action.nargs in ("+", "*"):
        entry["list"] = True
        if action.nargs == "+":
            entry["min-list-entries"] = 1
    if action.choices is not None:
        entry["value-choices"] = list(action.choices)
    default = action.default
    if entry["type"] != "Flag" and default is not None and default != argparse.SUPPRESS:
        entry["default-value"] = [_json(v) for v in default] if isinstance(default, list) else _json(default)
    return entry


def _flag(action: argparse.Action) -> str:
    """The long option of a switch (``--verbose``, ``--quiet``)."""
    return max(action.option_strings, key=len)


def _json(value):
    return str(value) if isinstance(value, Path) else value


def descriptor(parser: argparse.ArgumentParser | None = None) -> dict:
    """The Boutiques (schema 0.5) descriptor of ``bids_taskenc``'s command line."""
    parser = parser or build_parser()
    actions = [a for a in parser._actions if not isinstance(a, _SKIPPED)]
    ids = _input_ids(actions)
    inputs = [_input(a, ids[a]) for a in actions]
    groups: list[dict[str, object]] = []
    for group in parser._action_groups:
        members = [ids[a] for a in group._group_actions if not isinstance(a, _SKIPPED) and a.option_strings]
        title = group.title or ""
        if members:
            groups.append(
                {
                    "id": "group_" + title.replace(" ", "_").replace("-", "_"),
                    "name": title,
                    "members": members,
                }
            )
    for i, mutex in enumerate(parser._mutually_exclusive_groups):
        members = [ids[a] for a in mutex._group_actions]
        groups.append(
            {"id": f"exclusive_{i + 1}", "name": " / ".join(members), "members": members, "mutually-exclusive": True}
        )
    return {
        "name": "bids_taskenc",
        "tool-version": __version__,
        "description": " ".join((parser.description or "").split()),
        "schema-version": "0.5",
        "command-line": " ".join(["bids_taskenc", *(i["value-key"] for i in inputs)]),
        "inputs": inputs,
        "groups": groups,
        "output-files": [
            {
                "id": "output_folder",
                "name": "output folder",
                "description": "the BIDS-derivative folder: sub-*/func maps and tables, group/, logs/, reports",
                "path-template": "[OUTPUT_DIR]",
            }
        ],
        "container-image": {"type": "docker", "image": f"bids_taskenc:{__version__}"},
        "suggested-resources": {"cpu-cores": 8, "ram": 32, "walltime-estimate": 7200},
        "tags": {"domain": ["neuroinformatics", "fmri", "bids-app"]},
    }


def render() -> str:
    """The descriptor as the shipped file's text (indented JSON, a final newline)."""
    return json.dumps(descriptor(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``bids_taskenc-boutiques [FILE]``: write the descriptor to FILE, or print it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv:
        from ..core.atomic import atomic_path

        with atomic_path(Path(argv[0])) as tmp:
            Path(tmp).write_text(render(), encoding="utf-8")
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
