"""The reports, figures and citation files the CLI wrote after a real run."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bids_taskenc.outputs.naming import derivative_path
from bids_taskenc.report import write_group_report, write_participant_report
from bids_taskenc.report.citation import bib_entries, reference_list


class _Resources(HTMLParser):
    """Collect every URL an HTML page would load (img/script/link/iframe/source) and its links."""

    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.loaded: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag in ("img", "script", "iframe", "source", "embed") and attrs.get("src"):
            self.loaded.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.loaded.append(attrs["href"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def parse(path: Path) -> _Resources:
    parser = _Resources()
    parser.feed(path.read_text())
    return parser


def _r_sidecar(out: Path, sub: str) -> dict:
    for path in sorted((out / f"sub-{sub}" / "func").glob("*_stat-r_statmap.json")):
        meta = json.loads(path.read_text())
        if "FeatureSpace" in meta:
            return meta
    raise AssertionError("no r sidecar")


@pytest.mark.slow
def test_the_cli_wrote_every_page(report_run):
    out = report_run
    for name in (
        "sub-CSI1.html",
        "sub-CSI2.html",
        "group.html",
        "logs/CITATION.md",
        "logs/CITATION.html",
        "logs/CITATION.bib",
    ):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.rglob(".*.png")) and not list(out.rglob(".*.html")), "temporary files left behind"


@pytest.mark.slow
@pytest.mark.parametrize("page", ["sub-CSI1.html", "sub-CSI2.html", "group.html", "logs/CITATION.html"])
def test_images_resolve_and_nothing_remote_is_loaded(report_run, page):
    out = report_run
    path = out / page
    res = parse(path)
    if page != "logs/CITATION.html":
        assert len(res.images) >= 4, "a report without figures"
    for src in res.images:
        assert not re.match(r"^[a-z]+:", src), src
        target = (path.parent / src).resolve()
        assert target.is_file() and target.suffix == ".png", src
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert target.parent == (out / "figures").resolve()
    for url in res.loaded:
        assert not url.startswith(("http://", "https://", "//")), url
    text = path.read_text()
    assert "url(http" not in text and "@import" not in text and "<script" not in text
    if page != "logs/CITATION.html":
        assert "http://" not in text and "https://" not in text
    for href in res.links:
        if href.startswith("#"):
            assert href[1:] in res.ids, href
        elif not href.startswith("http"):
            assert (path.parent / href).exists(), href


@pytest.mark.slow
def test_participant_report_shows_the_numbers_of_the_sidecars(report_run):
    out = report_run
    side = _r_sidecar(out, "CSI1")
    html = (out / "sub-CSI1.html").read_text()
    resp = side["Responses"]
    for key in ("NRuns", "NTrials", "NImages", "NVoxels"):
        assert f"<td>{resp[key]}</td>" in html, key
    assert "<th>Sessions</th><td>2 (01, 02)</td>" in html
    assert f"<td>{side['CVFolds']}</td>" in html
    assert side["CommandLine"] in html and "--features-dir" in html
    assert side["SoftwareVersions"]["nilearn"] in html
    for group in ("2D", "3D", "semantic"):
        assert f'class="g-{group}"' in html


@pytest.mark.slow
def test_participant_report_sections(report_run):
    out = report_run
    html = (out / "sub-CSI1.html").read_text()
    figs = set(parse(out / "sub-CSI1.html").images)
    prefix = "figures/sub-CSI1_task-5000scenes_desc-"
    # quality: noise ceiling and split-half maps and histograms, alpha distribution, warnings
    for desc in ("reliabilityhist", "reliabilitymaps", "alpha", "roibars", "rmaps", "contrasts"):
        assert f"{prefix}{desc}_figure.png" in figs, desc
    assert len(figs) == 6  # whole-brain mean-r bars only without ROIs (test_report_views)
    assert "empirical split-half correlation written by the participant level" in html
    assert 'id="warnings"' in html and "The test set has 19 images" in html
    # every feature space is in the maps figure's rows and in the table; the view and its reason are given
    labels = sorted(
        json.loads(p.read_text())["FeatureLabel"]
        for p in (out / "sub-CSI1" / "func").glob("*_stat-r_statmap.json")
        if "FeatureLabel" in json.loads(p.read_text())
    )
    assert "keypoints3d" in labels and len(labels) == 9
    top = html.split('id="top"')[1]
    for label in labels:
        assert f">{label}</td>" in top
    assert "<strong>View:</strong> orthogonal slices" in html
    assert "space T1w is the participant&#39;s own" in html and "pycortex is not installed" in html
    assert '<meta name="bids_taskenc-brain-view" content="slices">' in html
    # the 3D-vs-2D contrast written by the participant level, with its voxel counts
    contrast = json.loads(
        next((out / "sub-CSI1" / "func").glob("*_desc-group3DVSgroup2D_stat-rdiff_statmap.json")).read_text()
    )["Contrast"]
    assert "<td>group3DVSgroup2D</td>" in html and ", ".join(contrast["A"]) in html
    assert re.search(r"<td>group3DVSgroup2D</td>.*?<td class=\"num\">[1-9]\d*</td>", html, re.S)
    # the ROI chart's ROIs and the table of top voxels / ROIs
    for roi in ("EarlyVis", "LOC", "OPA", "PPA", "RSC"):
        assert f"<td>{roi}</td>" in html
    assert re.search(r">keypoints3d</td>.*?(PPA|RSC|OPA) 0\.\d\d", top, re.S)


@pytest.mark.slow
def test_roi_chart_follows_the_planted_truth(report_run):
    """The 3D spaces predict the scene ROIs best, the 2D spaces EarlyVis (what Fig. 1 should show)."""
    import pandas as pd

    table = pd.read_csv(
        derivative_path(report_run, sub="CSI1", task="5000scenes", desc="roi", suffix="scores", extension=".tsv"),
        sep="\t",
    )
    pooled = table[~table["roi"].str.startswith(("LH-", "RH-"))]
    best = pooled.loc[pooled.groupby("roi")["mean_r"].idxmax()].set_index("roi")["feature_group"]
    assert best["PPA"] == "3D" and best["EarlyVis"] == "2D" and best["LOC"] == "semantic"


@pytest.mark.slow
def test_group_report_has_the_paper_figures(report_run):
    out = report_run
    html = (out / "group.html").read_text()
    for desc in ("similarity", "participantsimilarity", "trees", "graph"):
        assert f"figures/task-5000scenes_desc-{desc}_figure.png" in html
    consistency = json.loads(
        derivative_path(out, task="5000scenes", desc="consistency", suffix="stats", extension=".json").read_text()
    )
    assert f"{consistency['MeanSpearman']:.3g}" in html
    # two participants: the block bootstrap; the page says what the sidecar says its support means (issue 23)
    boot = json.loads(
        derivative_path(out, task="5000scenes", desc="tree", suffix="dendrogram", extension=".json").read_text()
    )["Bootstrap"]
    assert boot["Method"] == "block" and boot["SupportInterpretation"] == "descriptive"
    assert 'id="support-descriptive"' in html and "bootstrap support (descriptive)" in html
    comparison = json.loads(
        derivative_path(out, task="5000scenes", desc="taskonomy", suffix="comparison", extension=".json").read_text()
    )
    for desc in ("taskonomysimilarity", "comparison"):
        assert f"figures/task-5000scenes_desc-{desc}_figure.png" in html
    assert f"{comparison['Spearman']:.3g}" in html and f"{comparison['CopheneticCorrelation']:.3g}" in html
    assert "Taskonomy (transfer affinities)" not in html or "beside the tree of Taskonomy" in html
    # the partial Mantel test leads, the plain one follows as secondary (issue 23 part 6)
    assert html.index("partial Mantel test</strong> (the headline test)") < html.index("plain Mantel test (secondary")
    md = (out / "logs" / "CITATION.md").read_text()
    if comparison.get("PartialCorrelation") is not None:
        assert md.index("partial Mantel test") < md.index("The plain Mantel test")


@pytest.mark.slow
def test_citation_holds_what_actually_ran(report_run):
    out = report_run
    side = _r_sidecar(out, "CSI2")
    md = (out / "logs" / "CITATION.md").read_text()
    assert f"{side['CVFolds']}-fold cross-validation" in md
    assert f"grid of {len(side['AlphaGrid'])} values" in md
    assert f"test fraction {side['Split']['TestFraction']}" in md
    assert f"q < {side['FDRLevel']}" in md
    assert side["PValueMethod"] in md and side["Precision"] in md
    assert "sub-CSI1" in md and "sub-CSI2" in md
    assert f"{side['Responses']['NRuns']} runs with {side['Responses']['NTrials']} trials" in md
    for p in (out / "sub-CSI1" / "func").glob("*_stat-r_statmap.json"):
        meta = json.loads(p.read_text())
        if "FeatureSpace" in meta:
            assert f"{meta['FeatureLabel']} ({meta['FeatureSpace']}, {meta['FeatureGroup']}" in md
    assert side["SoftwareVersions"]["torch"] in md
    assert "group3DVSgroup2D" in md and "1000 bootstrap resamples" in md
    # the contrast p as the sidecars say (here the group t: three spaces a side), cited; the bootstrap gives intervals
    methods = {
        json.loads(p.read_text())["Contrast"]["PValueMethod"]
        for p in (out / "sub-CSI1" / "func").glob("*VS*_stat-p_statmap.json")
    }
    assert methods == {"olkinfinn"}
    assert "difference of mean correlations over its normal-theory standard error" in md
    assert "[@olkin1990testing]" in md and "Williams' t" not in md and "percentile bootstrap p" not in md
    assert "Percentile 95% confidence intervals of each difference came from 1000 bootstrap resamples" in md
    assert "EarlyVis, LOC, OPA, PPA, RSC" in md
    assert "averaged over 2 participant(s)" in md and "50 spatial block-bootstrap resamples" in md
    assert "edges where each participant's spatial autocorrelation of the maps falls to 0.1" in md
    support = json.loads(
        derivative_path(out, task="5000scenes", desc="tree", suffix="dendrogram", extension=".json").read_text()
    )["Settings"]["TreeSupport"]
    assert support == "descriptive" and "This support is descriptive only" in md and "[@eklund2016cluster]" in md
    assert "with fewer than three participants there was no calibrated alternative" in md
    assert "pycortex" not in md  # no pycortex picture was drawn
    html = (out / "logs" / "CITATION.html").read_text()
    assert f"{side['CVFolds']}-fold" in html and "<h2>References</h2>" in html
    # the .bib holds exactly the works the text cites, and every cited key exists
    cited = re.findall(r"\[@([\w-]+)\]", md.split("## References")[0])
    bib = (out / "logs" / "CITATION.bib").read_text()
    keys = re.findall(r"^@\w+\{([^,]+),", bib, re.M)
    assert set(keys) == set(cited) and len(keys) == len(set(keys))
    for key in (
        "wang2019neural",
        "zamir2018taskonomy",
        "chang2019bold5000",
        "yarkoni2019pybids",
        "abraham2014nilearn",
        "benjamini1995fdr",
        "paszke2019pytorch",
        "allen2022nsd",
    ):
        assert key in keys
    assert set(cited) <= set(reference_list()) == set(bib_entries())


@pytest.mark.slow
def test_reports_are_rewritten_in_place(report_run):
    """Writing the reports again replaces each page and each of its figures under the same names, leaving no
    temporary file. Pages and figures are first overwritten with stale content, so a writer that skipped a file
    (or wrote it elsewhere) leaves the stale bytes behind; the rewrite reproduces the pages exactly."""
    out = report_run
    # the participant level wrote sub-CSI1.html before the group level ran; its methods text and links now also
    # describe the group outputs, so the reference is the page as written on the outputs as they are now
    write_participant_report(out, "CSI1")
    pages = {name: (out / name).read_text() for name in ("group.html", "sub-CSI1.html")}
    figures = sorted((out / "figures").iterdir())
    # only the figures of the two pages rewritten here (CSI2's stay as the other tests expect them)
    ours = [p for p in figures if p.name.startswith(("task-5000scenes_", "sub-CSI1_"))]
    assert len(ours) > 5, [p.name for p in figures]
    for name in pages:
        (out / name).write_text("stale page")
    for path in ours:
        path.write_bytes(b"stale figure")
    assert write_group_report(out, task="5000scenes") == out / "group.html"
    assert write_participant_report(out, "CSI1") == out / "sub-CSI1.html"
    for name, text in pages.items():
        assert (out / name).read_text() == text, f"{name} was not rewritten as before"
    stale = [p.name for p in ours if p.read_bytes() == b"stale figure"]
    assert not stale, f"figures not rewritten: {stale}"
    assert sorted((out / "figures").iterdir()) == figures
    assert not [p for p in out.rglob(".*") if p.is_file() and p.name != ".bidsignore"], "temporary files left"


def test_missing_outputs_raise(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_participant_report(tmp_path, "CSI9")
    with pytest.raises(FileNotFoundError):
        write_group_report(tmp_path)


@pytest.mark.slow
def test_pages_link_their_run_log_with_command_settings_versions_and_timings(report_run):
    """The group page pointed to a 'group-level log' that was never written; now both pages link the real one."""
    import re

    out = report_run
    for page, level in (("group.html", "group"), ("sub-CSI1.html", "participant")):
        html = (out / page).read_text()
        links = re.findall(r'href="(logs/bids_taskenc-[0-9-]+\.log)"', html)
        assert links, page
        text = (out / links[0]).read_text()
        assert re.search(rf"command: bids_taskenc \S+ \S+ {level}", text)
        for what in ("settings: {", "resources: {", "versions: {", "step ", "timing: ", "done in"):
            assert what in text, (page, what)
    assert "the group-level log says which" not in (out / "group.html").read_text()
    text = (
        out / re.findall(r'href="(logs/bids_taskenc-[0-9-]+\.log)"', (out / "sub-CSI1.html").read_text())[0]
    ).read_text()
    assert "step fit " in text and "step responses took" in text and "feature space 1 of " in text
