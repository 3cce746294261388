"""CUDA tests: ``pytest -m cuda tests/cuda`` (the GPU check's step ``cuda_tests``).

Each module that needs a GPU sets ``pytestmark`` to the marker ``cuda`` and a
skip where torch sees no CUDA device, so a CPU run collects those tests and
skips them before any fixture builds data. No ``__init__.py`` here on purpose:
a package named ``cuda`` would shadow NVIDIA's ``cuda`` Python package.
"""
