"""File-name validation of the input dataset with the BIDS schema, honouring ``.bidsignore``.

The official validator (``bids-validator-deno``, 2.x/3.x) checks every file
name against the filename rules of the BIDS schema and skips what
``.bidsignore`` lists (gitignore-style patterns) plus a few folders it always
ignores. This module applies the same rules offline:

* the rules come from the schema bundled with ``bidsschematools`` (the
  schema's own package, which pybids depends on), turned into regular
  expressions by ``bidsschematools.rules.regexify_all``;
* ``.bidsignore`` is matched with ``pathspec``'s gitignore implementation
  (the validator uses the npm ``ignore`` package, also gitignore semantics),
  after the validator's default ignores;
* only files inside ``sub-*`` folders are checked, as before: a run reads
  nothing else from the raw dataset, and the top level is where datasets keep
  files the schema leaves open.

It needs neither the official validator nor a network. The tests run
``bids-validator-deno`` (``test`` extra) on the same datasets and check that
both reject the same files.
"""

from __future__ import annotations

import logging
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec

log = logging.getLogger(__name__)

#: What the official validator (3.x) ignores in every dataset before ``.bidsignore``: dot files anywhere,
#: four top-level folders, and ``derivatives/`` folders at any depth (nested datasets, validated apart).
DEFAULT_IGNORES = (".*", "/sourcedata/", "/code/", "/stimuli/", "/log/", "derivatives/")


@lru_cache(maxsize=1)
def _schema_regexes() -> tuple[re.Pattern, ...]:
    """The schema's filename rules (common and raw) as compiled regular expressions, matched on the relative path."""
    import bidsschematools.schema  # noqa: F401  (rules.regexify_all needs it imported; 2.0 imports it lazily)
    from bidsschematools.rules import regexify_all

    rules, _schema = regexify_all()
    return tuple(re.compile(rule["regex"]) for rule in rules)


def schema_version() -> str:
    """``'<schema version> (BIDS <version>)'`` of the bundled schema, for messages."""
    from bidsschematools.schema import load_schema

    schema = load_schema()
    return f"{schema.schema_version} (BIDS {schema.bids_version})"


def ignore_spec(bids_dir: str | Path) -> pathspec.GitIgnoreSpec:
    """The validator's default ignores plus the dataset's ``.bidsignore`` as a ``pathspec`` matcher."""
    import pathspec

    lines = list(DEFAULT_IGNORES)
    ignore_file = Path(bids_dir) / ".bidsignore"
    if ignore_file.is_file():
        lines += ignore_file.read_text().splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def is_valid_name(relative_path: str) -> bool:
    """True when a dataset-relative path (``sub-X/ses-Y/func/...``, no leading slash) matches a schema rule."""
    return any(regex.match(relative_path) for regex in _schema_regexes())


def invalid_file_names(bids_dir: str | Path) -> list[str]:
    """Files in ``sub-*`` whose names no BIDS schema rule matches and ``.bidsignore`` does not list.

    Returns dataset-relative paths with a leading ``/`` (as the validator
    prints them), sorted.
    """
    bids_dir = Path(bids_dir)
    spec = ignore_spec(bids_dir)
    bad = []
    for sub_dir in sorted(p for p in bids_dir.glob("sub-*") if p.is_dir()):
        for root, dirs, files in os.walk(sub_dir):
            rel_root = Path(root).relative_to(bids_dir).as_posix()
            # an ignored folder is not entered (gitignore: nothing below it can be re-included)
            dirs[:] = sorted(d for d in dirs if not spec.match_file(f"{rel_root}/{d}/"))
            for name in sorted(files):
                rel = f"{rel_root}/{name}"
                if spec.match_file(rel) or is_valid_name(rel):
                    continue
                bad.append("/" + rel)
    return sorted(bad)
