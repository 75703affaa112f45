"""Exception types the library raises; the CLI turns each into one `Error:` line.

Every error carries what went wrong (`message`) and what to do about it (`hint`), so that
`str(err)` reads "<what> — <what to do>".
"""

from __future__ import annotations

from reuse.core import exit_codes


class ReuseError(Exception):
    """Base class of every error `reuse` reports to a person."""

    exit_code = exit_codes.ERROR

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class UsageError(ReuseError):
    """Options that contradict each other or are malformed."""

    exit_code = exit_codes.USAGE


class ModelLoadError(ReuseError):
    """A model file or folder could not be read."""


class UnsafeModelError(ModelLoadError):
    """The model needs code execution (Lambda layer) and `--unsafe` was not given."""


class LayerNotFound(ReuseError):
    """A layer name that the model does not have."""


class SelectionError(ReuseError):
    """A layer selector that selects nothing or is contradictory."""


class CutError(ReuseError):
    """A cut point that the model's graph does not allow."""


class DataError(ReuseError):
    """Input data that cannot be read or does not fit."""


class CacheMismatch(ReuseError):
    """A feature cache that was made with another model or other data."""


class CacheIncomplete(ReuseError):
    """A feature cache whose writing did not finish."""


class SpecError(UsageError):
    """A malformed layer, optimizer or schedule spec."""


class WeightImportError(ReuseError):
    """Weights that cannot be mapped into the target architecture."""


class TrainingDiverged(ReuseError):
    """The loss became NaN or Inf."""


class OutputError(ReuseError):
    """An output path that cannot or must not be written."""


class Interrupted(ReuseError, KeyboardInterrupt):
    """Ctrl-C after something resumable was kept (a feature cache's `.part.h5`): the message
    says what was kept and how to continue. Still a KeyboardInterrupt, so code that catches
    one catches this too; the CLI prints its words, with exit code 130."""

    exit_code = exit_codes.INTERRUPTED
