"""Jinja2 environment for the HTML reports and the boilerplate text.

Templates are package data (``templates/`` and ``boilerplate/`` beside this
file); the pages carry their CSS inline and load no external resource.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from bids_taskenc.outputs.atomic import write_text
from bids_taskenc.outputs.naming import derivative_name

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
BOILERPLATE = HERE / "boilerplate"
FIGURES = "figures"


def _fmt(value, digits: int = 3) -> str:
    """Numbers for tables: ``n/a`` for missing, ``digits`` significant figures for floats."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value != value:
            return "n/a"
        return f"{value:.{digits}g}"
    return str(value)


def environment(folder: Path = TEMPLATES, *, autoescape: bool = True) -> jinja2.Environment:
    """A jinja2 environment over one of the package's template folders."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, default=str)
    return env


def render_page(template: str, path: Path, **context) -> Path:
    """Render an HTML template to ``path`` (atomically)."""
    html = environment().get_template(template).render(**context)
    return write_text(path, html)


def figure_path(output_dir: Path, **entities) -> tuple[Path, str]:
    """Absolute path of a report figure under ``<out>/figures/`` and its relative ``src``.

    The file name is built by :func:`bids_taskenc.outputs.naming.derivative_name`
    with suffix ``figure`` and extension ``.png``.
    """
    name = derivative_name(suffix="figure", extension=".png", **entities)
    return Path(output_dir) / FIGURES / name, f"{FIGURES}/{name}"
