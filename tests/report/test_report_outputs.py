"""The reports, figures and citation files written from a real run."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bids_taskenc.outputs.naming import derivative_path, sidecar_path
from bids_taskenc.report import write_group_report, write_participant_report
from bids_taskenc.report.citation import reference_list


class _Resources(HTMLParser):
    """Collect every URL an HTML page would load (img/script/link/iframe/source, inline url())."""

    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.loaded: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag in ("img", "script", "iframe", "source", "embed") and attrs.get("src"):
            self.loaded.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.loaded.append(attrs["href"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def _parse(path: Path) -> _Resources:
    parser = _Resources()
    parser.feed(path.read_text())
    return parser


def _pages(out: Path) -> list[Path]:
    return [out / "sub-CSI1.html", out / "sub-CSI2.html", out / "group.html"]


def test_build_reports_writes_every_page(report_run):
    out, written = report_run
    names = {p.relative_to(out).as_posix() for p in written}
    assert {"sub-CSI1.html", "sub-CSI2.html", "group.html",
            "logs/CITATION.md", "logs/CITATION.html", "logs/CITATION.bib"} <= names
    for path in written:
        assert path.stat().st_size > 0


@pytest.mark.parametrize("page", ["sub-CSI1.html", "sub-CSI2.html", "group.html", "logs/CITATION.html"])
def test_images_resolve_and_nothing_remote_is_loaded(report_run, page):
    out, _ = report_run
    path = out / page
    res = _parse(path)
    if page != "logs/CITATION.html":
        assert res.images, "a report without figures"
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
        if not href.startswith(("#", "http")):
            assert (path.parent / href).exists(), href


def test_participant_report_shows_the_numbers_of_the_sidecars(report_run):
    out, _ = report_run
    r_path = next((out / "sub-CSI1" / "func").glob("*_stat-r_statmap.nii.gz"))
    side = json.loads(sidecar_path(r_path).read_text())
    html = (out / "sub-CSI1.html").read_text()
    resp = side["Responses"]
    for key in ("NRuns", "NTrials", "NImages", "NVoxels"):
        assert f"<td>{resp[key]}</td>" in html, key
    assert f"<td>{side['CVFolds']}</td>" in html
    assert side["CommandLine"] in html
    assert side["SoftwareVersions"]["nilearn"] in html
    # one map (or an explicit "no voxel survives") per feature space, and the view is explained
    labels = sorted({p.name.split("desc-")[1].split("_")[0] for p in (out / "sub-CSI1" / "func").glob("*_stat-r_statmap.json")
                     if "FeatureSpace" in json.loads(p.read_text())})
    for label in labels:
        assert f">{label} <span" in html
    assert "brain mask" in html and "no anatomical image" in html
    for group in ("2D", "3D", "semantic"):
        assert f'class="g-{group}"' in html


def test_group_report_has_the_paper_figures(report_run):
    out, _ = report_run
    html = (out / "group.html").read_text()
    for desc in ("similarity", "trees", "graph"):
        assert f"figures/task-5000scenes_desc-{desc}_figure.png" in html
    consistency = json.loads(derivative_path(out, task="5000scenes", desc="consistency", suffix="stats",
                                             extension=".json").read_text())
    assert f"{consistency['MeanSpearman']:.3g}" in html
    # the synthetic feature spaces are no Taskonomy tasks: the report says the comparison is absent
    assert "No Taskonomy comparison was written" in html


def test_citation_holds_what_actually_ran(report_run):
    out, _ = report_run
    r_path = next((out / "sub-CSI2" / "func").glob("*_stat-r_statmap.nii.gz"))
    side = json.loads(sidecar_path(r_path).read_text())
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
    html = (out / "logs" / "CITATION.html").read_text()
    assert f"{side['CVFolds']}-fold" in html and "<h2>References</h2>" in html
    bib = (out / "logs" / "CITATION.bib").read_text()
    for key in ("wang2019neural", "zamir2018taskonomy", "chang2019bold5000", "yarkoni2019pybids",
                "abraham2014nilearn", "seabold2010statsmodels", "paszke2019pytorch", "benjamini1995fdr",
                "dupre2022himalaya"):
        assert f"{{{key}," in bib
    # every reference the methods text cites exists in the .bib
    for key in re.findall(r"\[@([\w-]+)\]", md):
        assert key in reference_list()


def test_group_report_is_rewritten_in_place(report_run):
    out, _ = report_run
    before = sorted(p.name for p in (out / "figures").iterdir())
    assert write_group_report(out, task="5000scenes") == out / "group.html"
    assert sorted(p.name for p in (out / "figures").iterdir()) == before
    assert not [p for p in out.rglob(".*") if p.is_file() and p.name.startswith(".") and ".html" in p.name]


def test_missing_outputs_raise(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_participant_report(tmp_path, "CSI9")
    with pytest.raises(FileNotFoundError):
        write_group_report(tmp_path)
