"""Quiet hours: do not buzz a customer's phone at night with news that can wait.

A window such as 21:00-08:00 holds back messages on the channels that ring a phone
(SMS, WhatsApp) until it ends in the customer's own time. Email and chat are read
when the customer chooses, so they are not held by default. Some messages must not
wait: the acknowledgement of something the customer has just written (they are
awake, and expect it) and anything whose reason or priority is an override (a P1,
an incident the customer asked to hear about).
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from deskstream.phones import split_channel

PHONE_CHANNELS = frozenset({"sms", "whatsapp"})
ACKNOWLEDGEMENT = "acknowledgement"
OFF = frozenset({"", "off"})
_TIME = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
_SPEC = re.compile(rf"^{_TIME}-{_TIME}$")


class QuietHoursError(ValueError):
    """A quiet-hours setting that cannot be understood; raised at start-up so a typo
    does not silently send messages at 3 a.m."""


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: datetime.time
    end: datetime.time  # the window may span midnight (21:00-08:00)
    channels: frozenset[str]  # channels the window applies to, e.g. {"sms", "whatsapp"}
    overrides: frozenset[str]  # reasons or priorities that ignore the window, e.g. {"P1", "incident"}
    default_timezone: str  # IANA name used when nothing better is known

    @classmethod
    def parse(
        cls,
        spec: str,
        *,
        channels: str = "sms,whatsapp",
        overrides: str = "P1,incident",
        default_timezone: str = "UTC",
    ) -> QuietHours | None:
        """The window of `spec` ("HH:MM-HH:MM", seconds allowed so tests can use short
        windows), or None when quiet hours are off ("" or "off")."""
        text = spec.strip()
        if text.lower() in OFF:
            return None
        match = _SPEC.match(text)
        if not match:
            raise QuietHoursError(f"quiet hours {spec!r}: expected HH:MM-HH:MM (or HH:MM:SS-HH:MM:SS), or 'off'")
        start = _time(spec, *match.groups()[:3])
        end = _time(spec, *match.groups()[3:])
        if start == end:
            raise QuietHoursError(f"quiet hours {spec!r}: start and end are the same, so the window is empty or the whole day")
        if not valid_timezone(default_timezone):
            raise QuietHoursError(f"quiet hours: unknown time zone {default_timezone!r} (expected an IANA name such as Europe/Madrid)")
        return cls(start, end, _names(channels, lower=True), _names(overrides, lower=False), default_timezone)

    def covers(self, local: datetime.time) -> bool:
        """Whether a local wall-clock time is inside [start, end)."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def _time(spec: str, hours: str, minutes: str, seconds: str | None) -> datetime.time:
    try:
        return datetime.time(int(hours), int(minutes), int(seconds or 0))
    except ValueError:
        raise QuietHoursError(f"quiet hours {spec!r}: {hours}:{minutes}{':' + seconds if seconds else ''} is not a time of day") from None


def _names(spec: str, *, lower: bool) -> frozenset[str]:
    names = (name.strip() for name in spec.split(","))
    return frozenset((name.lower() if lower else name) for name in names if name)


def valid_timezone(name: str | None) -> bool:
    """Whether `name` is an IANA zone this machine knows (zoneinfo is the judge, so
    whatever passes here can be used for arithmetic later)."""
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def timezone_for(recipient: Mapping[str, str], hint: str | None, default: str) -> str:
    """The IANA zone to judge the recipient's night by.

    The browser's own zone (`hint`, from chat) is the best evidence, then the
    country and area code of a phone number, then `default`. A number that spans
    several zones (a Spanish mobile may be in Madrid or the Canaries) gives `default`
    when it is one of them -- the desk usually serves that zone -- else the first.
    """
    if hint is not None and valid_timezone(hint):
        return hint
    if recipient.get("channel") in PHONE_CHANNELS:
        zones = _phone_zones(recipient.get("address", ""))
        if default in zones:
            return default
        if zones:
            return zones[0]
    return default


def _phone_zones(address: str) -> list[str]:
    _, number = split_channel(address)
    try:
        parsed = phonenumbers.parse(number.strip(), None)
    except phonenumbers.NumberParseException:
        return []
    return [zone for zone in phone_timezones.time_zones_for_number(parsed) if valid_timezone(zone)]


def deferred_until(
    quiet: QuietHours | None,
    *,
    channel: str,
    reason: str,
    priority: str | None,
    timezone: str,
    now: datetime.datetime,
) -> datetime.datetime | None:
    """When a message may go out (aware, UTC), or None for now.

    The end of the window is built as a local wall-clock time and only then turned
    into UTC, so a night when the clocks change still ends at 08:00 on the wall. An
    end that falls in the hour skipped in spring is read with the offset from before
    the change (it ends a little late, never early); an end that happens twice in
    autumn is the first one still ahead.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("deferred_until needs an aware `now`; a naive one would be read as this machine's time")
    if quiet is None or channel.lower() not in quiet.channels:
        return None
    if reason == ACKNOWLEDGEMENT or reason in quiet.overrides or (priority is not None and priority in quiet.overrides):
        return None
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if not quiet.covers(local.time()):
        return None
    end_day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_day += datetime.timedelta(days=1)  # the window started this evening and ends tomorrow
    wall = datetime.datetime.combine(end_day, quiet.end, tzinfo=zone)
    now_utc = now.astimezone(datetime.timezone.utc)
    first = wall.astimezone(datetime.timezone.utc)
    if first > now_utc:
        return first
    return wall.replace(fold=1).astimezone(datetime.timezone.utc)
