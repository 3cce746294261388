"""The BIDS-safe label of a name: letters and digits only."""

from __future__ import annotations

import re

#: What a BIDS label may not hold.
NOT_IN_LABEL = re.compile(r"[^A-Za-z0-9]")


def bids_label(name: str) -> str:
    """Make a BIDS-safe label: letters and digits only.

    ``'taskonomy:depth_zbuffer'`` -> ``'depthzbuffer'`` (a registry prefix before
    ``:`` is dropped), ``'sub-CSI1'`` stays ``'subCSI1'``.

    >>> bids_label("taskonomy:depth_zbuffer"), bids_label("sub-CSI1")
    ('depthzbuffer', 'subCSI1')

    Raises
    ------
    ValueError
        If nothing is left after cleaning.
    """
    base = name.split(":", 1)[1] if ":" in name else name
    label = NOT_IN_LABEL.sub("", base)
    if not label:
        raise ValueError(f"cannot make a BIDS label from {name!r}: no letters or digits")
    return label
