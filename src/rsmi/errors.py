"""The error hierarchy of rsmi: every failure a user can fix is an :class:`RSMIError`.

The message of each says what was wrong and what to do. The CLI maps them to exit codes by type
(:attr:`RSMIError.exit_code`), never by class name. Most subclasses also derive from the builtin
exception that code written before the hierarchy caught (``ValueError``, ``RuntimeError``,
``OSError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class RSMIError(Exception):
    """A failure the user can fix: bad input, file, setting or missing resource (exit 2)."""

    exit_code = 2


class ConfigError(RSMIError, ValueError):
    """A setting is invalid or inconsistent (a hyperparameter, a CLI option, a combination)."""


class InputError(RSMIError, ValueError):
    """A text or a batch of texts given for prediction cannot be used."""


class DataError(RSMIError, ValueError):
    """A dataset cannot be read or used (missing columns, too few examples, bad labels, ...)."""


class ModelLoadError(RSMIError, ValueError):
    """A model directory cannot be loaded (missing files, mismatched digests, unsafe formats)."""


class StoreError(RSMIError, ValueError):
    """A file rsmi owns cannot be read or written as expected (see :mod:`rsmi.store`)."""


class OutputError(StoreError):
    """An output path cannot be used: not a regular file, not writable, or not ours to replace."""


class RunDirError(StoreError):
    """An output directory cannot be used for this run; the message says what to do."""


class RunLockedError(RunDirError):
    """Another process is writing this run."""


class ResumeError(RunDirError):
    """A run cannot be resumed with what was asked (other settings, data, weights or examples)."""


class ResourceError(RSMIError, RuntimeError):
    """An offline resource (WordNet, tagger, vectors, optional package) is missing or broken."""


class NumericalError(RSMIError, ArithmeticError):
    """A model produced non-finite outputs (NaN / inf)."""


__all__ = [
    "ConfigError",
    "DataError",
    "InputError",
    "ModelLoadError",
    "NumericalError",
    "OutputError",
    "RSMIError",
    "ResourceError",
    "ResumeError",
    "RunDirError",
    "RunLockedError",
    "StoreError",
]
