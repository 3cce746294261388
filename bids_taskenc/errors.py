"""Errors that end a run, and the one table from exception to BIDS-Apps exit code (:data:`EXIT_CODES`).

Every layer may raise these; only ``cli`` turns them into an exit code and one
line on stderr. The codes follow the BIDS-Apps execution spec (docs/errors.md).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_VALIDATION = 16
EXIT_NO_FILES = 18
EXIT_USAGE = 64
EXIT_INPUT_MISSING = 66
#: Ctrl-C: 128 + SIGINT. A run stopped by another signal exits with 128 + its number (143 for SIGTERM).
EXIT_INTERRUPTED = 130

#: The one table from exception to exit code: every exception class of the package, by import path (so that this
#: module imports nothing of ours and the engines' exceptions, which may not import it, are listed too), and the
#: code the command line exits with when it ends a run. A class takes the code of the first class of its MRO listed
#: here; an exception of no listed class (a bug, an unforeseen input) is a failure, 1, with a crash file.
#: Callers that know more re-raise a low-level error as the error of their context (an unreadable --config file is
#: a usage error, an unreadable dataset_description.json a validation error): the code is then the new error's.
EXIT_CODES: dict[str, int] = {
    "bids_taskenc.errors:TaskencError": EXIT_FAILURE,
    "bids_taskenc.errors:UsageError": EXIT_USAGE,
    "bids_taskenc.errors:InvalidSettingError": EXIT_USAGE,
    "bids_taskenc.errors:InputMissingError": EXIT_INPUT_MISSING,
    "bids_taskenc.errors:ValidationError": EXIT_VALIDATION,
    "bids_taskenc.errors:NoFilesError": EXIT_NO_FILES,
    "bids_taskenc.errors:InputDataError": EXIT_FAILURE,
    "bids_taskenc.outputs.locks:OutputBusyError": EXIT_FAILURE,
    # the feature engine: a file whose content is wrong, or features that fail to compute, is a failure; a file
    # that is not there is input missing; a name that names no space (or two spaces of one label) is usage
    "bids_taskenc.features.base:FeatureError": EXIT_FAILURE,
    "bids_taskenc.features.base:FeatureInputMissing": EXIT_INPUT_MISSING,
    "bids_taskenc.features.base:FeatureChoiceError": EXIT_USAGE,
    "bids_taskenc.features.registry:FeatureLabelConflict": EXIT_USAGE,
    # the group level: participant outputs (or the --reference-affinities file) it cannot read
    "bids_taskenc.group.inputs:GroupInputError": EXIT_INPUT_MISSING,
    "bids_taskenc.outputs.reading:DerivativeReadError": EXIT_INPUT_MISSING,
    "bids_taskenc.group.reference:ReferenceDataError": EXIT_INPUT_MISSING,
    # rules of core/: a choice not in a registry is usage; the others are re-raised by their callers
    "bids_taskenc.core.registry:UnknownChoiceError": EXIT_USAGE,
    "bids_taskenc.core.textfiles:UnreadableFileError": EXIT_USAGE,
    "bids_taskenc.core.download:DownloadError": EXIT_FAILURE,
    "bids_taskenc.workflow.cache:CacheEntryError": EXIT_FAILURE,
    # stopped: Ctrl-C, or SIGTERM/SIGHUP as Ctrl-C (cli/signals.py: 128 + the signal's number)
    "builtins:KeyboardInterrupt": EXIT_INTERRUPTED,
    "bids_taskenc.cli.signals:Terminated": EXIT_INTERRUPTED,
}


def listed_exit_code(exc: BaseException | type[BaseException]) -> int | None:
    """The code :data:`EXIT_CODES` gives ``exc`` (an exception or its class): the first of its MRO listed; None
    when no class of its MRO is listed (an unforeseen exception). A stop by a signal is 128 + its number."""
    signum = getattr(exc, "signum", None)
    if isinstance(exc, KeyboardInterrupt) and isinstance(signum, int):
        return 128 + signum
    cls = exc if isinstance(exc, type) else type(exc)
    for klass in cls.__mro__:
        code = EXIT_CODES.get(f"{klass.__module__}:{klass.__qualname__}")
        if code is not None:
            return code
    return None


def exit_code(exc: BaseException | type[BaseException]) -> int:
    """The exit code of a run ended by ``exc``: :func:`listed_exit_code`, else 1 (:data:`EXIT_FAILURE`)."""
    code = listed_exit_code(exc)
    return EXIT_FAILURE if code is None else code


class TaskencError(Exception):
    """Base class: a message for the user; its exit code is in :data:`EXIT_CODES`."""

    @property
    def exit_code(self) -> int:
        """This error's BIDS-Apps exit code (:func:`exit_code`)."""
        return exit_code(self)


class UsageError(TaskencError):
    """The command line or configuration is wrong."""


class InvalidSettingError(UsageError, ValueError):
    """A setting's value is outside what it accepts: ``setting`` names it (``FitSettings.cv_folds``), ``rule``
    says what it accepts, ``value`` is what it got. A :class:`ValueError` for Python callers; the command line
    names its option instead (:mod:`bids_taskenc.cli.settings`)."""

    def __init__(self, setting: str, rule: str, value: object):
        self.setting, self.rule, self.value = setting, rule, value
        super().__init__(f"{setting} {rule} (got {value!r})")


class InputMissingError(TaskencError):
    """A required input file or folder is not there."""


class ValidationError(TaskencError):
    """The input dataset is not valid BIDS (or not what we can read)."""


class NoFilesError(TaskencError):
    """The filters selected no files."""


class InputDataError(TaskencError):
    """An input file is there but its content is wrong (shape, column, value)."""
