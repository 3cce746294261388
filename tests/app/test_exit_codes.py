"""One table from exception to exit code (``bids_taskenc.errors.EXIT_CODES``, docs/errors.md).

A feature file whose content is wrong ended as exit 66 when the spaces were resolved (``workflow/dataset.py``
wrapped every FeatureError as "input missing") and as exit 1 when its rows were looked up (``workflow/inputs.py``
wrapped it as "input data"); both are now the table's FeatureError code, 1, and a file that is not there is 66.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import bids_taskenc
from bids_taskenc.errors import (
    EXIT_CODES,
    EXIT_FAILURE,
    EXIT_INPUT_MISSING,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    exit_code,
    listed_exit_code,
)
from bids_taskenc.features.base import FeatureInputMissing

from .conftest import run_app

#: Modules that need an optional extra (pycortex, ...) are skipped when it is not installed.
_OPTIONAL = ("cortex",)


def _our_exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in the package, by ``module:qualname``."""
    found = {}
    for info in pkgutil.walk_packages(bids_taskenc.__path__, "bids_taskenc."):
        try:
            module = importlib.import_module(info.name)
        except ImportError as exc:
            if getattr(exc, "name", None) in _OPTIONAL:
                continue
            raise
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}:{obj.__qualname__}"] = obj
    return found


def test_every_exception_class_of_ours_has_exactly_one_code():
    ours = _our_exception_classes()
    assert len(ours) >= 15, sorted(ours)
    missing = sorted(set(ours) - set(EXIT_CODES))
    assert not missing, f"exception classes without an exit code in bids_taskenc.errors.EXIT_CODES: {missing}"
    for key, code in EXIT_CODES.items():
        module, _, name = key.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert listed_exit_code(cls) == code, key  # the class's own row, not an ancestor's
        assert code in (EXIT_FAILURE, 16, 18, EXIT_USAGE, EXIT_INPUT_MISSING, EXIT_INTERRUPTED), key


def test_codes_of_the_feature_engine_and_of_signals():
    from bids_taskenc.cli.signals import Terminated
    from bids_taskenc.features.base import FeatureChoiceError, FeatureError
    from bids_taskenc.features.registry import FeatureLabelConflict
    from bids_taskenc.group.inputs import GroupInputError

    assert exit_code(FeatureError("x")) == EXIT_FAILURE
    assert exit_code(FeatureInputMissing("x")) == EXIT_INPUT_MISSING
    assert exit_code(FeatureChoiceError("x")) == exit_code(FeatureLabelConflict("x")) == EXIT_USAGE
    assert exit_code(GroupInputError("x")) == EXIT_INPUT_MISSING
    assert exit_code(KeyboardInterrupt()) == 130 and exit_code(Terminated(15)) == 143
    assert exit_code(RuntimeError("a bug")) == EXIT_FAILURE and listed_exit_code(RuntimeError("a bug")) is None


def test_feature_engine_errors_name_their_cause(tmp_path):
    from bids_taskenc.features.registry import resolve_feature_spaces

    folder = tmp_path / "features" / "scenes"
    folder.mkdir(parents=True)
    with pytest.raises(FeatureInputMissing) as missing:
        resolve_feature_spaces(["user:scenes"], features_dir=tmp_path / "features")
    assert exit_code(missing.value) == EXIT_INPUT_MISSING and "features.npy" in str(missing.value)
    with pytest.raises(ValueError) as unknown:
        resolve_feature_spaces(["taskonomy:no_such_task"])
    assert exit_code(unknown.value) == EXIT_USAGE and "no_such_task" in str(unknown.value)
    with pytest.raises(ValueError) as offline:
        resolve_feature_spaces(["taskonomy:normal"], weights_dir=tmp_path / "empty", offline=True)
    assert exit_code(offline.value) == EXIT_INPUT_MISSING


def _run(root, *extra):
    bids = root / "bids"
    return run_app(
        bids,
        root / "out",
        "participant",
        "--features-dir",
        bids / "derivatives" / "features",
        "--work-dir",
        root / "work",
        "--feature-spaces",
        "user:scene3da",
        "--contrast-bootstrap",
        "0",
        "--no-reports",
        "--cv-folds",
        "3",
        *extra,
    )


def _error_line(err: str) -> str:
    return next(ln for ln in err.splitlines() if ln.startswith("bids_taskenc: error:"))


def test_a_feature_file_with_wrong_content_is_exit_1_wherever_it_is_found(small_copy, capsys):
    """Complex features are refused when the spaces are resolved: exit 66 before, as if the file were missing."""
    npy = small_copy / "bids" / "derivatives" / "features" / "scene3da" / "features.npy"
    feats = np.load(npy)
    np.save(npy, feats + 1j * feats)
    assert _run(small_copy) == EXIT_FAILURE
    assert str(npy) in _error_line(capsys.readouterr().err)
    assert not (small_copy / "out").exists()


def test_a_missing_feature_file_is_exit_66(small_copy, capsys):
    tsv = small_copy / "bids" / "derivatives" / "features" / "scene3da" / "stimuli.tsv"
    tsv.unlink()
    assert _run(small_copy) == EXIT_INPUT_MISSING
    assert str(tsv) in _error_line(capsys.readouterr().err)
