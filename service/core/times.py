"""Time as integer microseconds since the Unix epoch: exact window arithmetic, no float drift."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from service.errors import ConfigError

__all__ = ["MINUTE", "SECOND", "from_us", "micros", "to_us", "us_to_iso"]

SECOND = 1_000_000
MINUTE = 60 * SECOND
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001  # us_to_iso formats UTC without an offset
_ONE_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (a naive one is read as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_US


def micros(duration: timedelta) -> int:
    """Whole microseconds of a duration."""
    return duration // _ONE_US


_MIN_US = to_us(datetime.min.replace(tzinfo=UTC))
_MAX_US = to_us(datetime.max.replace(tzinfo=UTC))


def from_us(value: int) -> datetime:
    """The aware UTC datetime of a microsecond timestamp, clamped to what datetime holds.

    An event at 9999-12-31 has a window ending past datetime's range (and one at 0001-01-01
    a look-back starting before it); the integers stay exact, only their text is clamped.
    """
    return _EPOCH + timedelta(microseconds=min(max(value, _MIN_US), _MAX_US))


def us_to_iso(value: int) -> str:
    """`2026-01-01T00:01:00Z` for whole seconds, else six fractional digits (replay contract)."""
    # A naive datetime's isoformat() is exactly that less the Z: a four-digit year, and
    # six fractional digits only when there are microseconds; a third of strftime's cost
    # (twice per firing in replay).
    return (
        _NAIVE_EPOCH + timedelta(microseconds=min(max(value, _MIN_US), _MAX_US))
    ).isoformat() + "Z"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_time(text: str, now: datetime) -> datetime:
    """`--since`: a duration back from now (30m, 2h, 7d) or an ISO 8601 time (UTC if bare)."""
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = (
            f"--since {text!r}: give a duration (90s, 30m, 2h, 7d, 1w) or an ISO 8601 "
            "time such as 2026-01-01T12:00:00Z"
        )
        raise ConfigError(msg) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
