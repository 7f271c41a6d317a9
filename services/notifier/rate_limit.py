"""Messages per second per channel, so a broadcast does not trip the provider.

An outage notice to 10,000 customers would otherwise reach Twilio in one burst and
come back as 429s and carrier filtering. A token bucket lets a short burst through
and then spaces the rest at the configured rate. Each caller takes its token at once
(the bucket may go into debt) and is told how long to wait, so the callers queue in
the order they asked and leave evenly spaced, instead of all waking together and
racing for the next token. The bucket's arithmetic is deskstream.limits.Bucket, the
same that refuses intake's floods: here its `reserve` (wait the debt out), there `take`.
"""
from __future__ import annotations

import asyncio
import math
import time
from typing import Callable, Mapping

from deskstream.limits import Bucket

Clock = Callable[[], float]


def _unlimited(rate: float) -> bool:
    return rate <= 0 or math.isinf(rate)


class TokenBucket:
    """One channel's budget: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float | None = None, clock: Clock = time.monotonic) -> None:
        if math.isnan(rate):
            raise ValueError("rate must be a number of messages per second, not NaN")
        self.rate = float(rate)
        self.burst = float(max(1.0, self.rate) if burst is None else burst)
        if not self.burst > 0:  # also refuses NaN
            raise ValueError(f"burst must be positive, got {burst!r}")
        self._clock = clock
        self._bucket = Bucket.full(self.burst, clock())  # start full: the first burst need not wait
        self._turn = asyncio.Lock()

    @property
    def unlimited(self) -> bool:
        return _unlimited(self.rate)

    def reserve(self) -> float:
        """Take one token now and return the seconds to wait before acting (0.0 when
        one was there). The token is taken even when the wait is long, so the next
        caller waits one interval more: that is what keeps callers in order."""
        if self.unlimited:
            return 0.0
        return self._bucket.reserve(self._clock(), self.rate, self.burst)

    async def acquire(self) -> None:
        """Wait for this caller's turn. Callers take their tokens one at a time, in the
        order they asked (asyncio's lock is first come, first served): two sleeps started
        side by side could end in either order when the machine is busy. A caller
        cancelled while it sleeps keeps its token spent: giving it back would let a later
        caller jump the queue."""
        async with self._turn:
            wait = self.reserve()
            if wait > 0:
                await asyncio.sleep(wait)


class RateLimits:
    """Per-channel buckets from a mapping channel -> messages per second (missing or
    <= 0: unlimited)."""

    def __init__(self, rates: Mapping[str, float], clock: Clock = time.monotonic) -> None:
        self._rates = {channel: float(rate) for channel, rate in rates.items() if not _unlimited(float(rate))}
        self._buckets = {channel: TokenBucket(rate, clock=clock) for channel, rate in self._rates.items()}

    def rate(self, channel: str) -> float:
        """Messages per second on `channel`; 0.0 for unlimited."""
        return self._rates.get(channel, 0.0)

    def reserve(self, channel: str) -> float:
        """Seconds the caller must wait before sending on `channel` (see TokenBucket.reserve)."""
        bucket = self._buckets.get(channel)
        return 0.0 if bucket is None else bucket.reserve()

    async def acquire(self, channel: str) -> None:
        bucket = self._buckets.get(channel)
        if bucket is not None:
            await bucket.acquire()


def parse_rates(spec: str) -> dict[str, float]:
    """"sms=10,whatsapp=20,email=50,chat=0" as a dict; "" as {} (no limits).
    Refuses what it cannot read, so a typo fails at start-up rather than becoming
    "unlimited" in the middle of an outage."""
    rates: dict[str, float] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        channel, equals, value = item.partition("=")
        channel = channel.strip().lower()
        if not equals or not channel:
            raise ValueError(f"rate limit {item!r}: expected channel=messages_per_second, as in sms=10,whatsapp=20")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"rate limit {item!r}: {value.strip()!r} is not a number of messages per second") from None
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"rate limit {item!r}: messages per second must be 0 (unlimited) or more, finite")
        if channel in rates:
            raise ValueError(f"rate limit for {channel!r} given twice")
        rates[channel] = rate
    return rates
