"""Jinja2 environment for the HTML reports and the boilerplate text.

The page templates are package data (``templates/`` beside this file); the
methods-text template and the BibTeX references live in the repository's
top-level ``boilerplate/`` folder, which the wheel carries as
``bids_taskenc/report/boilerplate/`` (see :func:`boilerplate_dir`). The pages
carry their CSS inline and load no external resource.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from bids_taskenc.outputs.atomic import write_text
from bids_taskenc.outputs.naming import derivative_name

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
FIGURES = "figures"

#: Where the boilerplate may be: inside an installed wheel (hatch force-include),
#: then the top-level folder of a source checkout or editable install.
BOILERPLATE_CANDIDATES = (HERE / "boilerplate", HERE.parents[1] / "boilerplate")


def boilerplate_dir() -> Path:
    """The folder holding ``methods.md.j2`` and ``references.bib``.

    Raises
    ------
    FileNotFoundError
        When neither an installed copy nor the source checkout's folder exists.
    """
    for folder in BOILERPLATE_CANDIDATES:
        if (folder / "methods.md.j2").is_file() and (folder / "references.bib").is_file():
            return folder
    raise FileNotFoundError(
        "boilerplate (methods.md.j2, references.bib) not found in "
        + " or ".join(str(f) for f in BOILERPLATE_CANDIDATES)
    )


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
    env.filters["fixed"] = lambda v, digits=2: "n/a" if v is None or v != v else f"{v:.{digits}f}"
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, default=str)
    return env


def render_page(template: str, path: Path, **context: Any) -> Path:
    """Render an HTML template to ``path`` (atomically)."""
    html = environment().get_template(template).render(**context)
    return write_text(path, html)


def figure_path(output_dir: Path, **entities: str | int | None) -> tuple[Path, str]:
    """Absolute path of a report figure under ``<out>/figures/`` and its relative ``src``.

    The file name is built by :func:`bids_taskenc.outputs.naming.derivative_name`
    with suffix ``figure`` and extension ``.png``.
    """
    name = derivative_name(suffix="figure", extension=".png", **entities)
    return Path(output_dir) / FIGURES / name, f"{FIGURES}/{name}"


class Figures:
    """A page's PNG figures: ``figures(desc)`` names one under ``figures/`` and remembers it.

    ``names`` maps each ``desc`` to its ``src`` for the page; ``written`` lists the paths, for :func:`prune_figures`.
    """

    def __init__(self, output_dir: Path, **entities: str | int | None):
        self.output_dir, self.entities = Path(output_dir), entities
        self.names: dict[str, str] = {}
        self.written: list[Path] = []

    def __call__(self, desc: str) -> Path:
        path, self.names[desc] = figure_path(self.output_dir, desc=desc, **self.entities)
        self.written.append(path)
        return path


def prune_figures(output_dir: Path, prefix: str, keep: list[Path]) -> list[Path]:
    """Delete figures named ``<prefix>*`` under ``figures/`` that this rebuild did not write.

    A rebuild after a feature space or contrast disappeared leaves no stale
    picture behind. Returns the removed paths.
    """
    keep_names = {Path(p).name for p in keep}
    removed = []
    for path in (Path(output_dir) / FIGURES).glob(f"{prefix}*_figure.png"):
        if path.name not in keep_names:
            path.unlink()
            removed.append(path)
    return removed
