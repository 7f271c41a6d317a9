"""Support metrics (response and resolution times, survey answers) from per-ticket facts.

Feedback folds `tickets.events` into one dict of facts per ticket (the table is keyed
like the topic, so each worker holds the tickets of its own partitions) and computes
the figures on request. Keeping facts rather than counters means a replayed event
cannot be counted twice, and a new figure can be computed from what is already kept.

A ticket's facts (every field but the first three may be missing):

    ticket_id, channel, created_at   from ticket.created (created_at: the event's time)
    priority, skill, classified_at   from the latest ticket.classified
    agent_id, assigned_at            from the latest ticket.assigned
    first_reply_at                   the earliest ticket.reply_sent's `sent_at`
    resolved_at                      the latest ticket.resolved's `resolved_at`
    reopened, reopened_at            how many ticket.reopened, and the latest `reopened_at`
    survey                           {survey_id, sent_at, expires_at, score, comment, answered_at, via}
                                     from feedback's own survey.sent / survey.answered

Every "latest" is decided by comparing times, not by arrival: an event that is not
newer than what the facts already hold changes nothing, which is what makes a replay
harmless (Kafka delivers a ticket's events in order, so genuine news is always newer).
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from deskstream.events import parse_timestamp

DIMENSIONS = ("agent", "skill", "channel", "priority", "day")
UNASSIGNED = "unassigned"
UNCLASSIFIED = "unclassified"
SATISFIED_SCORES = frozenset({4, 5})  # CSAT counts the answers in the top two of five

Facts = dict[str, Any]


def seconds_between(start: str, end: str) -> float:
    return (parse_timestamp(end) - parse_timestamp(start)).total_seconds()


def _newer(stamp: str, than: str | None) -> bool:
    """Compared as instants, so that `...Z` and `...+00:00` of one moment are the same."""
    return than is None or parse_timestamp(stamp) > parse_timestamp(than)


def record(facts: Facts | None, event_type: str, data: dict[str, Any], time: str) -> Facts | None:
    """The ticket's facts after one more event (None: unchanged).

    Idempotent: a replayed event changes nothing. Events of a ticket feedback never saw
    created are ignored (there is no creation time to measure from). An answer counts
    only for the survey the facts hold; the last answer wins, and whether the survey is
    still open is the caller's decision (it knows the time and the rules)."""
    if event_type == "ticket.created":
        return None if facts is not None else {"ticket_id": data["ticket_id"], "channel": data["channel"], "created_at": time}
    if facts is None:
        return None
    updated = _apply(facts, event_type, data, time)
    return None if updated is None or updated == facts else updated


def _apply(facts: Facts, event_type: str, data: dict[str, Any], time: str) -> Facts | None:
    if event_type == "ticket.classified":
        if not _newer(time, facts.get("classified_at")):
            return None
        return {**facts, "priority": data["priority"], "skill": data["skill"], "classified_at": time}
    if event_type == "ticket.assigned":
        if not _newer(time, facts.get("assigned_at")):
            return None
        return {**facts, "agent_id": data["agent_id"], "assigned_at": time}
    if event_type == "ticket.reply_sent":
        first = facts.get("first_reply_at")
        if first is not None and parse_timestamp(data["sent_at"]) >= parse_timestamp(first):
            return None
        return {**facts, "first_reply_at": data["sent_at"]}
    if event_type == "ticket.resolved":
        if not _newer(data["resolved_at"], facts.get("resolved_at")):
            return None
        return {**facts, "resolved_at": data["resolved_at"]}
    if event_type == "ticket.reopened":
        if not _newer(data["reopened_at"], facts.get("reopened_at")):
            return None
        return {**facts, "reopened": facts.get("reopened", 0) + 1, "reopened_at": data["reopened_at"]}
    if event_type == "ticket.sla_breached":  # each target breaches once per opening
        key = f"{data['target']}@{facts.get('reopened', 0)}"
        if key in facts.get("breaches", []):
            return None
        return {**facts, "breaches": [*facts.get("breaches", []), key], "breached_at": data["breached_at"]}
    if event_type == "survey.sent":
        return _survey_sent(facts, data)
    if event_type == "survey.answered":
        return _survey_answered(facts, data)
    return None


def _survey_sent(facts: Facts, data: dict[str, Any]) -> Facts | None:
    """One survey per ticket is kept: a later resolution's survey replaces an earlier one's."""
    survey = facts.get("survey")
    if survey is not None and (survey["survey_id"] == data["survey_id"] or not _newer(data["sent_at"], survey["sent_at"])):
        return None
    return {**facts, "survey": {"survey_id": data["survey_id"], "sent_at": data["sent_at"], "expires_at": data.get("expires_at"),
                                "score": None, "comment": None, "answered_at": None, "via": None}}


def _survey_answered(facts: Facts, data: dict[str, Any]) -> Facts | None:
    survey = facts.get("survey")
    if survey is None or survey["survey_id"] != data["survey_id"] or not _newer(data["answered_at"], survey["answered_at"]):
        return None
    return {**facts, "survey": {**survey, "score": data["score"], "comment": data.get("comment"),
                                "answered_at": data["answered_at"], "via": data.get("via")}}


def is_resolved(facts: Facts) -> bool:
    """Resolved now: a resolution not followed by a reopening."""
    resolved_at = facts.get("resolved_at")
    return resolved_at is not None and _newer(resolved_at, facts.get("reopened_at"))


def nearest_rank(samples: list[float], percent: int) -> float | None:
    """The nearest-rank percentile: the smallest sample with at least `percent`% of the
    samples at or below it (rank ⌈percent/100 · n⌉). Always an observed value, never an
    interpolation, so "p90 = 600 s" means some ticket really took 600 s; the median is
    computed the same way (for an even count, the lower of the two middle values)."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, -(-percent * len(ordered) // 100))  # integer ceiling: no float rounding at the edges
    return ordered[rank - 1]


def dimension_value(facts: Facts, by: str) -> str:
    """Which row of a `by` breakdown a ticket belongs to."""
    if by == "agent":
        return facts.get("agent_id") or UNASSIGNED
    if by in ("skill", "priority"):
        return facts.get(by) or UNCLASSIFIED
    if by == "channel":
        return facts["channel"]
    if by == "day":
        return parse_timestamp(facts["created_at"]).astimezone(timezone.utc).date().isoformat()
    raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}, not {by!r}")


def summary(all_facts: Iterable[Facts], *, by: str | None = None, since: str | None = None,
            until: str | None = None) -> list[dict[str, Any]]:
    """Rows of figures, one per value of `by` (or a single row for everything, even with no tickets).

    Tickets are chosen by creation time in [since, until), so a period's figures do not
    change as its tickets get resolved later, only fill in. `day` is the creation day
    (UTC, YYYY-MM-DD); `agent` the last assigned agent ('unassigned' when none); a ticket
    not yet triaged is 'unclassified' by skill and priority. Rows are sorted by the
    dimension's value, which is the row's first column, named after the dimension."""
    if by is not None and by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}, not {by!r}")
    start, end = (parse_timestamp(since) if since else None), (parse_timestamp(until) if until else None)
    chosen = [facts for facts in all_facts if _within(parse_timestamp(facts["created_at"]), start, end)]
    if by is None:
        return [figures(chosen)]
    groups: dict[str, list[Facts]] = {}
    for facts in chosen:
        groups.setdefault(dimension_value(facts, by), []).append(facts)
    return [{by: value, **figures(group)} for value, group in sorted(groups.items())]


def _within(created: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or created >= start) and (end is None or created < end)


def figures(tickets: list[Facts]) -> dict[str, Any]:
    """The figures of one group of tickets (see `summary`).

    Rates are None rather than 0 when there is nothing to divide by: "no survey sent"
    is not "nobody answered". Durations below zero (a reply stamped before the ticket by
    another service's clock) count as 0 s."""
    sent = [facts["survey"] for facts in tickets if facts.get("survey") and facts["survey"].get("sent_at")]
    scores = [survey["score"] for survey in sent if survey.get("score") is not None]
    first_responses = _durations(tickets, lambda facts: facts.get("first_reply_at"))
    resolutions = _durations(tickets, lambda facts: facts["resolved_at"] if is_resolved(facts) else None)
    return {
        "tickets": len(tickets),
        "resolved": len(resolutions),
        "surveys_sent": len(sent),
        "surveys_answered": len(scores),
        "response_rate": len(scores) / len(sent) if sent else None,
        "csat": sum(score in SATISFIED_SCORES for score in scores) / len(scores) if scores else None,
        "score_mean": sum(scores) / len(scores) if scores else None,
        "first_response_seconds_median": nearest_rank(first_responses, 50),
        "first_response_seconds_p90": nearest_rank(first_responses, 90),
        "resolution_seconds_median": nearest_rank(resolutions, 50),
        "resolution_seconds_p90": nearest_rank(resolutions, 90),
    }


def _durations(tickets: list[Facts], end: Callable[[Facts], str | None]) -> list[float]:
    found = ((facts["created_at"], end(facts)) for facts in tickets)
    return [max(0.0, seconds_between(start, stop)) for start, stop in found if stop is not None]


def as_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV (RFC 4180: a header line, then one line per row, CRLF line ends),
    for spreadsheets. Whole numbers are written without ".0" (300, not 300.0), other
    numbers at full precision, None as an empty field. No rows, no header: ""."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows([_cell(row.get(column)) for column in columns] for row in rows)
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
