"""The ops dashboard's data: live queues, breaches, incidents and the days' figures."""
from __future__ import annotations

from datetime import datetime, timezone

from services.feedback import dashboard

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


def ticket(ticket_id: str, **facts) -> dict:
    return {"ticket_id": ticket_id, "channel": "chat", "created_at": "2026-12-02T09:00:00.000Z", **facts}


def test_open_tickets_are_counted_by_skill_and_priority_with_those_still_waiting():
    facts = [
        ticket("T-AAAAAAAA", skill="network", priority="P1"),
        ticket("T-BBBBBBBB", skill="network", priority="P1", agent_id="ana", assigned_at="2026-12-02T09:01:00.000Z"),
        ticket("T-CCCCCCCC", skill="billing", priority="P3", agent_id="ben", assigned_at="2026-12-02T09:01:00.000Z",
               resolved_at="2026-12-02T10:00:00.000Z"),
        ticket("T-DDDDDDDD", skill="billing", priority="P3", agent_id="ben", assigned_at="2026-12-02T09:01:00.000Z",
               resolved_at="2026-12-02T10:00:00.000Z", reopened=1, reopened_at="2026-12-02T11:00:00.000Z"),
        ticket("T-EEEEEEEE"),  # not triaged yet
    ]
    assert dashboard.queues(facts) == [
        {"skill": "network", "priority": "P1", "open": 2, "waiting": 1},
        {"skill": "billing", "priority": "P3", "open": 1, "waiting": 1},
    ]


def test_breaches_count_open_tickets_that_breached_and_the_breaches_of_today():
    facts = [ticket("T-AAAAAAAA", breaches=["first_response@0"], breached_at="2026-12-02T09:15:00.000Z"),
             ticket("T-BBBBBBBB", breaches=["first_response@0"], breached_at="2026-12-01T09:15:00.000Z",
                    resolved_at="2026-12-01T10:00:00.000Z")]
    assert dashboard.breaches(facts, "2026-12-02") == {"open_breached": 1, "today": 1}


def test_incidents_show_while_active_and_suspicions_stay_listed():
    declared = {"incident_id": "INC-ABCDEFGH", "service": "fibra", "region": "ES", "skill": None, "message": {"es": "Corte."},
                "expected_fix_at": None, "at": "2026-12-02T10:00:00.000Z"}
    incident = dashboard.incident_fold(None, "incident.declared", declared)
    updated = dashboard.incident_fold(incident, "incident.updated", {"message": {"es": "Técnicos en camino."}})
    assert updated["message"] == {"es": "Técnicos en camino."} and updated["expected_fix_at"] is None
    suspicion = dashboard.incident_fold(None, "incident.suspected", {
        "suspicion_id": "surge.skill:network.T-AAAAAAAA", "dimension": "skill", "value": "network", "count": 20,
        "detected_at": "2026-12-02T11:00:00.000Z"})
    shown = dashboard.snapshot([], [updated, suspicion], NOW)["incidents"]
    assert [i["incident_id"] for i in shown["active"]] == ["INC-ABCDEFGH"] and len(shown["suspected"]) == 1
    resolved = dashboard.incident_fold(updated, "incident.resolved", {"at": "2026-12-02T11:30:00.000Z"})
    assert dashboard.snapshot([], [resolved], NOW)["incidents"]["active"] == []


def test_the_days_are_the_last_fourteen_oldest_first_with_gaps_as_none():
    facts = [ticket("T-AAAAAAAA", first_reply_at="2026-12-02T09:05:00.000Z",
                    survey={"survey_id": "S-aaaaaaaaaaaa", "sent_at": "2026-12-02T10:00:00.000Z", "score": 5})]
    days = dashboard.snapshot(facts, [], NOW)["days"]
    assert len(days) == 14 and days[0]["day"] == "2026-11-19" and days[-1]["day"] == "2026-12-02"
    assert days[-1]["tickets"] == 1 and days[-1]["csat"] == 1.0 and days[-1]["first_response_seconds_median"] == 300
    assert days[-2]["tickets"] is None and days[-2]["csat"] is None


def test_what_every_request_reads_is_made_again_at_most_once_per_period():
    made, now = [], [0.0]
    fresh = dashboard.Fresh(lambda: made.append(1) or len(made), 1.0, clock=lambda: now[0])
    assert (fresh(), fresh()) == (1, 1)
    now[0] = 1.0
    assert fresh() == 2
