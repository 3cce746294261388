"""A response model is one module and one registry entry: the registry's entries agree with their methods text and
citations, the parser and the settings read their choices from responses/, and a toy model registered for one test
is run, written, reported and cited."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from bids_taskenc.errors import InvalidSettingError
from bids_taskenc.responses.options import DEFAULT_HRF_MODEL, HRF_MODELS
from bids_taskenc.responses.registry import REGISTRY, ResponseJob, ResponseModel
from bids_taskenc.workflow.settings import ResponseSettings

#: A reference the methods text of this run cites nowhere else (the group's tree text), so finding it proves the
#: toy entry's citation reached CITATION.md.
TOY_CITATION = "eklund2016cluster"
TOY_SENTENCE = "Responses were those of the toy model, a relabelled TR average"
CALLS: list[int] = []


def toy_model(job: ResponseJob):
    """travg's responses, marked: the toy entry's implementation (found by its import path)."""
    from bids_taskenc.responses.travg import travg_model

    CALLS.append(len(job.runs))
    responses = travg_model(job)
    responses.provenance["ToyMarker"] = "toy"
    return responses


TOY = ResponseModel(
    name="toy",
    description="a relabelled TR average (a test's toy)",
    methods=TOY_SENTENCE + " [@" + TOY_CITATION + "], of {{ response_trs }} TRs.",
    citations=(TOY_CITATION,),
    implementation=f"{__name__}:toy_model",
)


def _cited(text: str) -> set[str]:
    return set(re.findall(r"\[@([\w-]+)\]", text))


@pytest.mark.parametrize("model", list(REGISTRY), ids=lambda m: m.name)
def test_every_entry_cites_what_it_lists_and_resolves(model):
    from bids_taskenc.report.citation import reference_list

    assert model.name and model.description and "\n" not in model.description
    assert _cited(model.methods) == set(model.citations) <= set(reference_list())
    assert callable(model.function())
    assert model.reads in ("bold", "betas")


def test_the_parser_and_the_settings_read_the_registry_and_options():
    from bids_taskenc.cli.parser import build_parser

    actions = {a.dest: a for a in build_parser()._actions}
    assert tuple(actions["responses"].choices) == REGISTRY.names() == ("travg", "lsa", "betas")
    assert tuple(actions["hrf_model"].choices) == HRF_MODELS
    assert actions["hrf_model"].default == DEFAULT_HRF_MODEL == ResponseSettings().hrf_model
    for model in REGISTRY:
        assert f"{model.name} = {model.description}" in actions["responses"].help
    with pytest.raises(InvalidSettingError, match="ResponseSettings.model must be one of travg, lsa, betas"):
        ResponseSettings(model="toy")
    with REGISTRY.temporarily(TOY):
        assert ResponseSettings(model="toy").model == "toy"
    assert "toy" not in REGISTRY


def test_settings_refuse_an_hrf_model_lsa_cannot_use():
    # failed before: ResponseSettings(hrf_model="fir") was accepted and the run failed (or ran) much later
    with pytest.raises(InvalidSettingError, match="ResponseSettings.hrf_model must be one of glover, spm"):
        ResponseSettings(hrf_model="fir")
    assert ResponseSettings(hrf_model="spm").hrf_model == "spm"


def test_a_model_that_reads_betas_is_treated_as_betas_by_its_entry(tmp_path):
    """What a run reads (--betas-dir or BOLD) follows the entry's ``reads``, not the name ``betas``: a plug-in that
    reads betas needs --betas-dir, skips the preprocessed BOLD, and its beta files key the work cache."""
    toy_betas = ResponseModel(
        name="toybetas",
        description="betas read by another name (a test's toy)",
        methods="Betas.",
        citations=(),
        implementation="bids_taskenc.responses.betas:betas_model",
        reads="betas",
    )
    with REGISTRY.temporarily(toy_betas):
        with pytest.raises(InvalidSettingError, match="betas_dir must be given"):
            ResponseSettings(model="toybetas")
        assert ResponseSettings(model="toybetas", betas_dir=tmp_path).reads_betas
    assert ResponseSettings(model="betas", betas_dir=tmp_path).reads_betas
    assert not ResponseSettings(model="travg").reads_betas and not ResponseSettings(model="lsa").reads_betas


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """One small participant fitted through the Python API with the toy response model, its report and citation."""
    from bids_taskenc.report import write_citation
    from bids_taskenc.report.participant import write_participant_report
    from bids_taskenc.testing import make_synthetic_dataset
    from bids_taskenc.workflow import (
        ComparisonSettings,
        FeatureSettings,
        FitSettings,
        OutputSettings,
        ParticipantSettings,
        run_participant,
    )

    root = tmp_path_factory.mktemp("toy")
    ds = make_synthetic_dataset(
        root, n_participants=1, n_sessions=1, runs_per_session=2, trials_per_run=16, n_repeated=2, shape=(10, 10, 8)
    )
    out = root / "out"
    CALLS.clear()
    with REGISTRY.temporarily(TOY):
        settings = ParticipantSettings(
            responses=ResponseSettings(model="toy"),
            features=FeatureSettings(spaces=("user:scene3da",), features_dir=ds.features_dir),
            fit=FitSettings(cv_folds=3),
            comparisons=ComparisonSettings(contrast_bootstrap=0),
            outputs=OutputSettings(work_dir=root / "work"),
        )
        run_participant(ds.bids_dir, out, "sub-CSI1", settings)
        page = write_participant_report(out, "CSI1")
        write_citation(out)
    return out, page


def test_a_registered_toy_model_is_run_written_reported_and_cited(toy_run):
    out, page = toy_run
    assert CALLS == [2]  # used: its implementation ran once, on the participant's two runs
    sidecar = json.loads(next((out / "sub-CSI1" / "func").glob("*desc-scene3da_stat-r_statmap.json")).read_text())
    assert sidecar["Responses"]["ResponseModel"] == "toy"  # written: the registry's name, in every sidecar
    assert sidecar["Responses"]["ToyMarker"] == "toy"
    methods = (out / "logs" / "CITATION.md").read_text()
    assert TOY_SENTENCE + " [@" + TOY_CITATION + "], of 3, 4 TRs." in methods  # reported: the entry's text
    assert re.search(rf"^- \[@{TOY_CITATION}\] Eklund", methods, re.M)  # cited: in the reference list
    assert TOY_CITATION in (out / "logs" / "CITATION.bib").read_text()
    html = page.read_text()
    assert TOY_SENTENCE in html and "toy" in html  # the participant page's methods and data table


@pytest.mark.parametrize("model", ["toy", "travg", "lsa"])
def test_the_response_paragraph_ends_its_line(toy_run, tmp_path, model):
    # failed before: the travg and lsa paragraphs ran into the next sentence ("...were averaged.The noise ceiling",
    # as main's demo CITATION.md reads); the toy run's outputs, relabelled, stand for a run of each model
    from bids_taskenc.report.citation import render_methods

    out = shutil.copytree(toy_run[0], tmp_path / "out")
    for path in (out / "sub-CSI1").rglob("*.json"):
        path.write_text(path.read_text().replace('"ResponseModel": "toy"', f'"ResponseModel": "{model}"'))
    with REGISTRY.temporarily(TOY):
        text, _ = render_methods(out)
    assert "The noise ceiling of each voxel" in text
    assert not re.search(r"\.The noise ceiling", text)
    assert re.search(r"averaged\.\nThe noise ceiling|TRs\.\nThe noise ceiling", text)
