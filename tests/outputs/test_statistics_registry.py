"""The map-statistics registry (outputs/statistics.py): lookups, sources, citations and the docs table."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from bids_taskenc.core.labels import NOT_IN_LABEL
from bids_taskenc.core.registry import UnknownChoiceError
from bids_taskenc.outputs.statistics import (
    STATISTICS,
    MapStatistic,
    description,
    is_discrete,
    markdown_table,
    methods_sentences,
    per_space_statistics,
    shown_statistics,
)

OUTPUTS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "outputs.md"


def test_the_per_space_maps_are_the_six_of_every_fit_in_their_order():
    assert [s.name for s in per_space_statistics()] == ["r", "rsquared", "p", "q", "alpha", "cvscore"]
    assert [s.name for s in shown_statistics()] == ["r"]
    assert {s.name: s.fill for s in per_space_statistics()} == {
        "r": 0.0,
        "rsquared": 0.0,
        "p": 1.0,
        "q": 1.0,
        "alpha": 0.0,
        "cvscore": 0.0,
    }


def test_names_are_bids_labels_and_descriptions_one_line():
    for s in STATISTICS:
        assert s.name and not NOT_IN_LABEL.search(s.name), s.name
        assert s.description and "\n" not in s.description and s.units


def test_sidecar_descriptions():
    assert description("r").startswith("Pearson correlation between predicted and measured responses")
    assert description("q") == "Benjamini-Hochberg FDR q-value of p, over the voxels of the mask"
    # a partitioning map's step writes a Description naming its sets: the registry adds none of its own
    assert description("jointr") == "" and description("uniqueq3D") == ""
    assert description("unknown") == "" and description(None) == ""


def test_values_from_an_attribute_or_an_import_path():
    result = SimpleNamespace(r=np.array([0.5, -0.25]), r2=np.array([0.1, 0.0]))
    np.testing.assert_array_equal(STATISTICS["rsquared"].values(result), result.r2)
    by_path = MapStatistic("rtwice", "twice r", "r", source="numpy:asarray")
    assert by_path.values([1.0]).tolist() == [1.0]
    with pytest.raises(ValueError, match="not taken from a fit result"):
        STATISTICS["noiseceiling"].values(result)


def test_temporarily_registered_statistics_go_away():
    toy = MapStatistic("toy", "a toy", "none", source="r")
    with STATISTICS.temporarily(toy):
        assert per_space_statistics()[-1] is toy and description("toy") == "a toy"
    assert "toy" not in STATISTICS
    with pytest.raises(UnknownChoiceError, match="choose one of: r, rsquared"):
        STATISTICS["toy"]


def test_alpha_is_sampled_as_a_grid_value():
    assert is_discrete("alpha") and not is_discrete("r") and not is_discrete(None)


def test_citation_keys_are_references_of_the_methods_text():
    from bids_taskenc.report.citation import bib_entries

    keys = set(bib_entries())
    cited = {key for s in STATISTICS for key in s.citations}
    assert cited and cited <= keys


def test_the_outputs_page_shows_the_registry_table():
    assert markdown_table() in OUTPUTS_PAGE.read_text(encoding="utf-8"), (
        "docs/outputs.md's table of statistics differs from the registry: paste "
        "`python -c 'from bids_taskenc.outputs.statistics import markdown_table; print(markdown_table())'`"
    )


def test_methods_sentences_only_for_written_statistics_with_a_sentence():
    toy = MapStatistic("toy", "a toy", "none", source="r", methods="A toy was mapped.", citations=("allen2022nsd",))
    with STATISTICS.temporarily(toy):
        assert methods_sentences(["r", "q", "toy"]) == ["A toy was mapped. [@allen2022nsd]"]
        assert methods_sentences(["r", "q"]) == []


@pytest.mark.parametrize("sides", ["one-sided", "two-sided"])
def test_the_p_maps_description_says_which_sides_were_tested(tmp_path, sides):
    """A --p-sides two-sided run's p maps were described as "One-sided p-value of r > 0" (found in review): the
    Description follows the result's PValueSides, in the NIfTI sidecar and the GIFTI array's metadata."""
    from bids_taskenc.encoding.stats import analytic_p
    from bids_taskenc.outputs.derivatives import write_statmap
    from bids_taskenc.outputs.surfaces import write_surface_statmap

    side = "one-sided (r > 0)" if sides == "one-sided" else "two-sided (r != 0)"
    p = analytic_p(np.array([0.3, -0.3]), 50, sides).astype(np.float32)
    img = nib.Nifti1Image(p.reshape(2, 1, 1), np.eye(4))
    volume = write_statmap(tmp_path, img, {"PValueSides": side}, sub="01", task="x", desc="a", stat="p")
    surface = write_surface_statmap(tmp_path, p, "L", {"PValueSides": side}, sub="01", task="x", desc="a", stat="p")
    expected = "One-sided p-value of r > 0" if sides == "one-sided" else "Two-sided p-value of r != 0"
    assert json.loads(volume.with_name(volume.name.replace(".nii.gz", ".json")).read_text())["Description"] == expected
    gifti = nib.load(surface)
    assert gifti.darrays[0].meta["Description"] == expected
