"""How ``travg`` puts a run's responses in common units, by name.

:data:`ZSCORING` is the registry the command line (``--response-zscore``), the settings and the docs read:

* ``run`` (ours): each voxel's time series is z-scored over all the run's volumes, then the response volumes
  are read from it, so a trial's response is in standard deviations of the run's BOLD;
* ``trials`` (Wang et al.'s 2019 code, ``extract_cortical_voxels.py``): the response volumes of one lag are taken
  from the run (``floor(onset/TR) + L``) and z-scored over the run's trials, per voxel and lag, before the lags
  are averaged; the volumes between trials do not enter the mean and SD.

Z-scoring over trials is invariant to the per-voxel affine map of the ``run`` z-scoring (a positive scale and a
shift), so :func:`zscore_over_trials` may start from the run-z-scored volumes.
"""

from __future__ import annotations

import numpy as np

from .options import ZSCORING as ZSCORING  # noqa: E402  (its home is .options)


def zscore_over_trials(z: np.ndarray) -> np.ndarray:
    """``z`` (n_trials, n_lags, n_voxels) z-scored over the trials (axis 0), per lag and voxel, float32.

    Population SD (``numpy.std``, as the paper's ``zscore``); a voxel constant over the run's trials (or a run of
    one trial) is NaN there, so the response step drops it, as it drops voxels constant over time.
    """
    x = np.asarray(z, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = x - x.mean(0)
        sd = np.sqrt((centred * centred).mean(0))
        ok = sd > 1e-8 * (np.abs(x).max(0) + 1e-12)
        out = np.where(ok, centred / np.where(ok, sd, 1.0), np.nan)
    return out.astype(np.float32)
