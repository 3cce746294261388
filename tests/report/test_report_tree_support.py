"""What the group report and the methods text say the tree's clade support means (issue 23 §2).

Three fake participants (report_fixtures.fake_outputs): the default resampling is participant-t and the
support is called calibrated; a block bootstrap with too few boxes is called descriptive.
The two-participant case (block by default, descriptive) is checked on the CLI run in test_report_outputs.
"""

from __future__ import annotations

import pytest
from report_fixtures import fake_outputs

from bids_taskenc.report import write_group_report
from bids_taskenc.report.citation import render_methods
from bids_taskenc.workflow.group import GroupSettings, run_group

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture
def three(tmp_path):
    out = tmp_path / "out"
    for i, participant in enumerate(("01", "02", "03")):
        fake_outputs(out, space="T1w", seed=i, participant=participant, hot_seed=7)
    return out


def _run(out, **settings):
    run_group(out, out, GroupSettings(n_bootstrap=20, n_permutations=99, offline=True, **settings))
    return write_group_report(out).read_text(), render_methods(out)[0]


def test_default_support_at_three_participants_is_called_calibrated(three, tmp_path):
    html, md = _run(three)
    assert "<strong>participant t</strong>" in html and "t with 2 degrees of freedom" in html
    assert 'id="support-calibrated"' in html and 'id="support-descriptive"' not in html
    assert "bootstrap support (descriptive)" not in html
    assert "Student-t distribution over participants" in md and "t variate with 2 degrees of freedom" in md
    assert "kept spurious clades with support of 0.95 or more under 5 % in simulations" in md
    assert "descriptive" not in md


def test_block_support_from_too_few_boxes_is_called_descriptive(three, tmp_path):
    html, md = _run(three, tree_bootstrap="block", bootstrap_block_mm=200.0)
    assert 'id="support-descriptive"' in html and "bootstrap support (descriptive)" in html
    assert "only 1 boxes of 25x25x25 voxels (fewer than 30)" in html.split('id="support-descriptive"')[1]
    assert "This support is descriptive only" in md and "[@eklund2016cluster]" in md
    assert "no calibrated alternative" not in md  # three participants: participant-t was there to choose
