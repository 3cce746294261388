"""``--bids-filter-file``: pybids entity filters per kind of file, as fMRIPrep reads them.

The file is JSON mapping a *query name* to the entities its files must have, e.g.
``{"bold": {"session": ["01", "02"], "acquisition": null}, "preproc": {"res": "2"}}``. ``null`` means
"the file has no such entity" and ``"*"`` "the file has it, any value" (pybids' ``Query.NONE`` and
``Query.ANY``, as in fMRIPrep). The queries this app reads:

``bold``
    the raw BOLD runs (and so the events and preprocessed files of the runs it keeps);
``events``
    the events file of each selected run;
``preproc``
    the preprocessed BOLD and brain mask in the derivatives (e.g. ``{"res": "2"}`` when fMRIPrep wrote
    several resolutions of a space).

A filter that leaves nothing is exit 18 naming the filter file (:func:`nothing_selected`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.textfiles import UnreadableFileError, read_json
from ..errors import InputMissingError, NoFilesError, UsageError

log = logging.getLogger(__name__)

#: The query names this app reads, and what each selects.
QUERIES = {
    "bold": "raw BOLD runs",
    "events": "events files of the selected runs",
    "preproc": "preprocessed BOLD and brain masks in the derivatives",
}


def _pybids_value(value):
    """JSON ``null`` -> ``Query.NONE``, ``"*"`` -> ``Query.ANY`` (also inside lists); other values unchanged."""
    from bids.layout import Query

    if value is None:
        return Query.NONE
    if value == "*":
        return Query.ANY
    if isinstance(value, list):
        return [_pybids_value(v) for v in value]
    return value


def load_bids_filters(path: Path | None) -> dict:
    """Read ``--bids-filter-file``: ``{query name: {entity: value}}`` with pybids' query values.

    Raises
    ------
    InputMissingError
        The file does not exist (exit 66).
    UsageError
        Not JSON, or not a mapping of query names to mappings of entities (exit 64).
    """
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise InputMissingError(f"{path}: --bids-filter-file does not exist")
    try:
        filters = read_json(path, "--bids-filter-file")
    except UnreadableFileError as exc:  # not UTF-8, not JSON, nested too deep
        raise UsageError(str(exc)) from exc
    if not isinstance(filters, dict) or not all(isinstance(v, dict) for v in filters.values()):
        raise UsageError(f"{path}: --bids-filter-file must map a query name ('bold') to a dict of entities")
    unknown = sorted(set(filters) - set(QUERIES))
    if unknown:
        log.warning("%s: filter queries %s are not used (this app reads %s)", path, unknown, ", ".join(QUERIES))
    return {name: {k: _pybids_value(v) for k, v in query.items()} for name, query in filters.items()}


def nothing_selected(filter_file: Path | None, query: str, where: str) -> NoFilesError:
    """The exit-18 error of a filter that left no file: names the filter file and the query."""
    if filter_file is None:
        return NoFilesError(f"{where}: the selection left no {QUERIES[query]}")
    return NoFilesError(f"{filter_file}: --bids-filter-file's {query!r} query selected no {QUERIES[query]} ({where})")
