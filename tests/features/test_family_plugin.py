"""A feature family is one module and one registry entry: a toy family, registered for one test, is fitted,
written, reported and cited like the built-in ones, with nothing else told about it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bids_taskenc.features.base import ImageFeatureSpace
from bids_taskenc.features.families import REGISTRY, FamilySpaces, FeatureFamily, family_of, spaces_help
from bids_taskenc.features.registry import available_feature_spaces, resolve_feature_spaces
from bids_taskenc.report import build_reports
from bids_taskenc.report.citation import bib_entries, render_methods
from bids_taskenc.testing import make_synthetic_dataset
from bids_taskenc.workflow import (
    ComparisonSettings,
    FeatureSettings,
    FitSettings,
    OutputSettings,
    ParticipantSettings,
    run_participant,
)

#: A reference the participant-level methods text never cites by itself (only the group comparison does).
TOY_CITATION = "mantel1967detection"
TOY_SENTENCE = "Toy features were a fixed random projection of the pixels"


class RandomProjectionSpace(ImageFeatureSpace):
    """``(n, 3, 16, 16)`` images in [0, 1] -> ``(n, dim)``: the pixels times a fixed seeded random matrix."""

    def extract(self, images, device: str = "cpu") -> np.ndarray:
        pixels = images.reshape(images.shape[0], -1).cpu().numpy().astype(np.float64)
        rng = np.random.default_rng(int(self.provenance["seed"]))
        projection = rng.standard_normal((pixels.shape[1], int(self.dim or 0)))
        return (pixels @ projection).astype(np.float32)


class RandomProjectionSpaces(FamilySpaces):
    """The toy family: ``toyproj:seed<k>``, 12 random projections of 16x16 pixels, seed k."""

    def names(self) -> list[str]:
        return ["toyproj:seed7"]

    def space(self, name: str) -> RandomProjectionSpace | None:
        rest = name.partition(":")[2]
        if not rest.startswith("seed") or not rest[4:].isdigit():
            return None
        return RandomProjectionSpace(
            name=name,
            group="2D",
            dim=12,
            input_size=16,
            description="a fixed random projection of the pixels",
            provenance={"family": "toyproj", "seed": int(rest[4:])},
        )


TOY = FeatureFamily(
    name="toyproj",
    description="a fixed random projection of the pixels (a test's toy family)",
    pattern="toyproj:seed<k>",
    methods=TOY_SENTENCE + " {cite}.",
    citations=(TOY_CITATION,),
    implementation=f"{__name__}:RandomProjectionSpaces",
)


def test_registered_families_cite_known_references_and_name_their_implementations():
    keys = bib_entries()
    for family in REGISTRY:
        assert set(family.citations) <= set(keys), family.name
        assert family.implementation.count(":") == 1 and family.description and family.pattern in spaces_help()
        assert all(f"[@{key}]" in family.methods_text() for key in family.citations)
    assert family_of("taskonomy:normal") is REGISTRY["taskonomy"] and family_of("nonsense") is None
    assert family_of("toyproj:seed7") is None


def test_a_toy_family_resolves_lists_and_leaves_no_trace():
    with REGISTRY.temporarily(TOY):
        assert "toyproj:seed<k>" in spaces_help()
        assert "toyproj:seed7" in available_feature_spaces()
        (space,) = resolve_feature_spaces(["toyproj:seed3"])
        assert isinstance(space, RandomProjectionSpace) and space.label == "seed3"
        with pytest.raises(ValueError, match="unknown feature space 'toyproj:other'"):
            resolve_feature_spaces(["toyproj:other"])
        assert TOY.methods_text() == f"{TOY_SENTENCE} [@{TOY_CITATION}]."
    assert "toyproj" not in REGISTRY
    with pytest.raises(ValueError, match="unknown feature space 'toyproj:seed3'"):
        resolve_feature_spaces(["toyproj:seed3"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("family"),
        n_participants=1,
        n_sessions=1,
        runs_per_session=2,
        trials_per_run=16,
        n_repeated=2,
        shape=(10, 10, 8),
        seed=3,
    )


def test_a_toy_family_is_fitted_written_reported_and_cited(tiny, tmp_path):
    out = tmp_path / "out"
    settings = ParticipantSettings(
        features=FeatureSettings(spaces=("toyproj:seed7",)),
        fit=FitSettings(cv_folds=3),
        comparisons=ComparisonSettings(contrast_bootstrap=0),
        outputs=OutputSettings(work_dir=tmp_path / "work"),
    )
    with REGISTRY.temporarily(TOY):
        outcome = run_participant(tiny.bids_dir, out, "CSI1", settings)
        reports = build_reports(out, participants=["CSI1"], group=False)
    assert reports.ok, reports.failures
    assert set(outcome.n_significant()) == {"toyproj:seed7"}  # fitted

    func = out / "sub-CSI1" / "func"
    (r_map,) = func.glob("sub-CSI1_task-*_desc-seed7_stat-r_statmap.nii.gz")  # written, named by its label
    meta = json.loads(r_map.with_name(r_map.name.replace(".nii.gz", ".json")).read_text())
    assert meta["FeatureSpace"] == "toyproj:seed7" and meta["FeatureDimension"] == 12
    assert meta["FeatureProvenance"]["family"] == "toyproj"

    page = (out / "sub-CSI1.html").read_text()  # reported, with its family's sentence in the page's methods
    assert "seed7" in page and TOY_SENTENCE in page

    citation = (out / "logs" / "CITATION.md").read_text()  # cited
    assert f"{TOY_SENTENCE} [@{TOY_CITATION}]." in citation
    assert f"- [@{TOY_CITATION}] Mantel" in citation
    assert f"{{{TOY_CITATION}," in (out / "logs" / "CITATION.bib").read_text()

    # the sentence and the reference come from the entry: the same outputs, read without it, cite neither
    text, cited = render_methods(out)
    assert TOY_SENTENCE not in text and TOY_CITATION not in cited and "toyproj:seed7" in text
