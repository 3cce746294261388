"""Citation boilerplate: ``logs/CITATION.md``, ``.html`` and ``.bib`` from what actually ran.

The methods text (``boilerplate/methods.md.j2``) is filled with numbers read from
the participant sidecars (participants, runs, trials, images, folds, alpha grid,
split, FDR level, p-value method, precision, feature spaces, software versions).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from bids_taskenc.__about__ import __version__
from bids_taskenc.outputs.atomic import write_text
from bids_taskenc.report.inputs import find_tasks, group_file, group_rank, list_participants, load_participant
from bids_taskenc.report.render import BOILERPLATE, environment

_ENTRY_RE = re.compile(r"@(\w+)\{([^,]+),(.*?)\n\}", re.S)
_FIELD_RE = re.compile(r"(\w+)\s*=\s*\{(.*?)\},?\s*$", re.M)


def bibtex() -> str:
    """The package's BibTeX references."""
    return (BOILERPLATE / "references.bib").read_text()


def _plain(text: str) -> str:
    text = re.sub(r"\\['\"`^~]\{?(\w)\}?", r"\1", text)
    return text.replace("{", "").replace("}", "").replace("--", "–")


def reference_list() -> dict[str, str]:
    """BibTeX key -> one-line plain-text reference, in the file's order."""
    refs = {}
    for _kind, key, body in _ENTRY_RE.findall(bibtex()):
        f = {k: _plain(v) for k, v in _FIELD_RE.findall(body)}
        authors = f.get("author", "").split(" and ")
        who = authors[0].split(",")[0] + (" et al." if len(authors) > 2 else
                                          f" & {authors[1].split(',')[0]}" if len(authors) == 2 else "")
        venue = f.get("journal") or f.get("booktitle") or f.get("publisher", "")
        parts = [f"{who} ({f.get('year', 'n.d.')}). {f.get('title', '')}. {venue}"]
        if f.get("volume"):
            parts.append(f", {f['volume']}")
        if f.get("pages"):
            parts.append(f", {f['pages']}")
        text = "".join(parts) + "."
        if f.get("doi"):
            text += f" doi:{f['doi']}"
        elif f.get("url"):
            text += f" {f['url']}"
        refs[key.strip()] = text
    return refs


def methods_context(output_dir: str | Path, *, task: str | None = None) -> dict:
    """Numbers for the methods text, read from the participant sidecars.

    Raises
    ------
    FileNotFoundError
        When no participant outputs exist.
    """
    out = Path(output_dir)
    participants = list_participants(out)
    loaded = []
    for p in participants:
        try:
            loaded.append(load_participant(out, p, task))
        except FileNotFoundError:
            continue
    if not loaded:
        raise FileNotFoundError(f"no participant outputs under {out}")
    first = loaded[0].first_sidecar
    grid = first.get("AlphaGrid") or []
    features = {}
    for data in loaded:
        for f in data.features:
            features.setdefault(f.label, {
                "label": f.label, "name": f.name, "group": f.group,
                "dimension": f.sidecar.get("FeatureDimension", f.sidecar.get("NFeatures", "n/a")),
            })
    per = []
    for data in loaded:
        resp = data.first_sidecar.get("Responses", {})
        per.append({
            "participant": data.participant, "runs": resp.get("NRuns", "n/a"), "trials": resp.get("NTrials", "n/a"),
            "images": resp.get("NImages", "n/a"), "repeated": resp.get("NRepeatedImages", "n/a"),
            "voxels": resp.get("NVoxels", int(data.mask.sum())),
        })
    split = first.get("Split", {})
    resp = first.get("Responses", {})
    task = loaded[0].task
    return {
        "version": __version__,
        "participants": [f"sub-{d.participant}" for d in loaded],
        "task": task,
        "space": loaded[0].space,
        "per_participant": per,
        "response_model": resp.get("ResponseModel", "n/a"),
        "response_trs": ", ".join(str(t) for t in resp.get("ResponseTRs", [])),
        "features": sorted(features.values(), key=lambda f: (group_rank(f["group"]), f["label"])),
        "n_train": split.get("NTrain", "n/a"),
        "n_test": split.get("NTest", "n/a"),
        "test_fraction": split.get("TestFraction", "n/a"),
        "seed": first.get("Seed", split.get("Seed", "n/a")),
        "cv_folds": first.get("CVFolds", "n/a"),
        "alpha_grid": grid,
        "alpha_min": f"{min(grid):g}" if grid else "n/a",
        "alpha_max": f"{max(grid):g}" if grid else "n/a",
        "precision": first.get("Precision", "n/a"),
        "pvalue_method": first.get("PValueMethod", "n/a"),
        "pvalue_sides": first.get("PValueSides", "n/a"),
        "fdr_level": first.get("FDRLevel", "n/a"),
        "versions": first.get("SoftwareVersions", {}),
        "group_ran": group_file(out, task, "similarity", "matrix", ".tsv").exists(),
        "compared": group_file(out, task, "taskonomy", "comparison", ".json").exists(),
        "references": list(reference_list().values()),
    }


def _markdown_to_html(text: str) -> str:
    """The small Markdown subset of the methods template (headings, bold, code, lists, paragraphs)."""
    body = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().splitlines()
        if all(line.startswith("- ") for line in lines):
            body.append("<ul>" + "".join(f"<li>{_inline(line[2:])}</li>" for line in lines) + "</ul>")
        elif block.startswith("#"):
            level = len(block) - len(block.lstrip("#"))
            body.append(f"<h{level}>{_inline(block.lstrip('#').strip())}</h{level}>")
        else:
            body.append(f"<p>{_inline(' '.join(lines))}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Citing bids_taskenc</title>'
        "<style>body{font-family:Helvetica,Arial,sans-serif;max-width:900px;margin:auto;padding:1em 2em;}</style>"
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"\*(.+?)\*", r"<em>\1</em>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def write_citation(output_dir: str | Path, *, task: str | None = None) -> list[Path]:
    """Write ``logs/CITATION.md``, ``logs/CITATION.html`` and ``logs/CITATION.bib``.

    Returns the three paths.
    """
    out = Path(output_dir)
    if task is None:
        tasks = find_tasks(out, list_participants(out)[0]) if list_participants(out) else []
        task = tasks[0] if tasks else None
    context = methods_context(out, task=task)
    text = environment(BOILERPLATE, autoescape=False).get_template("methods.md.j2").render(**context)
    logs = out / "logs"
    return [
        write_text(logs / "CITATION.md", text),
        write_text(logs / "CITATION.html", _markdown_to_html(text)),
        write_text(logs / "CITATION.bib", bibtex()),
    ]
