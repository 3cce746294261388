"""Errors that end a run, each with its BIDS-Apps exit code.

Every layer may raise these; only ``cli`` turns them into an exit code and one
line on stderr. The codes follow the BIDS-Apps execution spec.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_VALIDATION = 16
EXIT_NO_FILES = 18
EXIT_USAGE = 64
EXIT_INPUT_MISSING = 66


class TaskencError(Exception):
    """Base class: a message for the user and an exit code."""

    exit_code = EXIT_FAILURE


class UsageError(TaskencError):
    """The command line or configuration is wrong."""

    exit_code = EXIT_USAGE


class InvalidSettingError(UsageError, ValueError):
    """A setting's value is outside what it accepts: ``setting`` names it (``FitSettings.cv_folds``), ``rule``
    says what it accepts, ``value`` is what it got. A :class:`ValueError` for Python callers; the command line
    names its option instead (:mod:`bids_taskenc.cli.settings`)."""

    def __init__(self, setting: str, rule: str, value: object):
        self.setting, self.rule, self.value = setting, rule, value
        super().__init__(f"{setting} {rule} (got {value!r})")


class InputMissingError(TaskencError):
    """A required input file or folder is not there."""

    exit_code = EXIT_INPUT_MISSING


class ValidationError(TaskencError):
    """The input dataset is not valid BIDS (or not what we can read)."""

    exit_code = EXIT_VALIDATION


class NoFilesError(TaskencError):
    """The filters selected no files."""

    exit_code = EXIT_NO_FILES


class InputDataError(TaskencError):
    """An input file is there but its content is wrong (shape, column, value)."""

    exit_code = EXIT_FAILURE
