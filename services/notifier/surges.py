"""Surges: many new tickets of one skill or one region in a short time.

Twenty "network" tickets in ten minutes, or a sudden pile from one region, usually
means an outage, and the desk wants to hear it from this fold before the phones
ring. The fold keeps, per key, the recent tickets inside one window and whether a
surge of that key has been raised. The state lives in a Kafka-backed table as JSON,
so it holds only plain values and ISO-8601 times.

A surge is reported once. The key then stays raised until the window empties below
`threshold * rearm_fraction`: a count hovering around the threshold would otherwise
report the same outage over and over.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from deskstream.events import parse_timestamp, timestamp

UNWATCHED_SKILLS = frozenset({"general"})  # the catch-all: a pile of it says nothing about a cause


@dataclass(frozen=True, slots=True)
class SurgeRule:
    window_seconds: float  # e.g. 600
    threshold: int  # tickets within the window that make a surge, e.g. 20
    rearm_fraction: float = 0.5  # raise again only after the window fell below threshold * rearm_fraction
    max_kept: int = 500  # bound the state

    def __post_init__(self) -> None:
        if not self.window_seconds > 0:
            raise ValueError(f"surge window must be positive, got {self.window_seconds!r}")
        if self.threshold < 1:
            raise ValueError(f"surge threshold must be at least 1, got {self.threshold!r}")
        if not 0 < self.rearm_fraction <= 1:
            raise ValueError(f"surge rearm fraction must be in (0, 1], got {self.rearm_fraction!r}")
        if self.max_kept < self.threshold:
            raise ValueError(f"surge max_kept ({self.max_kept}) below the threshold ({self.threshold}) would never fire")


def surge_keys(skill: str | None, region: str | None) -> list[str]:
    """The keys one ticket counts towards, e.g. ["skill:network", "region:ES"]."""
    keys = []
    if skill and skill not in UNWATCHED_SKILLS:
        keys.append(f"skill:{skill}")
    if region:
        keys.append(f"region:{region}")
    return keys


def empty() -> dict[str, Any]:
    return {"entries": [], "raised": False}


def _parse(iso: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(iso)


def observe(state: dict[str, Any] | None, ticket_id: str, at: datetime.datetime, rule: SurgeRule) -> tuple[dict[str, Any], list[str] | None]:
    """Add one ticket (created `at`, aware) to the state of one key.

    Returns the new state (the given one is not changed) and, when this ticket makes
    the window reach the threshold while the key is not raised, the ids in the window
    oldest first: the surge to report. The window is the one ending at the newest
    ticket seen, so a ticket that arrives late still counts if it is inside it, and
    one older than that is dropped. A ticket already in the window (a replay) changes
    nothing and never fires.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("observe needs an aware creation time; a naive one cannot be compared across services")
    current = empty() if state is None else state
    entries = [dict(entry) for entry in current.get("entries", [])]
    if any(entry["id"] == ticket_id for entry in entries):
        return {"entries": entries, "raised": bool(current.get("raised", False))}, None
    entries.append({"id": ticket_id, "at": at.astimezone(datetime.timezone.utc).isoformat()})
    times = [_parse(entry["at"]) for entry in entries]
    oldest_kept = max(times) - datetime.timedelta(seconds=rule.window_seconds)
    kept = sorted(
        ((moment, entry) for moment, entry in zip(times, entries) if moment >= oldest_kept),
        key=lambda pair: pair[0],  # stable: equal times stay in arrival order
    )[-rule.max_kept:]
    entries = [entry for _, entry in kept]
    raised = bool(current.get("raised", False)) and len(entries) >= rule.threshold * rule.rearm_fraction
    if not raised and len(entries) >= rule.threshold and any(entry["id"] == ticket_id for entry in entries):
        return {"entries": entries, "raised": True}, [entry["id"] for entry in entries]
    return {"entries": entries, "raised": raised}, None


def window_start(state: dict[str, Any]) -> str | None:
    """The ISO time of the oldest ticket kept, the `first_at` of a surge report."""
    entries = state.get("entries") or []
    return entries[0]["at"] if entries else None


def suspicion(key: str, ticket_ids: list[str], state: dict[str, Any], rule: SurgeRule, detected_at: str) -> dict[str, Any]:
    """The `incident.suspected` data of a surge `observe` reported for `key`."""
    dimension, value = key.split(":", 1)
    first = window_start(state) or detected_at
    return {
        "suspicion_id": f"surge.{key}.{ticket_ids[0]}",
        "dimension": dimension,
        "value": value,
        "ticket_ids": ticket_ids,
        "count": len(ticket_ids),
        "window_minutes": rule.window_seconds / 60,
        "first_at": timestamp(parse_timestamp(first)),
        "detected_at": detected_at,
    }
