"""Quiet hours: phones are not buzzed at night unless the message cannot wait."""
from __future__ import annotations

import datetime

import pytest

from services.notifier.quiet_hours import QuietHours, QuietHoursError, deferred_until, timezone_for

UTC = datetime.timezone.utc
MADRID = "Europe/Madrid"
NIGHT = QuietHours.parse("21:00-08:00", default_timezone=MADRID)


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def held(quiet: QuietHours | None = NIGHT, *, now: str, channel: str = "sms", reason: str = "update",
         priority: str | None = "P3", timezone: str = MADRID) -> datetime.datetime | None:
    return deferred_until(quiet, channel=channel, reason=reason, priority=priority, timezone=timezone, now=at(now))


def test_a_spec_is_read_with_the_default_channels_and_overrides():
    assert NIGHT == QuietHours(
        datetime.time(21), datetime.time(8), frozenset({"sms", "whatsapp"}), frozenset({"P1", "incident"}), MADRID,
    )


def test_seconds_are_allowed_so_tests_can_use_short_windows():
    quiet = QuietHours.parse("10:00:00-10:00:05", channels=" SMS , chat ,", overrides="")
    assert (quiet.start, quiet.end) == (datetime.time(10), datetime.time(10, 0, 5))
    assert (quiet.channels, quiet.overrides) == (frozenset({"sms", "chat"}), frozenset())


@pytest.mark.parametrize("spec", ["", "off", " OFF "])
def test_quiet_hours_can_be_turned_off(spec):
    assert QuietHours.parse(spec) is None


@pytest.mark.parametrize("spec, reason", [
    ("21-08", "HH:MM-HH:MM"),
    ("21:00", "HH:MM-HH:MM"),
    ("21:00-8", "HH:MM-HH:MM"),
    ("25:00-08:00", "not a time of day"),
    ("21:60-08:00", "not a time of day"),
    ("08:00-08:00", "the same"),
])
def test_a_spec_that_makes_no_sense_is_refused(spec, reason):
    with pytest.raises(QuietHoursError, match=reason):
        QuietHours.parse(spec)


def test_an_unknown_default_time_zone_is_refused():
    with pytest.raises(QuietHoursError, match="unknown time zone 'Europe/Atlantis'"):
        QuietHours.parse("21:00-08:00", default_timezone="Europe/Atlantis")


def test_a_quiet_hours_error_is_a_value_error():
    assert issubclass(QuietHoursError, ValueError)


@pytest.mark.parametrize("now, until", [
    ("2026-06-10T19:30:00", "2026-06-11T06:00:00"),  # 21:30 in Madrid (CEST): held until 08:00 tomorrow
    ("2026-06-10T23:00:00", "2026-06-11T06:00:00"),  # 01:00 in Madrid: held until 08:00 today
    ("2026-01-10T20:15:00", "2026-01-11T07:00:00"),  # 21:15 in Madrid (CET): winter offset
])
def test_a_window_spanning_midnight_holds_a_message_until_the_morning_in_madrid(now, until):
    assert held(now=now) == at(until)


@pytest.mark.parametrize("now", [
    "2026-06-10T06:00:00",  # 08:00 in Madrid: the window has just ended
    "2026-06-10T12:00:00",  # 14:00
    "2026-06-10T18:59:59",  # 20:59:59
])
def test_outside_the_window_a_message_goes_now(now):
    assert held(now=now) is None


def test_the_window_starts_on_the_dot():
    assert held(now="2026-06-10T19:00:00") == at("2026-06-11T06:00:00")


def test_a_window_within_one_day_holds_only_between_its_ends():
    siesta = QuietHours.parse("14:00-16:30")
    assert held(siesta, now="2026-06-10T12:30:00") == at("2026-06-10T14:30:00")  # 14:30 in Madrid
    assert held(siesta, now="2026-06-10T11:59:00") is None  # 13:59
    assert held(siesta, now="2026-06-10T14:30:00") is None  # 16:30


def test_the_result_is_an_aware_utc_datetime():
    until = held(now="2026-06-10T23:00:00")
    assert until.tzinfo is not None and until.utcoffset() == datetime.timedelta(0)


def test_the_recipients_own_time_decides_not_the_desks():
    assert held(now="2026-06-10T23:00:00", timezone="America/New_York") is None  # 19:00 in New York
    assert held(now="2026-06-11T02:00:00", timezone="America/New_York") == at("2026-06-11T12:00:00")


@pytest.mark.parametrize("channel", ["sms", "whatsapp", "SMS"])
def test_phone_channels_are_quiet_by_default(channel):
    assert held(now="2026-06-10T23:00:00", channel=channel) is not None


@pytest.mark.parametrize("channel", ["email", "chat"])
def test_email_and_chat_are_not_quiet_by_default(channel):
    assert held(now="2026-06-10T23:00:00", channel=channel) is None


def test_an_acknowledgement_is_never_deferred_because_the_customer_just_wrote_to_us():
    assert held(now="2026-06-10T23:00:00", reason="acknowledgement") is None


def test_an_acknowledgement_is_not_deferred_even_when_no_overrides_are_configured():
    quiet = QuietHours.parse("21:00-08:00", overrides="")
    assert held(quiet, now="2026-06-10T23:00:00", reason="acknowledgement", priority=None) is None


def test_a_p1_ignores_the_window():
    assert held(now="2026-06-10T23:00:00", priority="P1") is None


def test_an_incident_ignores_the_window():
    assert held(now="2026-06-10T23:00:00", reason="incident", priority=None) is None


def test_other_priorities_and_reasons_wait():
    assert held(now="2026-06-10T23:00:00", reason="resolved", priority="P2") is not None
    assert held(now="2026-06-10T23:00:00", reason="resolved", priority=None) is not None


def test_without_quiet_hours_nothing_waits():
    assert held(None, now="2026-06-10T23:00:00") is None


def test_the_night_madrid_springs_forward_still_ends_at_eight_on_the_wall():
    # 2026-03-29: 02:00 CET becomes 03:00 CEST, so 08:00 local is 06:00 UTC, not 07:00
    assert held(now="2026-03-28T21:30:00") == at("2026-03-29T06:00:00")  # 22:30 CET
    assert held(now="2026-03-29T01:30:00") == at("2026-03-29T06:00:00")  # 03:30 CEST


def test_the_night_madrid_falls_back_still_ends_at_eight_on_the_wall():
    # 2026-10-25: 03:00 CEST becomes 02:00 CET, so 08:00 local is 07:00 UTC
    assert held(now="2026-10-24T20:00:00") == at("2026-10-25T07:00:00")


def test_an_end_in_the_skipped_hour_ends_late_rather_than_early():
    quiet = QuietHours.parse("01:00-02:30")
    until = held(quiet, now="2026-03-29T00:15:00")  # 01:15 CET; 02:30 never shows on the wall that night
    assert until == at("2026-03-29T01:30:00")  # 03:30 CEST


def test_an_end_that_happens_twice_is_the_next_one_still_ahead():
    quiet = QuietHours.parse("01:00-02:30")
    assert held(quiet, now="2026-10-24T23:30:00") == at("2026-10-25T00:30:00")  # 01:30 CEST -> first 02:30 (CEST)
    assert held(quiet, now="2026-10-25T01:10:00") == at("2026-10-25T01:30:00")  # second 02:10 (CET) -> 02:30 CET


def test_a_naive_now_is_refused_rather_than_read_as_local_time():
    with pytest.raises(ValueError, match="aware"):
        deferred_until(NIGHT, channel="sms", reason="update", priority=None, timezone=MADRID,
                       now=datetime.datetime(2026, 6, 10, 23))


def test_a_spanish_number_is_in_madrid():
    assert timezone_for({"channel": "sms", "address": "+34912345678"}, None, "UTC") == MADRID


def test_a_spanish_mobile_spans_madrid_and_the_canaries_and_takes_the_desks_zone_when_it_is_one_of_them():
    mobile = {"channel": "whatsapp", "address": "+34600112233"}
    assert timezone_for(mobile, None, MADRID) == MADRID
    assert timezone_for(mobile, None, "UTC") in {MADRID, "Atlantic/Canary"}


def test_a_new_york_number_is_in_new_york():
    assert timezone_for({"channel": "sms", "address": "+12125550100"}, None, MADRID) == "America/New_York"


def test_a_whatsapp_address_in_twilios_form_is_understood():
    assert timezone_for({"channel": "whatsapp", "address": "whatsapp:+12125550100"}, None, MADRID) == "America/New_York"


@pytest.mark.parametrize("address", ["+447700900123", "not a number", ""])
def test_a_number_without_a_known_zone_falls_back_to_the_default(address):
    assert timezone_for({"channel": "sms", "address": address}, None, MADRID) == MADRID


def test_the_browsers_zone_wins_over_the_number():
    assert timezone_for({"channel": "sms", "address": "+34912345678"}, "America/Mexico_City", "UTC") == "America/Mexico_City"


@pytest.mark.parametrize("hint", ["Mars/Olympus_Mons", "", "../../etc/passwd", "Etc/Unknown"])
def test_a_bad_hint_falls_back(hint):
    assert timezone_for({"channel": "sms", "address": "+12125550100"}, hint, MADRID) == "America/New_York"
    assert timezone_for({"channel": "chat", "address": "session-1"}, hint, MADRID) == MADRID


def test_chat_uses_the_browsers_zone():
    assert timezone_for({"channel": "chat", "address": "session-1"}, "America/Mexico_City", MADRID) == "America/Mexico_City"


def test_email_has_no_zone_of_its_own():
    assert timezone_for({"channel": "email", "address": "ana@example.com"}, None, MADRID) == MADRID
