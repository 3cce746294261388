"""Rules every layer shares, each in one place; this package imports nothing of ours (but ``__about__``).

* :mod:`~bids_taskenc.core.fdr`: Benjamini–Hochberg q, "q below the FDR level", the default level and the
  level a sidecar records;
* :mod:`~bids_taskenc.core.atomic`: write to a temporary name beside the target, then rename;
* :mod:`~bids_taskenc.core.labels`: the BIDS-safe label of a name;
* :mod:`~bids_taskenc.core.masks`: which voxels a mask holds, and a vector over them back into a volume;
* :mod:`~bids_taskenc.core.versions`: the software versions recorded in sidecars and reports;
* :mod:`~bids_taskenc.core.download`: one download with a known sha256 (weights store, reference affinities).

The engines (``encoding/``, ``features/``) may import this package and nothing else of ours, so a rule they
share with the BIDS side lives here (the import contracts in ``pyproject.toml`` check it).
"""
