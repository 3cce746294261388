"""Suite-wide set-up: one thread per math library, the ``slow`` marker on app runs, shared synthetic datasets.

Threads. The tests fit thousands of tiny problems (tens of samples, a few voxels). A multi-threaded BLAS or
torch pool costs more than it gives on such sizes, and on a shared 2-core machine its threads spin against
each other: ``tests/encoding/test_banded.py`` took 18 s with one thread and several minutes without a limit
under load. The limits are defaults: ``OMP_NUM_THREADS=2 pytest ...`` still runs multi-threaded. The thread-pool
paths of the engines are exercised on purpose by ``tests/encoding/test_thread_pools.py``.

Markers. Every test that runs the app end to end (its command line, ``run_participant``, or a fixture that
does) is marked ``slow`` in its file (CONTRIBUTING): ``pytest -m "not slow"`` is the quick loop, ``make test``
runs everything.
"""

from __future__ import annotations

import os
import shutil

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy / torch are imported by the test modules

import pytest  # noqa: E402

from bids_taskenc.testing import make_synthetic_dataset  # noqa: E402


def pytest_configure(config):
    """Apply the thread limit to BLAS pools a plugin may already have loaded."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(os.environ["OMP_NUM_THREADS"]))


#: The one-participant dataset most engine and app tests need: 2 runs of 16 trials, 2 repeated images.
SMALL = dict(
    n_participants=1,
    n_sessions=1,
    runs_per_session=2,
    trials_per_run=16,
    n_repeated=2,
    shape=(10, 10, 8),
    seed=3,
)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """The :data:`SMALL` dataset, made once per session: read it, never write into it (use ``small_copy``)."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("small"), **SMALL)


@pytest.fixture
def small_copy(small_dataset, tmp_path):
    """A private copy of the small dataset's folder tree (BIDS dir at ``copy/bids``)."""
    root = tmp_path / "copy"
    shutil.copytree(small_dataset.bids_dir.parent, root)
    return root
