"""Images -> feature matrices (no BIDS here).

Modules, one job each:

* ``base``      the FeatureSpace interface and FeatureError;
* ``families``  the feature families: one registry entry each (name pattern, description, methods sentence,
  citation keys, implementation); torch-free, read by the parser and the methods text;
* ``registry``  names -> feature spaces through the families (``resolve_feature_spaces``, ``available_feature_spaces``);
* ``pipeline``  ``featurize``: decode once, every space, cache;
* ``taskonomy`` the Taskonomy family: its feature space (``taskonomy_tasks``: the task tables;
  ``taskonomy_net``: architecture, task inputs, checkpoints, random checkpoints);
* ``cpu``       the precision modes and which precision an encoder runs in;
* ``store``     the weights store: locate, verify, download;
* ``images``    decode, centre-crop, resize;
* ``cache``     content-addressed feature rows on disk;
* ``baselines`` weight-free controls (Gabor energy, pixels, colour);
* ``torchvision_spaces`` optional torchvision models at a layer;
* ``user``      user-supplied features (``--features-dir``).

Importing this package imports none of them (torch loads only when needed).
"""
