"""One real run of the app through its command line, shared by the report tests.

Synthetic data -> participant level -> group level; the CLI writes the reports
and citation files itself. The synthetic feature spaces are copied under
Taskonomy task names (their groups unchanged) so that the group level can
compare the brain's task structure with Taskonomy's transfer affinities (bundled with the package) and the
group report shows that comparison too.
"""

from __future__ import annotations

import pytest
from report_fixtures import taskonomy_named_features

from bids_taskenc.cli.run import main as app_main
from bids_taskenc.testing.cli import main as synthetic_main


@pytest.fixture(scope="session")
def report_run(tmp_path_factory):
    """Run the app's participant and group levels once; return the output folder."""
    base = tmp_path_factory.mktemp("report_run")
    bids = base / "bids"
    assert synthetic_main([str(bids), "--participants", "2", "--sessions", "2", "--runs-per-session", "3"]) == 0
    features = taskonomy_named_features(bids / "derivatives" / "features", base / "features")
    out = bids / "derivatives" / "bids_taskenc"
    common = [str(bids), str(out)]
    assert app_main(common + ["participant", "--features-dir", str(features), "--work-dir", str(base / "work")]) == 0
    # offline: the Taskonomy comparison uses the affinities the package ships
    assert app_main(common + ["group", "--offline", "--n-bootstrap", "50"]) == 0
    return out
