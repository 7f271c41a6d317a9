"""Support figures from ticket facts."""
from services.feedback import figures


def test_facts_accumulate_once_per_ticket():
    facts = figures.record(None, "ticket.created", {"ticket_id": "T1", "channel": "chat"}, "2026-11-22T10:00:00Z")
    facts = figures.record(facts, "ticket.classified", {"priority": "P2", "skill": "billing"}, "2026-11-22T10:00:01Z")
    facts = figures.record(facts, "ticket.assigned", {"agent_id": "ana"}, "2026-11-22T10:00:03Z")
    assert figures.record(facts, "ticket.assigned", {"agent_id": "ben"}, "2026-11-22T10:09:00Z") is None
    assert figures.record(facts, "ticket.created", {"ticket_id": "T1", "channel": "chat"}, "2026-11-22T11:00:00Z") is None
    [(day, summary)] = figures.daily([facts]).items()
    assert day == "2026-11-22"
    assert summary == {
        "tickets": 1, "by_channel": {"chat": 1}, "by_priority": {"P2": 1}, "assigned": 1,
        "seconds_to_assign_median": 3.0, "seconds_to_assign_p90": 3.0,
    }


def test_events_of_unknown_tickets_change_nothing():
    assert figures.record(None, "ticket.assigned", {"agent_id": "ana"}, "2026-11-22T10:00:00Z") is None


def test_percentiles():
    assert figures.percentile([], 0.9) is None
    assert figures.percentile([float(n) for n in range(1, 11)], 0.9) == 10.0
