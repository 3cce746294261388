"""Reading our outputs with pybids: the entity pybids does not know, and a layout that knows it.

Our statistic maps differ only by ``stat-`` (``..._desc-keypoints3d_stat-r_statmap.nii.gz``, ``..._stat-p_...``),
the entity of the statistical-maps naming that BIDS derivatives tools use (BEP041 draft, fMRIPrep-style
``_statmap``). pybids' own configurations (``bids``, ``derivatives``) have no ``stat``: a plain
``BIDSLayout(out, is_derivative=True)`` sees a feature space's maps as one file set with equal entities, cannot
select a statistic, and its inheritance rule hands every map the metadata of whichever sidecar it finds first (the
alpha map's, say). :data:`PYBIDS_CONFIG` adds ``stat``; :func:`layout` opens an output folder with it.

>>> from bids_taskenc.outputs import layout                               # doctest: +SKIP
>>> lay = layout("derivatives/bids_taskenc")                               # doctest: +SKIP
>>> lay.get(subject="CSI1", desc="keypoints3d", stat="r", extension=".nii.gz")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

#: The pybids configuration of our entities (``stat``), used on top of pybids' ``bids`` and ``derivatives``.
PYBIDS_CONFIG = Path(__file__).with_name("pybids_config.json")

#: Folders of an output that hold no BIDS files (reports' figures, logs, the feature cache, staging folders).
NOT_INDEXED = ("figures", "logs", "features")


def layout(output_dir: str | Path, **kwargs):
    """A pybids ``BIDSLayout`` of a bids_taskenc output folder that selects and describes maps by ``stat``.

    Parameters
    ----------
    output_dir : path
        The derivatives folder (holding ``dataset_description.json``).
    **kwargs
        Passed to ``BIDSLayout`` (e.g. ``database_path``); ``config``, ``validate``, ``is_derivative`` and
        ``indexer`` are set here.

    Returns
    -------
    bids.BIDSLayout
        ``layout.get(stat="r", desc="keypoints3d", extension=".nii.gz")`` selects one statistic, and
        ``layout.get_metadata(path)`` returns that map's own sidecar.
    """
    import re

    from bids import BIDSLayout, BIDSLayoutIndexer

    ignore = [re.compile(r"(/\.)"), *(re.compile(rf"^/{name}(/|$)") for name in NOT_INDEXED)]
    return BIDSLayout(
        Path(output_dir),
        validate=False,
        is_derivative=True,
        config=["bids", "derivatives", str(PYBIDS_CONFIG)],
        indexer=BIDSLayoutIndexer(validate=False, ignore=ignore),
        **kwargs,
    )
