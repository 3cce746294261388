"""Citation boilerplate: ``logs/CITATION.md``, ``.html`` and ``.bib`` from what actually ran.

The methods text (``boilerplate/methods.md.j2`` at the top of the repository,
package data once installed) is filled with what the outputs' sidecars record:
participants, sessions, runs, trials, images, repeats, response model, feature
spaces, split, folds, alpha grid, p-value method, FDR level, precision,
contrasts, ROI tests, surface maps, group-level settings and software versions.
Only the references the text cites go into ``CITATION.bib`` and its reference list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from bids_taskenc.__about__ import __version__
from bids_taskenc.core.versions import distribution_versions
from bids_taskenc.encoding.banded.registry import REGISTRY as CV_SOLVERS
from bids_taskenc.features.families import REGISTRY as FEATURE_FAMILIES
from bids_taskenc.features.families import family_of
from bids_taskenc.outputs.atomic import write_text
from bids_taskenc.outputs.naming import parse_derivative_name
from bids_taskenc.outputs.statistics import methods_sentences
from bids_taskenc.report.inputs import (
    ParticipantOutputs,
    find_tasks,
    group_file,
    group_rank,
    list_participants,
    load_participant,
    read_json,
)
from bids_taskenc.report.methods import MethodsHTML, methods_html
from bids_taskenc.report.render import boilerplate_dir, environment
from bids_taskenc.report.response_methods import response_methods

_ENTRY_RE = re.compile(r"@(\w+)\{([^,]+),(.*?)\n\}", re.S)
_FIELD_RE = re.compile(r"(\w+)\s*=\s*\{(.*?)\},?\s*$", re.M)
_CITE_RE = re.compile(r"\[@([\w-]+)\]")
#: Participant settings that the methods text states once; a difference between participants is reported.
SHARED_SETTINGS = {
    "CVFolds": "CV folds",
    "AlphaGrid": "alpha grid",
    "FDRLevel": "FDR level",
    "Precision": "precision",
    "PValueMethod": "p-value method",
    "NPermutations": "permutations",
}
#: ``<meta>`` through which a participant page records the brain view it used (read back here).
VIEW_META = "bids_taskenc-brain-view"


def bibtex() -> str:
    """All BibTeX references of the boilerplate folder."""
    return (boilerplate_dir() / "references.bib").read_text()


def bib_entries() -> dict[str, str]:
    """BibTeX key -> the entry's full text, in the file's order."""
    return {key.strip(): m.group(0) for m in _ENTRY_RE.finditer(bibtex()) for key in [m.group(2)]}


def _plain(text: str) -> str:
    """BibTeX field -> plain text: accents dropped to their letter, braces removed, ``--`` an en dash."""
    text = re.sub(r"\\['\"`^~]\{?(\w)\}?", r"\1", text)
    return text.replace("\\&", "&").replace("{", "").replace("}", "").replace("--", "–")


def _entries() -> list[tuple[str, dict[str, str]]]:
    """``(key, plain-text fields)`` of every BibTeX entry, in the file's order."""
    return [
        (key.strip(), {k: _plain(v) for k, v in _FIELD_RE.findall(body)})
        for _kind, key, body in _ENTRY_RE.findall(bibtex())
    ]


def _surnames(fields: dict[str, str]) -> list[str]:
    return [
        a.split(",")[0].strip() for a in fields.get("author", "").split(" and ") if a.strip() and a.strip() != "others"
    ]


def reference_list() -> dict[str, str]:
    """BibTeX key -> one-line plain-text reference, in the file's order."""
    refs = {}
    for key, f in _entries():
        who = _author_list(f.get("author", ""))
        venue = f.get("journal") or f.get("booktitle") or f.get("publisher", "")
        parts = [f"{who} ({f.get('year', 'n.d.')}). {f.get('title', '')}. {venue}".replace(".. ", ". ")]
        if f.get("volume"):
            parts.append(f", {f['volume']}")
        if f.get("pages"):
            parts.append(f", {f['pages']}")
        text = "".join(parts) + "."
        if f.get("doi"):
            text += f" doi:{f['doi']}"
        elif f.get("url"):
            text += f" {f['url']}"
        refs[key] = text
    return refs


def _author_list(field: str) -> str:
    """BibTeX authors -> ``Wang, A. Y., Tarr, M. J., & Wehbe, L.`` (APA); ``others`` -> ``et al.``."""
    names = []
    for author in (a.strip() for a in field.split(" and ") if a.strip()):
        if author == "others":
            names.append("et al.")
            continue
        last, _, first = author.partition(",")
        initials = " ".join(f"{part[0]}." for part in re.split(r"[\s.]+", first.strip()) if part)
        names.append(f"{last.strip()}, {initials}" if initials else last.strip())
    if len(names) < 2:
        return "".join(names)
    if names[-1] == "et al.":
        return ", ".join(names[:-1]) + ", et al."
    return ", ".join(names[:-1]) + (", & " if len(names) > 2 else " & ") + names[-1]


def citation_labels() -> dict[str, str]:
    """BibTeX key -> author-year label: ``Mantel, 1967``, ``Wang, Tarr & Wehbe, 2019``, ``Zamir et al., 2018``.

    Up to three authors are named, more are "et al." (APA's rule for a first citation of two or three).
    """
    labels = {}
    for key, f in _entries():
        names = _surnames(f) or [f.get("title", key)]
        if len(names) > 3 or "others" in f.get("author", ""):
            who = f"{names[0]} et al."
        elif len(names) == 1:
            who = names[0]
        else:
            who = ", ".join(names[:-1]) + f" & {names[-1]}"
        labels[key] = f"{who}, {f.get('year', 'n.d.')}"
    return labels


def _load_all(out: Path, task: str | None) -> list[ParticipantOutputs]:
    loaded = []
    for p in list_participants(out):
        try:
            loaded.append(load_participant(out, p, task))
        except FileNotFoundError:
            continue
    return loaded


def _differences(loaded: list[ParticipantOutputs]) -> list[str]:
    """Sentences naming settings that differ between participants."""
    out = []
    for key, name in SHARED_SETTINGS.items():
        values = {f"sub-{d.participant}": d.first_sidecar.get(key) for d in loaded}
        if len({repr(v) for v in values.values()}) > 1:
            out.append(f"{name}: " + "; ".join(f"{p} {v}" for p, v in values.items()))
    spaces = {f"sub-{d.participant}": ", ".join(f.label for f in d.features) for d in loaded}
    if len(set(spaces.values())) > 1:
        out.append("feature spaces: " + "; ".join(f"{p} {v}" for p, v in spaces.items()))
    return out


def brain_views(out: Path) -> set[str]:
    """Brain views the participant pages in ``out`` used (``pycortex``, ``flat``, ``slices``)."""
    found = set()
    for page in Path(out).glob("sub-*.html"):
        match = re.search(rf'<meta name="{VIEW_META}" content="(\w+)">', page.read_text(errors="replace"))
        if match:
            found.add(match.group(1))
    return found


def _report_versions(pycortex: bool) -> dict:
    """Versions of what drew the report figures (this process), not recorded by the analysis."""
    return distribution_versions(("matplotlib", "jinja2", *(["pycortex"] if pycortex else [])))


def methods_context(output_dir: str | Path, *, task: str | None = None) -> dict:
    """Everything the methods text states, read from the outputs' sidecars.

    Raises
    ------
    FileNotFoundError
        When no participant outputs exist.
    """
    out = Path(output_dir)
    loaded = _load_all(out, task)
    if not loaded:
        raise FileNotFoundError(f"no participant outputs under {out}")
    first = loaded[0].first_sidecar
    task = loaded[0].task
    sim_meta = read_json(group_file(out, task, "similarity", "matrix", ".json"))
    views = brain_views(out)
    return {
        "version": __version__,
        "participants": [f"sub-{d.participant}" for d in loaded],
        "task": task,
        "space": loaded[0].space,
        "per_participant": [_participant_facts(d) for d in loaded],
        "differences": _differences(loaded),
        **_response_facts(loaded),
        **_feature_facts(loaded),
        **_fit_facts(first),
        "statistic_sentences": _statistic_sentences(out, loaded),
        **_roi_facts(loaded),
        "contrasts": _contrast_facts(loaded),
        "partitionings": _partitioning_facts(loaded),
        "gifti": any(
            next(iter(Path(out, f"sub-{d.participant}", "func").glob("*_space-fsaverage5_*.func.gii")), None)
            for d in loaded
        ),
        "group_ran": bool(sim_meta),
        "group_settings": sim_meta.get("Settings", {}),
        "group_participants": sim_meta.get("Participants", []),
        "consistency": read_json(group_file(out, task, "consistency", "stats", ".json")),
        "comparison": read_json(group_file(out, task, "taskonomy", "comparison", ".json")),
        "pycortex": "pycortex" in views,
        "views": sorted(views),
        "versions": _versions_used(first, sim_meta, views),
    }


def _statistic_sentences(out: Path, loaded: list) -> list[str]:
    """The methods sentences of the registered map statistics these participants' maps include."""
    written = set()
    for d in loaded:
        for path in Path(out, f"sub-{d.participant}", "func").glob("*_statmap.nii.gz"):
            try:
                written.add(parse_derivative_name(path.name).get("stat", ""))
            except ValueError:  # not a name of ours
                continue
    return methods_sentences(written)


def _participant_facts(data) -> dict:
    """One participant's row of the data table: sessions, runs, trials, images, voxels, split."""
    resp = data.first_sidecar.get("Responses", {})
    split = data.first_sidecar.get("Split", {})
    return {
        "participant": data.participant,
        "sessions": len(data.sessions()),
        "runs": resp.get("NRuns", "n/a"),
        "trials": resp.get("NTrials", "n/a"),
        "images": resp.get("NImages", "n/a"),
        "repeated": resp.get("NRepeatedImages", "n/a"),
        "voxels": resp.get("NVoxels", int(data.mask.sum())),
        "n_train": split.get("NTrain", "n/a"),
        "n_test": split.get("NTest", "n/a"),
    }


def _response_facts(loaded: list) -> dict:
    """How the responses were estimated (from the first participant) and whether a noise ceiling was computed."""
    resp = loaded[0].first_sidecar.get("Responses", {})
    facts = {
        "response_model": resp.get("ResponseModel", "n/a"),
        "repeats": resp.get("Repeats", "average"),
        "response_zscore": resp.get("ZScoring", "run"),
        "response_trs": ", ".join(str(t) for t in resp.get("ResponseTRs", [])),
        "confounds": ", ".join(resp.get("Confounds") or []),
        "units": resp.get("Units"),
        "lsa_zscore": resp.get("ZScore", "run"),  # outputs before the option: per run
        "noise_ceiling": any(d.noise_ceiling is not None for d in loaded),
        "noise_sidecar": next((d.noise_sidecar for d in loaded if d.noise_sidecar), {}),
    }
    return {**facts, "response_methods": response_methods(facts)}  # the model's paragraph (its registry entry)


def _feature_facts(loaded: list) -> dict:
    """The feature spaces fitted (any participant), in the page's group order, and their families' sentences."""
    features: dict[str, dict] = {}
    for data in loaded:
        for f in data.features:
            features.setdefault(
                f.label,
                {
                    "label": f.label,
                    "name": f.name,
                    "group": f.group,
                    "dimension": f.sidecar.get("FeatureDimension", f.sidecar.get("NFeatures", "n/a")),
                },
            )
    return {
        "features": sorted(features.values(), key=lambda f: (group_rank(f["group"]), f["label"])),
        "feature_methods": family_sentences(str(f["name"]) for f in features.values()),
    }


def family_sentences(space_names: Iterable[str]) -> list[str]:
    """The methods sentences (with their ``[@key]`` citations) of the feature families these spaces belong to,
    in the families' registry order; a family without a sentence adds none, and a space of no registered
    family (outputs of a plug-in not loaded now) is only listed."""
    used = {family.name for family in map(family_of, space_names) if family is not None}
    return [family.methods_text() for family in FEATURE_FAMILIES if family.name in used and family.methods]


def _fit_facts(first: dict) -> dict:
    """The split, cross-validation, ridge grid, precision, device, p-values and FDR of the fit (first map)."""
    split = first.get("Split", {})
    grid = first.get("AlphaGrid") or []
    device = str(first.get("Device", "n/a"))
    return {
        "n_train": split.get("NTrain", "n/a"),
        "n_test": split.get("NTest", "n/a"),
        "test_fraction": split.get("TestFraction", "n/a"),
        "test_split": split.get("TestSplit", "image"),
        "n_test_groups": len(split.get("TestGroups") or []),
        "permutation_scheme": first.get("PermutationScheme", "free"),
        "seed": split.get("Seed", first.get("Seed", "n/a")),
        "cv_folds": first.get("CVFolds", "n/a"),
        "cv_scheme": first.get("CVScheme", "kfold"),
        "validation_fraction": first.get("ValidationFraction"),
        "alpha_grid_rule": first.get("AlphaGridRule", "fixed"),
        "preset": first.get("Preset"),
        "preset_overrides": first.get("PresetOverrides") or {},
        "cv_score": first.get("CVScore", "n/a"),
        "cv_score_effect": first.get("CVScoreEffect"),
        "standardize": first.get("Standardize"),
        "alpha_grid": grid,
        "alpha_min": f"{min(grid):g}" if grid else "n/a",
        "alpha_max": f"{max(grid):g}" if grid else "n/a",
        "precision": first.get("Precision", "n/a"),
        "device_text": (
            "a CUDA GPU" if device.startswith("cuda") else "the CPU" if device == "cpu" else f"device {device}"
        ),
        "pvalue_method": first.get("PValueMethod", "n/a"),
        "pvalue_sides": first.get("PValueSides", "n/a"),
        "n_permutations": first.get("NPermutations", 0),
        "fdr_level": first.get("FDRLevel", "n/a"),
    }


def _roi_facts(loaded: list) -> dict:
    roi_tables = [d.roi_table for d in loaded if d.roi_table is not None]
    return {
        "rois": sorted({str(r) for t in roi_tables for r in t["roi"] if not str(r).startswith(("LH-", "RH-"))}),
        "roi_p": any("p_mean_r" in t.columns for t in roi_tables),
    }


def _contrast_facts(loaded: list) -> list[dict]:
    contrasts: dict[str, dict] = {}
    for data in loaded:
        for c in data.contrasts:
            contrasts.setdefault(
                c.label,
                {
                    "name": c.info.get("Name", c.label),
                    "a": c.info.get("A", []),
                    "b": c.info.get("B", []),
                    "n_bootstrap": c.info.get("NBootstrap"),
                    "test": c.info.get("Test"),
                    # maps written before Williams' t only had the bootstrap p
                    "method": c.info.get("PValueMethod", "bootstrap"),
                    "ci_level": c.info.get("CILevel"),
                },
            )
    return list(contrasts.values())


def _partitioning_facts(loaded: list) -> list[dict]:
    partitionings: dict[str, dict] = {}
    for data in loaded:
        for info in (vp.info for vp in data.partitionings):
            partitionings.setdefault(
                info.get("Name"),
                {
                    "name": info.get("Name"),
                    "sets": [
                        {"label": s.get("Label"), "spaces": s.get("FeatureSpaces", [])} for s in info.get("Sets", [])
                    ],
                    "n_ratios": len(info.get("JointModel", {}).get("BandWeightGrid", [])),
                    "cv_solver_methods": cv_solver_sentence(info.get("JointModel", {}).get("CVSolver")),
                },
            )
    return list(partitionings.values())


def cv_solver_sentence(name: object) -> str:
    """The methods sentence (with its ``[@key]`` citations) of the banded CV solver a partitioning's sidecar names
    (``JointModel.CVSolver``); ``""`` for none recorded or a solver not registered now (a plug-in not loaded)."""
    if not isinstance(name, str) or name not in CV_SOLVERS:
        return ""
    entry = CV_SOLVERS[name]
    cites = f" [{'; '.join('@' + key for key in entry.citations)}]" if entry.citations else ""
    return f"{entry.methods.rstrip('.')}{cites}." if cites else entry.methods


def _versions_used(first: dict, sim_meta: dict, views: set[str]) -> dict:
    """Software of the analysis (its sidecars), of the group level where it adds any, and of the report's figures."""
    versions = dict(first.get("SoftwareVersions", {}))
    for key, value in sim_meta.get("SoftwareVersions", {}).items():
        versions.setdefault(key, value)
    versions.update(_report_versions("pycortex" in views))
    return versions


def render_methods(output_dir: str | Path, *, task: str | None = None) -> tuple[str, list[str]]:
    """The filled methods text (Markdown, with its reference list) and the keys it cites."""
    context = methods_context(output_dir, task=task)
    env = environment(boilerplate_dir(), autoescape=False)
    text = env.get_template("methods.md.j2").render(**context)
    # every bold-headed paragraph starts a block, whatever the template's conditionals left around it
    text = re.sub(r"\n+(?=\*\*[A-Z])", "\n\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    cited = list(dict.fromkeys(_CITE_RE.findall(text)))
    refs = reference_list()
    missing = [k for k in cited if k not in refs]
    if missing:
        raise KeyError(f"methods.md.j2 cites {missing} that references.bib lacks")
    text = text.rstrip() + "\n\n## References\n\n" + "\n".join(f"- [@{k}] {refs[k]}" for k in cited) + "\n"
    return text, cited


def page_methods(output_dir: str | Path, *, task: str | None = None) -> MethodsHTML:
    """The methods text of the outputs in ``output_dir`` as a report page shows it (``###`` headings and below)."""
    text, _ = render_methods(output_dir, task=task)
    return methods_html(text, citation_labels(), reference_list(), heading=3)


def write_citation(output_dir: str | Path, *, task: str | None = None) -> list[Path]:
    """Write ``logs/CITATION.md``, ``logs/CITATION.html`` and ``logs/CITATION.bib``.

    Raises
    ------
    FileNotFoundError
        When no participant outputs exist.

    Returns the three paths.
    """
    out = Path(output_dir)
    if task is None:
        participants = list_participants(out)
        tasks = find_tasks(out, participants[0]) if participants else []
        task = tasks[0] if tasks else None
    text, cited = render_methods(out, task=task)
    entries = bib_entries()
    logs = out / "logs"
    return [
        write_text(logs / "CITATION.md", text),
        write_text(logs / "CITATION.html", methods_html(text, citation_labels(), reference_list()).page),
        write_text(logs / "CITATION.bib", "\n\n".join(entries[k] for k in cited) + "\n"),
    ]
