"""The generated methods text as HTML: author-year citations linked to a formatted reference list.

The Markdown that :func:`bids_taskenc.report.citation.render_methods` fills from the sidecars (``logs/CITATION.md``)
cites works as ``[@key]``; here each citation becomes "(Wang, Tarr & Wehbe, 2019)" linked to its entry of the
reference list below the text, which :func:`~bids_taskenc.report.citation.reference_list` formats from
``references.bib``. ``logs/CITATION.html`` and the "Methods" section of every report page are this HTML, so a
page says how its numbers were made in the words a manuscript can copy.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from markupsafe import Markup

_CITE_RE = re.compile(r"\[@([\w-]+)\]")


@dataclass
class MethodsHTML:
    """``body``: the methods text (no title, no references); ``references``: the ordered list; both HTML."""

    body: Markup
    references: Markup

    @property
    def page(self) -> str:
        """A standalone page (``logs/CITATION.html``): the title, the text, the references."""
        head = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Citing bids_taskenc</title>'
            "<style>body{font-family:Helvetica,Arial,sans-serif;max-width:900px;margin:auto;padding:1em 2em;"
            "line-height:1.45;}code{background:#f3f3f3;padding:0 .2em;}ol.references li{margin:.3em 0;}</style>"
            "</head><body>\n<h1>Methods</h1>\n"
        )
        # str(): joining plain text to Markup would escape the text
        return head + str(self.body) + "\n<h2>References</h2>\n" + str(self.references) + "\n</body></html>\n"


def methods_html(
    markdown: str, citations: dict[str, str], references: dict[str, str], *, heading: int = 2
) -> MethodsHTML:
    """HTML of the methods Markdown (its ``# title`` dropped; ``## References`` and below dropped too).

    Parameters
    ----------
    markdown : str
        The filled methods text (``logs/CITATION.md``).
    citations : dict
        BibTeX key -> author-year label (``"Wang, Tarr & Wehbe, 2019"``).
    references : dict
        BibTeX key -> one-line formatted reference.
    heading : int
        HTML level of the text's ``##`` headings (the page's section below which it sits decides).

    Raises
    ------
    KeyError
        A citation without an entry in ``citations``.
    """
    text = markdown.split("\n## References", 1)[0]
    cited = list(dict.fromkeys(_CITE_RE.findall(text)))
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().splitlines()
        if block.startswith("# "):  # the page or section supplies the title
            continue
        if all(line.startswith("- ") for line in lines):
            blocks.append("<ul>" + "".join(f"<li>{_inline(line[2:], citations)}</li>" for line in lines) + "</ul>")
        elif block.startswith("#"):
            level = min(6, len(block) - len(block.lstrip("#")) - 2 + heading)
            blocks.append(f"<h{level}>{_inline(block.lstrip('#').strip(), citations)}</h{level}>")
        else:
            blocks.append(f"<p>{_inline(' '.join(lines), citations)}</p>")
    items = "".join(f'<li id="ref-{key}">{_linkless(references[key])}</li>' for key in cited if key in references)
    return MethodsHTML(Markup("\n".join(blocks)), Markup(f'<ol class="references">{items}</ol>'))


def _inline(text: str, citations: dict[str, str]) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", text)
    text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
    return _cite(text, citations)


def _cite(text: str, citations: dict[str, str]) -> str:
    """``[@key]`` -> "(<a>Author, Year</a>)"; inside parentheses "[<a>Author, Year</a>]", as APA nests them."""
    out, depth, last = [], 0, 0
    for match in _CITE_RE.finditer(text):
        before = text[last : match.start()]
        depth = max(0, depth + before.count("(") - before.count(")"))
        label = f'<a href="#ref-{match.group(1)}">{html.escape(citations[match.group(1)])}</a>'
        out += [before, f"[{label}]" if depth else f"({label})"]
        last = match.end()
    return "".join(out) + text[last:]


def _linkless(reference: str) -> str:
    """A reference as escaped text; a URL without its scheme (the pages load and link nothing remote)."""
    return html.escape(re.sub(r"https?://", "", reference), quote=False)
