"""The small hierarchy of errors Tripwire raises, each with a message a user can act on."""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ConfigError",
    "DeadLetterFailed",
    "DecodeError",
    "ServiceError",
    "StateStoreError",
    "TableClosed",
    "ValidationFailed",
]


class ServiceError(Exception):
    """Root of every error Tripwire raises on purpose."""

    retriable: ClassVar[bool] = False


class ValidationFailed(ServiceError):
    """Input (an event or an automation) broke a rule; the message names the field and rule."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in errors))


class DecodeError(ServiceError):
    """A record could not be decoded (not JSON, not an object, invalid UTF-8, too large)."""

    def __init__(self, message: str, kind: str = "undecodable") -> None:
        super().__init__(message)
        # A short, fixed name of what was wrong: the dead-letter metric's reason label.
        self.kind = kind


class ConfigError(ServiceError):
    """A setting or an input file is unusable.

    Operator action: fix the setting or path named in the message and start again.
    """


class StateStoreError(ServiceError):
    """The state store could not be opened or written.

    Operator action: check that the state directory is writable and not held by another worker.
    """

    retriable = True


class TableClosed(StateStoreError):
    """The worker is stopping and its tables are closed; the batch was not written.

    Its offsets stay uncommitted, so the next owner of the partition reads it again.

    Operator action: none; this is part of a clean shutdown.
    """

    retriable = False


class DeadLetterFailed(ServiceError):
    """A record could not be written to its dead-letter topic, not even as a cut copy.

    Its batch is not committed: the partition is read again from it until the topic can
    be written.

    Operator action: check that the dead-letter topic named in the message exists and
    that the broker accepts writes to it.
    """

    retriable = True
