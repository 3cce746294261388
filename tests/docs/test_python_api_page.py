"""The Python snippets of docs/python-api.md run as written against a demo-shaped dataset.

The page tells a user to run them after ``make demo`` from the repository root; here a small
dataset in the demo's layout (``demo/bids`` on the MNI152 brain, the user feature spaces in
``demo/bids/derivatives/features``, two participants' outputs in
``demo/bids/derivatives/bids_taskenc``) stands in for the demo, and every ``python`` block is
executed in order in that folder. An earlier version told users ``features_dir="features"``,
which failed against the demo.
"""

import re
from pathlib import Path

import pytest

from bids_taskenc.testing.synthetic import make_synthetic_dataset
from bids_taskenc.workflow import (
    ComparisonSettings,
    FeatureSettings,
    FitSettings,
    InputSettings,
    ParticipantSettings,
    run_participant,
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
def test_python_api_page_runs_against_a_demo_shaped_dataset(tmp_path, monkeypatch):
    data = make_synthetic_dataset(
        tmp_path / "demo",
        n_participants=2,
        n_sessions=1,
        runs_per_session=2,
        trials_per_run=24,
        n_repeated=4,
        template="MNI152NLin2009cAsym",
        template_resolution_mm=10,
        seed=0,
    )
    assert data.bids_dir == tmp_path / "demo" / "bids"
    monkeypatch.chdir(tmp_path)  # the default work folder, ./work, and the page's relative paths
    settings = ParticipantSettings(
        inputs=InputSettings(space="MNI152NLin2009cAsym"),
        features=FeatureSettings(
            spaces=("user:edge2da", "user:scene3da", "user:objecta"), features_dir=data.features_dir
        ),
        fit=FitSettings(cv_folds=3),
        comparisons=ComparisonSettings(contrast_bootstrap=0),
    )
    for label in ("CSI1", "CSI2"):
        run_participant(data.bids_dir, data.bids_dir / "derivatives" / "bids_taskenc", label, settings)

    blocks = python_blocks(PAGE)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)  # noqa: S102 - our own docs page

    assert namespace["outcome"].result.mean_similarity.shape[0] >= 2
    assert any(Path(tmp_path, "demo", "python_out").rglob("*_desc-edge2da_stat-r_statmap.nii.gz"))
