"""Small text inputs (JSON, TOML) read with one message naming the file for every way they can be unreadable.

Undecodable bytes (a file saved as Latin-1, a binary file given by mistake), syntax errors and values nested
deeper than the parsers recurse (``[[[[...]]]]`` thousands deep: a ``RecursionError`` otherwise) all become an
:class:`UnreadableFileError` whose message starts with the path; the caller raises it as its layer's error
(exit code), so the user sees one line naming the file and what is wrong, never a traceback.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any


class UnreadableFileError(ValueError):
    """A text input that cannot be read or parsed; the message names the file and why."""


def read_text(path: str | Path, what: str) -> str:
    """The file's text (UTF-8, a BOM allowed)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"{path}: {what} cannot be read ({exc.strerror or exc})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(
            f"{path}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def _parse(parse, path: Path, what: str, language: str) -> Any:
    text = read_text(path, what)
    try:
        return parse(text)
    except RecursionError:
        raise UnreadableFileError(f"{path}: {what} nests values deeper than can be read; not valid input") from None
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        raise UnreadableFileError(f"{path}: {what} is not valid {language} ({exc})") from None


def read_json(path: str | Path, what: str) -> Any:
    """The parsed JSON value of the file."""
    return _parse(json.loads, Path(path), what, "JSON")


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages: ``'an array'``, ``'a string'``."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    names = {list: "an array", str: "a string", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def read_json_object(path: str | Path, what: str) -> dict:
    """The file's JSON, which must be an object (``{...}``)."""
    value = read_json(path, what)
    if not isinstance(value, dict):
        raise UnreadableFileError(f"{path}: {what} must be a JSON object ({{...}}), not {json_type(value)}")
    return value


def read_toml(path: str | Path, what: str) -> dict:
    """The parsed TOML table of the file."""
    return _parse(tomllib.loads, Path(path), what, "TOML")
