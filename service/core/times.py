"""Time as integer microseconds since the Unix epoch: exact window arithmetic, no float drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["MINUTE", "SECOND", "from_us", "micros", "to_us", "us_to_iso"]

SECOND = 1_000_000
MINUTE = 60 * SECOND
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (a naive one is read as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_US


def micros(duration: timedelta) -> int:
    """Whole microseconds of a duration."""
    return duration // _ONE_US


def from_us(value: int) -> datetime:
    """The aware UTC datetime of a microsecond timestamp."""
    return _EPOCH + timedelta(microseconds=value)


def us_to_iso(value: int) -> str:
    """`2026-01-01T00:01:00Z` for whole seconds, else six fractional digits (replay contract)."""
    moment = from_us(value)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
