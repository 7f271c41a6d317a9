"""Rate limits: a broadcast leaves at the configured messages per second, in order."""
from __future__ import annotations

import asyncio
import time

import pytest

from services.notifier.rate_limit import RateLimits, TokenBucket, parse_rates
from tests.clocks import FakeClock


def test_a_burst_goes_at_once_and_the_rest_is_spaced_at_the_rate():
    bucket = TokenBucket(10, clock=FakeClock())
    waits = [bucket.reserve() for _ in range(15)]
    assert waits[:10] == [0.0] * 10
    assert waits[10:] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_callers_that_reserve_then_sleep_leave_evenly_spaced_and_in_order():
    clock = FakeClock()
    bucket = TokenBucket(20, burst=1, clock=clock)
    departures = [clock.now + bucket.reserve() for _ in range(100)]
    gaps = [later - earlier for earlier, later in zip(departures, departures[1:])]
    assert gaps == pytest.approx([0.05] * 99)


def test_the_burst_defaults_to_one_seconds_worth():
    assert TokenBucket(50).burst == 50
    assert TokenBucket(0.5).burst == 1  # at least one message may go at once


def test_tokens_come_back_with_time_but_no_more_than_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(2, clock=clock)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    clock.advance(0.5)
    assert bucket.reserve() == 0.0  # one token back after half a second
    assert bucket.reserve() == pytest.approx(0.5)
    clock.advance(3600)
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])  # an idle hour saves only the burst


def test_debt_is_paid_back_by_waiting():
    clock = FakeClock()
    bucket = TokenBucket(1, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 1.0, 2.0])
    clock.advance(2.0)
    assert bucket.reserve() == pytest.approx(1.0)


def test_a_clock_that_steps_back_refills_nothing():
    clock = FakeClock()
    bucket = TokenBucket(1, clock=clock)
    bucket.reserve()
    clock.advance(-10)
    assert bucket.reserve() == pytest.approx(1.0)


@pytest.mark.parametrize("rate", [0, -5, float("inf")])
def test_a_rate_of_zero_or_less_is_unlimited(rate):
    bucket = TokenBucket(rate, clock=FakeClock())
    assert bucket.unlimited
    assert [bucket.reserve() for _ in range(10_000)] == [0.0] * 10_000


@pytest.mark.parametrize("rate, burst", [(float("nan"), None), (10, 0), (10, -1), (10, float("nan"))])
def test_a_bucket_that_makes_no_sense_is_refused(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


async def test_acquire_sleeps_for_its_turn():
    bucket = TokenBucket(100, burst=1)
    started = time.monotonic()
    for _ in range(3):
        await bucket.acquire()
    assert time.monotonic() - started >= 0.019  # two waits of 10 ms; the first token was there


async def test_concurrent_callers_are_served_in_the_order_they_asked():
    bucket = TokenBucket(1000, burst=1)
    served: list[int] = []

    async def send(n: int) -> None:
        await bucket.acquire()
        served.append(n)

    await asyncio.gather(*(send(n) for n in range(5)))
    assert served == [0, 1, 2, 3, 4]


def test_each_channel_has_its_own_bucket():
    limits = RateLimits({"sms": 1, "whatsapp": 2}, clock=FakeClock())
    assert [limits.reserve("sms") for _ in range(2)] == pytest.approx([0.0, 1.0])
    assert [limits.reserve("whatsapp") for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])


def test_a_channel_missing_or_at_zero_is_unlimited():
    limits = RateLimits({"sms": 10, "chat": 0, "email": -1}, clock=FakeClock())
    assert (limits.rate("sms"), limits.rate("chat"), limits.rate("email"), limits.rate("whatsapp")) == (10.0, 0.0, 0.0, 0.0)
    assert all(limits.reserve(channel) == 0.0 for channel in ("chat", "email", "whatsapp") for _ in range(100))


async def test_acquire_on_an_unlimited_channel_returns_at_once():
    limits = RateLimits({})
    await asyncio.wait_for(asyncio.gather(*(limits.acquire("chat") for _ in range(1000))), timeout=1)


def test_rates_are_read_from_a_comma_separated_spec():
    assert parse_rates("sms=10,whatsapp=20,email=50,chat=0") == {"sms": 10.0, "whatsapp": 20.0, "email": 50.0, "chat": 0.0}


def test_spaces_case_fractions_and_a_trailing_comma_are_forgiven():
    assert parse_rates(" SMS = 0.5 , whatsapp=20, ") == {"sms": 0.5, "whatsapp": 20.0}


@pytest.mark.parametrize("spec", ["", "   ", ","])
def test_an_empty_spec_means_no_limits(spec):
    assert parse_rates(spec) == {}


@pytest.mark.parametrize("spec, reason", [
    ("sms:10", "expected channel=messages_per_second"),
    ("sms", "expected channel=messages_per_second"),
    ("=10", "expected channel=messages_per_second"),
    ("sms=fast", "'fast' is not a number"),
    ("sms=", "'' is not a number"),
    ("sms=-1", "0 \\(unlimited\\) or more"),
    ("sms=inf", "finite"),
    ("sms=nan", "finite"),
    ("sms=10,SMS=20", "given twice"),
])
def test_a_spec_that_makes_no_sense_is_refused_with_the_reason(spec, reason):
    with pytest.raises(ValueError, match=reason):
        parse_rates(spec)
