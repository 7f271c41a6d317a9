"""Abuse limits: how much one client address, chat session or sender may send, and how
long one that is over must wait.

One token bucket (`Bucket`) serves every limit deskstream keeps:

- intake's public entry points refuse what is over a limit (429 with `Retry-After`):
  `KeyedLimiter`, one bucket per client address or chat session, held in memory;
- intake's tickets hop holds back what one SMS/WhatsApp sender writes past the limit:
  the bucket lives in the thread's row of the `threads` table and its clock is the
  contacts' `received_at`, so a replay decides the same (services/intake/senders.py);
- the notifier paces its sends instead of refusing them: it takes its token even when
  there is none and waits the debt out (services/notifier/rate_limit.py).

A limit reads "N/S": at most N at once, and N more every S seconds (one every S/N
seconds once the N are spent). A token bucket rather than a fixed window, so that a
client cannot send 2N across a window's edge, and a burst the size of N is never
refused.

Memory is bounded however many keys a flood brings: a `KeyedLimiter` keeps at most
`max_keys` buckets (`LruTable`), forgets first the ones that have filled up again (they
are what a new bucket would be) and, when a flood of fresh keys leaves none such, the
least recently seen. A client whose bucket was pushed out starts again with a full
one: the price of the bound, only paid while more than `max_keys` keys are active.
IPv6 clients are limited by their /64 (`client_key`), since one customer line usually
holds a whole /64 and could otherwise flood from 2^64 addresses.

No network imports here: the aiohttp side (the 429 answer, the request's address) is
in deskstream/http.py.
"""
from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, Sequence, TypeVar

Clock = Callable[[], float]
V = TypeVar("V")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_KEYS = 100_000
_PRUNE_PER_CALL = 4  # idle entries dropped per new key, so the table shrinks back to the active ones
_EPSILON = 1e-9  # a token refilled to 0.9999999999 by float arithmetic is a token


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` at once and `count` more every `seconds`; a count of 0 is no limit."""

    count: int
    seconds: float

    @property
    def unlimited(self) -> bool:
        return self.count <= 0

    @property
    def rate(self) -> float:
        """Tokens back per second."""
        return self.count / self.seconds

    @property
    def burst(self) -> float:
        return float(self.count)

    def __str__(self) -> str:
        return "no limit" if self.unlimited else f"{self.count} per {self.seconds:g} s"


UNLIMITED = Limit(0, 1.0)


def parse_limit(spec: str) -> Limit:
    """"30/60" (30 at once, 30 more every 60 s) as a Limit; "0" or "off" as no limit.
    Refuses what it cannot read, so a typo fails at start-up instead of lifting a limit."""
    text = spec.strip().lower()
    if text in ("0", "off", "none"):
        return UNLIMITED
    count, slash, seconds = text.partition("/")
    try:
        limit = Limit(int(count), float(seconds)) if slash else None
    except ValueError:
        limit = None
    if limit is None or limit.count < 0 or not math.isfinite(limit.seconds) or limit.seconds <= 0:
        raise ValueError(f"{spec!r} is not a limit: write COUNT/SECONDS, as in 30/60, or off")
    return UNLIMITED if limit.count == 0 else limit


@dataclass(slots=True)
class Bucket:
    """One key's tokens and when they were last counted. The rate and the burst are
    passed in, not kept, so that thousands of buckets of one limit cost two floats each
    and a bucket kept in a table row stays two numbers."""

    tokens: float
    updated: float

    @classmethod
    def full(cls, burst: float, now: float) -> "Bucket":
        return cls(burst, now)

    def refill(self, now: float, rate: float, burst: float) -> None:
        elapsed = max(0.0, now - self.updated)  # a clock that steps back refills nothing
        self.tokens = min(burst, self.tokens + elapsed * rate)
        self.updated = max(now, self.updated)

    def take(self, now: float, rate: float, burst: float) -> float:
        """Take a token if there is one (0.0); otherwise take nothing and return the
        seconds until there is one (what a refusal's Retry-After says)."""
        self.refill(now, rate, burst)
        if self.tokens >= 1.0 - _EPSILON:
            self.tokens = max(0.0, self.tokens - 1.0)
            return 0.0
        return (1.0 - self.tokens) / rate

    def reserve(self, now: float, rate: float, burst: float) -> float:
        """Take a token even if there is none (the bucket goes into debt) and return the
        seconds to wait before acting: pacing, where `take` refuses."""
        self.refill(now, rate, burst)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / rate

    def full_by(self, now: float, rate: float, burst: float) -> bool:
        """Whether it has filled up again by `now`: then it is what a new bucket would be."""
        return self.tokens + max(0.0, now - self.updated) * rate >= burst


class LruTable(Generic[V]):
    """A dict of at most `max_keys` entries, least recently touched first out, entries
    that `idle(value, now)` says are worth nothing dropped first. The bound is what keeps
    a flood of distinct keys (addresses, agent ids) from growing memory without end."""

    def __init__(self, max_keys: int, idle: Callable[[V, float], bool]) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.max_keys = max_keys
        self._idle = idle
        self._entries: OrderedDict[str, V] = OrderedDict()
        self.pushed_out = 0  # entries dropped while still in use, because the table was full

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        return self._entries.get(key)

    def touch(self, key: str, now: float, new: Callable[[], V]) -> V:
        """The entry for `key` (made with `new()` if there is none), now the most recent."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
            return value
        self._make_room(now)
        value = self._entries[key] = new()
        return value

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)

    def _make_room(self, now: float) -> None:
        for _ in range(_PRUNE_PER_CALL):
            if not self._entries:
                return
            oldest = next(iter(self._entries.values()))
            if not self._idle(oldest, now):
                break
            self._entries.popitem(last=False)
        while len(self._entries) >= self.max_keys:
            self._entries.popitem(last=False)
            self.pushed_out += 1


class KeyedLimiter:
    """One `Limit` kept per key (a client address, a chat session), in memory, for at
    most `max_keys` keys at a time. Per process: with several workers behind a load
    balancer a client gets up to their number times the limit, which is what a
    per-worker limit can promise without a shared store."""

    def __init__(self, limit: Limit, max_keys: int = DEFAULT_MAX_KEYS, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        rate, burst = (limit.rate, limit.burst) if not limit.unlimited else (1.0, 1.0)
        self._buckets: LruTable[Bucket] = LruTable(max_keys, lambda bucket, now: bucket.full_by(now, rate, burst))

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """0.0 if `key` may go now (its token is taken), else the seconds until it may."""
        if self.limit.unlimited:
            return 0.0
        now = self._clock()
        bucket = self._buckets.touch(key, now, lambda: Bucket.full(self.limit.burst, now))
        return bucket.take(now, self.limit.rate, self.limit.burst)


class Concurrency:
    """At most `most` things open at once per key (a chat session's sockets). Keys exist
    only while something is open, so the table is as big as what is open."""

    def __init__(self, most: int) -> None:
        self.most = most
        self._open: dict[str, int] = {}

    def enter(self, key: str) -> bool:
        """Count one more open for `key`, if that stays within `most` (0: no limit)."""
        count = self._open.get(key, 0)
        if self.most > 0 and count >= self.most:
            return False
        self._open[key] = count + 1
        return True

    def leave(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def open(self, key: str) -> int:
        return self._open.get(key, 0)


def retry_after(seconds: float) -> str:
    """A `Retry-After` value: whole seconds, rounded up, at least 1 (0 would invite an
    immediate retry that is refused again)."""
    return str(max(1, math.ceil(seconds)))


def parse_networks(items: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses or networks ("10.0.0.0/8", "::1") as networks; refuses what is neither."""
    networks: list[IPNetwork] = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """Who the client is: the peer, unless the peer is a trusted proxy; then the
    right-most address in X-Forwarded-For that is not itself a trusted proxy.

    Each proxy appends the address it was called from, so the entries right of the
    first untrusted one were written by our proxies and the ones left of it by whoever
    called: a client can put anything there, and nothing there is believed. Without
    trusted proxies (the default) the header is ignored altogether.
    """
    if peer is None:
        return "unknown"
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    current = peer
    while hops and _trusted(current, trusted):
        current = hops.pop()
    return current[:100]


def _trusted(text: str, trusted: Sequence[IPNetwork]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in trusted)


def client_key(address: str) -> str:
    """The key a client address is limited under: an IPv4 address as it is, an IPv6
    address by its /64 (one customer line), anything else as given."""
    parsed = _address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed) if parsed is not None else address
