"""``--config FILE``: a TOML file of options, checked and converted as argparse would the same options given on the
command line (keys are the long option names with ``_`` or ``-``: ``cv_folds = 5``); the command line wins."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..core.textfiles import UnreadableFileError, read_toml
from ..errors import InputMissingError, UsageError


def config_defaults(parser: argparse.ArgumentParser, path: Path) -> dict:
    if not path.is_file():
        raise InputMissingError(f"{path}: --config file does not exist")
    try:
        data = read_toml(path, "--config file")
    except UnreadableFileError as exc:
        raise UsageError(str(exc)) from exc
    known = {a.dest for a in parser._actions}
    out = {}
    for key, value in data.items():
        dest = key.replace("-", "_")
        if dest not in known or dest in ("bids_dir", "output_dir", "analysis_level", "config", "help", "version"):
            raise UsageError(f"{path}: unknown option {key!r}")
        action = next(a for a in parser._actions if a.dest == dest)
        out[dest] = _config_value(path, key, action, value)
    return out


def _config_value(path: Path, key: str, action: argparse.Action | SimpleNamespace, value: Any) -> Any:
    """A TOML value checked and converted as argparse would the same option on the command line."""

    def bad(expected: str) -> UsageError:
        return UsageError(f"{path}: {key} = {value!r}: expected {expected}")

    if isinstance(action, argparse._AppendAction):
        # a repeatable option: one list of values per use, e.g. [["group:3D", "group:2D"]]
        if not isinstance(value, list) or not value or not all(isinstance(v, list) for v in value):
            raise bad(f"a list of lists, one per use of the option, e.g. {key} = [[...]]")
        one_use = SimpleNamespace(nargs=action.nargs, type=action.type, choices=action.choices)
        return [_config_value(path, key, one_use, v) for v in value]
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(action, argparse._CountAction):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad("a whole number >= 0")
        return value
    many = action.nargs in ("+", "*")
    if many:
        if not isinstance(value, list):
            raise bad(f"a list, e.g. {key} = [{value!r}]")
        if action.nargs == "+" and not value:
            raise bad("a list of at least one value")
        items = value
    else:
        if isinstance(value, (list, dict)):
            raise bad("a single value")
        items = [value]
    conv: Callable[[Any], Any] = action.type if callable(action.type) else str
    converted = []
    for item in items:
        if isinstance(item, (list, dict, bool)) and conv is not str:
            raise bad(f"{'a list of ' if many else ''}{getattr(conv, '__name__', 'text')} value{'s' if many else ''}")
        if conv is int and not isinstance(item, int):
            raise bad("whole numbers" if many else "a whole number")
        if conv is float and not isinstance(item, (int, float)):
            raise bad("numbers" if many else "a number")
        if conv in (str, Path) and not isinstance(item, (str, int)) or isinstance(item, (dict, list)):
            raise bad("text")
        try:
            item = conv(item) if conv is not str else str(item)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise bad(str(exc)) from exc
        if action.choices is not None and item not in action.choices:
            raise bad(f"one of {', '.join(map(str, action.choices))}")
        converted.append(item)
    return converted if many else converted[0]
