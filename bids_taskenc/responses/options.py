"""The response models' choices, without nibabel, pandas or torch: the command line's help and the settings'
checks read them (``bids_taskenc --help`` must not wait for the readers), the modules that compute import them.
"""

from __future__ import annotations

#: Rule -> what an image's response is (the parser's choices and help, the docs; :mod:`.repeats`).
REPEATS = {
    "average": "the mean of all its showings",
    "first": "its first showing only",
    "drop-repeats": "the showing the events do not mark as a repeat (BOLD5000's ImgType; "
    "Wang et al. 2019's code), else the first",
}

#: travg's z-scoring rule -> what it does (:mod:`.zscoring`).
ZSCORING = {
    "run": "each voxel's time series z-scored over the run's volumes (ours)",
    "trials": "each lag's response volumes z-scored over the run's trials (Wang et al. 2019's code)",
}

#: Over which trials a voxel's single-trial betas are z-scored (:func:`.lsa.lsa_responses`'s ``zscore``).
LSA_ZSCORE_UNITS = ("session", "run")
#: ``--lsa-zscore``'s default: per session, as GLMsingle's and NSD's betas are.
DEFAULT_LSA_ZSCORE = "session"

#: nilearn's HRF models the lsa design may convolve the trials with (``--hrf-model``).
HRF_MODELS = ("glover", "spm")
#: ``--hrf-model``'s default.
DEFAULT_HRF_MODEL = "glover"
