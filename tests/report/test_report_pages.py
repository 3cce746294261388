"""What issue 25 asked of the pages: methods and warnings in them, flat maps with outlines and orientation, a
colour bar per row, group maps thresholded by the group test (small fake outputs, no fitting)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from report_fixtures import fake_outputs

from bids_taskenc.report import brain, write_participant_report

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _run_log(out, lines: list[str]):
    path = out / "logs" / "bids_taskenc-20261201-090000.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "2026-12-01 09:00:00 INFO bids_taskenc: command: bids_taskenc bids out participant\n" + "\n".join(lines) + "\n"
    )
    return path


def test_the_run_logs_warnings_are_on_the_page_of_their_participant(tmp_path):
    """Failed before: the demo's 18 warnings were in logs/ only."""
    out = fake_outputs(tmp_path / "out")
    _run_log(
        out,
        [
            "2026-12-01 09:00:01 WARNING bids_taskenc.workflow.fit: sub-01 task-x a: 42 voxel(s) above the ceiling",
            "2026-12-01 09:00:02 WARNING bids_taskenc.workflow.fit: sub-02 task-x a: 7 voxel(s) above the ceiling",
            "2026-12-01 09:00:03 INFO bids_taskenc.workflow.fit: sub-01 task-x a: 100 voxels q<0.05",
            "2026-12-01 09:00:04 ERROR bids_taskenc: a problem of the whole run",
            "  and its second line",
            "2026-12-01 09:00:05 DEBUG bids_taskenc: sub-01 detail",
        ],
    )
    html = write_participant_report(out, "01").read_text()
    section = html.split('id="runlog"')[1].split("<h2")[0]
    assert "Warnings of the run (2)" in html
    assert "42 voxel(s) above the ceiling" in section and "a problem of the whole run\n  and its second line" in section
    assert "sub-02" not in section and "100 voxels" not in section and "detail" not in section
    assert 'href="logs/bids_taskenc-20261201-090000.log"' in section


def test_without_a_run_log_the_page_says_it_cannot_list_the_warnings(tmp_path):
    html = write_participant_report(fake_outputs(tmp_path / "out"), "01").read_text()
    assert "Warnings of the run (0)" in html and "No run log was found" in html


def test_pages_carry_the_methods_with_author_year_citations_and_their_references(tmp_path):
    """Failed before: the methods were only in logs/CITATION.*, whose HTML showed raw [@key]."""
    from bids_taskenc.report.citation import citation_labels, reference_list

    out = fake_outputs(tmp_path / "out")
    html = write_participant_report(out, "01").read_text()
    methods = html.split('<h2 id="methods">')[1].split('<h2 id="provenance">')[0]
    assert "[@" not in methods and 'href="logs/CITATION.md"' in methods and 'href="logs/CITATION.bib"' in methods
    cited = re.findall(r'<a href="#ref-([\w-]+)">([^<]+)</a>', methods)
    assert ("wang2019neural", "Wang, Tarr &amp; Wehbe, 2019") in cited
    references = methods.split('<ol class="references">')[1]
    for key, label in cited:
        assert f'<li id="ref-{key}">' in references and label.replace("&amp;", "&") == citation_labels()[key]
    assert "Wang, A. Y., Tarr, M. J., &amp; Wehbe, L. (2019). Neural Taskonomy" in references
    assert "https://" not in methods  # reference URLs stay text without their scheme: the pages link nothing remote
    assert reference_list()["mantel1967detection"].startswith("Mantel, N. (1967).")


def test_flat_maps_outline_the_rois_and_mark_the_anterior_ends(tmp_path, monkeypatch):
    """Failed before: flat maps had no ROI outlines and no orientation."""
    out = fake_outputs(tmp_path / "out", roi_dir=tmp_path / "rois")  # MNI space: flat maps
    drawn = {}
    real = brain.draw_rows

    def capture(tiles, specs, canvas, path, *, title):
        drawn[path.name] = (canvas, tiles)
        return real(tiles, specs, canvas, path, title=title)

    monkeypatch.setattr(brain, "draw_rows", capture)
    html = write_participant_report(out, "01").read_text()
    canvas, tiles = drawn["sub-01_task-x_desc-rmaps_figure.png"]
    outlines = canvas.outlines(tiles[0][1])
    assert sorted(name for name, _, _ in outlines) == ["EarlyVis", "PPA"]
    assert all(len(segments) > 20 for _, _, segments in outlines)
    # the left hemisphere's anterior end is on its left, the right one's on its right (fsaverage5's flat patches)
    assert canvas.letters == [("A", "P"), ("P", "A")] and "dorsal is up" in html
    assert "ROI outlines from the masks in" in html
    # the picture itself: the flat maps fill the figure (a shadowed variable once set the x range to 0-1: blank)
    from PIL import Image

    rgb = np.asarray(Image.open(out / "figures" / "sub-01_task-x_desc-rmaps_figure.png").convert("RGB"))
    assert (rgb < 240).any(axis=-1).mean() > 0.3


def test_flat_maps_interpolate_inside_faces():
    """Failed before: one colour per mesh face (a mosaic); now a linear ramp over the mesh stays a ramp."""
    from bids_taskenc.report.flat import FlatCanvas

    canvas = FlatCanvas()
    raster = canvas.hemis["L"]
    ramp = raster.vertex_xy[:, 0]  # flat x of each vertex
    image = raster.interpolate(ramp)
    on = raster.face >= 0
    np.testing.assert_allclose(image[on], raster.xy[..., 0][on], atol=1e-6 * np.ptp(ramp))


def test_group_maps_are_coloured_only_where_the_group_test_holds(tmp_path, monkeypatch):
    """Failed before: the group maps were drawn unthresholded."""
    from bids_taskenc.report import write_group_report
    from bids_taskenc.report.inputs import load_group_maps
    from bids_taskenc.workflow.group import GroupSettings, run_group

    out = tmp_path / "out"
    for i, participant in enumerate(("01", "02", "03", "04", "05")):
        fake_outputs(out, seed=i, participant=participant, hot_seed=7)
    run_group(out, out, GroupSettings(n_bootstrap=0, n_permutations=0, offline=True))
    drawn = {}
    real = brain.draw_rows

    def capture(tiles, specs, canvas, path, *, title):
        drawn[path.name] = (list(specs), title)
        return real(tiles, specs, canvas, path, title=title)

    monkeypatch.setattr(brain, "draw_rows", capture)
    html = write_group_report(out).read_text()
    maps = load_group_maps(out, "x", ["keypoints3d", "keypoints2d"])
    specs, title = drawn["task-x_desc-groupmaps_figure.png"]
    assert "where the group t-test gives q < 0.05" in title
    assert sorted(s.title.split(" ")[0] for s in specs) == sorted(maps.meanr)
    for spec in specs:
        expected = maps.q[spec.title.split(" ")[0]] < 0.05
        assert 0 < expected.sum() < expected.size and np.array_equal(spec.shown, expected)
    unthresholded, _ = drawn["task-x_desc-groupmapsunthresholded_figure.png"]
    assert all(s.shown.all() for s in unthresholded) and "task-x_desc-groupmapsunthresholded_figure.png" in html


def test_group_maps_without_a_surviving_voxel_say_so_and_show_them_unthresholded(tmp_path, monkeypatch):
    """Two participants (the demo): the t has one degree of freedom and nothing passes; no empty figure."""
    from bids_taskenc.report import write_group_report
    from bids_taskenc.workflow.group import GroupSettings, run_group

    out = tmp_path / "out"
    for i, participant in enumerate(("01", "02")):
        fake_outputs(out, seed=i, participant=participant)  # hot voxels differ
    run_group(out, out, GroupSettings(n_bootstrap=0, n_permutations=0, offline=True))
    html = write_group_report(out).read_text()
    maps = html.split('id="maps"')[1].split('id="warnings"')[0]
    assert "No voxel passes the group test" in maps and "the t has 1 degree of freedom" in maps
    assert "task-x_desc-groupmaps_figure.png" not in maps and "task-x_desc-groupmapsunthresholded_figure.png" in maps
    assert not (out / "figures" / "task-x_desc-groupmaps_figure.png").exists()


def test_citation_html_has_linked_author_year_citations(tmp_path):
    """Failed before: logs/CITATION.html showed the raw [@key] citations."""
    from bids_taskenc.report import write_citation

    out = fake_outputs(tmp_path / "out")
    write_citation(out)
    html = (out / "logs" / "CITATION.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "&lt;" not in html.split("<body>")[0]
    assert "[@" not in html and "<h2>References</h2>" in html
    assert '(<a href="#ref-wang2019neural">Wang, Tarr &amp; Wehbe, 2019</a>)' in html
    assert '<li id="ref-wang2019neural">Wang, A. Y., Tarr, M. J., &amp; Wehbe, L. (2019).' in html
    assert "[@wang2019neural]" in (out / "logs" / "CITATION.md").read_text()  # Markdown keeps Pandoc's citations


def test_a_citation_inside_parentheses_takes_brackets():
    from bids_taskenc.report.methods import methods_html

    m = methods_html("# T\n\nA [@a] (statsmodels [@a]); (x) [@a].\n", {"a": "A & B, 2000"}, {"a": "A. (2000)."})
    link = '<a href="#ref-a">A &amp; B, 2000</a>'
    assert str(m.body) == f"<p>A ({link}) (statsmodels [{link}]); (x) ({link}).</p>"
    assert str(m.references) == '<ol class="references"><li id="ref-a">A. (2000).</li></ol>'
