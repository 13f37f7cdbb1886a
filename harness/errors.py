"""The harness's expected failures: one base class with an exit code.

Only a :class:`HarnessError` becomes a one-line message at the command line; anything else (a ``ValueError``
from a real bug included) keeps its traceback. Subclasses also derive from the builtin they refine, so library
callers can catch ``ValueError`` / ``KeyError`` / ``FileNotFoundError`` as before.
"""

from __future__ import annotations


class HarnessError(Exception):
    """An expected failure with a one-line message; ``exit_code`` is what the command exits with."""

    exit_code = 2


class UsageError(HarnessError, ValueError):
    """A bad option or option value."""


class DataError(HarnessError, RuntimeError):
    """Bad or missing data: the message is one line naming the file or folder."""


class MissingFileError(HarnessError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class UnknownModelError(HarnessError, KeyError):
    """A model name the zoo does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class CheckpointMismatchError(HarnessError, RuntimeError):
    """A checkpoint that cannot be read or whose tensors do not fit the model."""


class MissingCheckpointError(HarnessError, RuntimeError):
    """A model with learnable weights and no checkpoint to evaluate."""


class NonFiniteResultError(HarnessError, RuntimeError):
    """A model output or a measurement that is NaN or infinite: never stored, never printed as a number."""


class StoreError(HarnessError, RuntimeError):
    """A results store that cannot be opened, read or written."""


class NonFiniteLossError(HarnessError, RuntimeError):
    """The loss became NaN or inf; training stopped without writing the bad weights."""

    exit_code = 3


class UnknownArchitectureError(HarnessError, KeyError):
    """A checkpoint no zoo detector (nor spandrel) recognises."""

    def __str__(self) -> str:
        return str(self.args[0])


class AmbiguousCheckpointError(HarnessError, RuntimeError):
    """A checkpoint two zoo entries fit equally well; ``--model`` (or ``--scale``) decides."""


class DownloadError(HarnessError, RuntimeError):
    """A weights download that failed, was cut short or does not have its pinned hash (no file is left)."""
