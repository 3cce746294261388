"""Images -> feature matrices (no BIDS here).

Modules, one job each:

* ``base``      the FeatureSpace interface and FeatureError;
* ``registry``  names -> feature spaces (``resolve_feature_spaces``, ``available_feature_spaces``);
* ``pipeline``  ``featurize``: decode once, every space, cache;
* ``taskonomy`` the Taskonomy encoders: task tables, architecture, task inputs, random checkpoints;
* ``store``     the weights store: locate, verify, download;
* ``images``    decode, centre-crop, resize;
* ``cache``     content-addressed feature rows on disk;
* ``baselines`` weight-free controls (Gabor energy, pixels, colour);
* ``torchvision_spaces`` optional torchvision models at a layer;
* ``user``      user-supplied features (``--features-dir``).

Importing this package imports none of them (torch loads only when needed).
"""
