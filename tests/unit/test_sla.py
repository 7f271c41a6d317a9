"""Service targets: when they fall due, which open tickets missed one, and what the
dispatcher does about it (announce once; send first line to second line)."""
from datetime import datetime

import pytest

from services.router import routing, sla
from services.router.roster import Agent
from tests.dispatcher import Dispatcher

TARGETS = sla.Targets.parse("P1=15,P2=60,P3=240,P4=480", "P1=240,P2=480,P3=1440,P4=4320")
ROSTER = (Agent("ana", "Ana", frozenset({"network"}), "L1", frozenset({"es"}), 5),
          Agent("omar", "Omar", frozenset({"network"}), "L2", frozenset({"es"}), 1))


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"2026-12-02T{clock}+00:00")


def ticket(n: int, priority: str = "P1", agent_id: str | None = "ana", **extra) -> dict:
    return {"ticket_id": f"T-AAAAAAA{n}", "status": "assigned" if agent_id else "queued", "skill": "network",
            "priority": priority, "tier": "L1", "language": "es", "channel": "chat", "agent_id": agent_id,
            "received_at": "2026-12-02T10:00:00.000Z", "assignments": 1 if agent_id else 0, **extra}


def test_targets_are_read_from_the_setting_or_default():
    assert TARGETS.minutes(sla.FIRST_RESPONSE, "P1") == 15
    assert sla.Targets.parse("", "").minutes(sla.RESOLUTION, "P4") == 4320
    for wrong in ("P1=15", "P1=fast,P2=1,P3=1,P4=1", "P1=1,P2=1,P3=1,P4=1,P5=1"):
        with pytest.raises(sla.TargetsError):
            sla.Targets.parse(wrong, "")


def test_a_ticket_misses_its_first_response_at_the_deadline_and_not_before():
    assert sla.missed([ticket(1)], at("10:14:59"), TARGETS) == []
    [breach] = sla.missed([ticket(1)], at("10:15:00"), TARGETS)
    assert (breach.target, breach.due_at, breach.agent_id) == ("first_response", "2026-12-02T10:15:00.000Z", "ana")


def test_an_answered_ticket_can_only_miss_its_resolution_and_a_recorded_breach_is_not_repeated():
    answered = ticket(1, answered=True)
    assert sla.missed([answered], at("13:59:00"), TARGETS) == []
    assert [b.target for b in sla.missed([answered], at("14:00:00"), TARGETS)] == ["resolution"]
    assert sla.missed([ticket(1, breaches=["first_response"])], at("10:20:00"), TARGETS) == []


def test_a_missed_target_is_announced_once_and_sends_first_line_to_second_line():
    dispatcher = Dispatcher(ROSTER, routing.Policy(TARGETS), {"T-AAAAAAA1": ticket(1)})
    tick = dispatcher.run("dispatch.tick", {"at": "2026-12-02T10:16:00.000Z"})
    assert [(b.ticket_id, b.target) for b in tick.breaches] == [("T-AAAAAAA1", "first_response")]
    assert [(e["ticket_id"], e["reason"]) for e in tick.escalations] == [("T-AAAAAAA1", "sla_breached:first_response")]
    assert [r["reason"] for r in tick.requeued] == ["escalated"]  # ana is first line: she hands it back
    assert [(a.data["ticket_id"], a.data["agent_id"], a.data["tier"]) for a in tick.assignments] == [("T-AAAAAAA1", "omar", "L2")]
    again = dispatcher.run("dispatch.tick", {"at": "2026-12-02T10:17:00.000Z"})
    assert again == routing.Dispatched()


def test_an_agent_can_escalate_and_a_second_line_ticket_stays_where_it_is():
    dispatcher = Dispatcher(ROSTER, routing.Policy(TARGETS), {"T-AAAAAAA1": ticket(1, "P3")})
    asked = {"ticket_id": "T-AAAAAAA1", "agent_id": "ana", "reason": "needs a field engineer"}
    escalated = dispatcher.run("dispatch.escalation_requested", asked)
    assert escalated.escalations[0]["escalated_by"] == "ana" and escalated.updates["T-AAAAAAA1"]["tier"] == "L2"
    assert dispatcher.run("dispatch.escalation_requested", asked) == routing.Dispatched()


MADRID_DESK = sla.Targets.parse("P1=15,P2=60,P3=240,P4=480", "", "Mon-Fri 09:00-18:00 Europe/Madrid", "P1")


def test_with_business_hours_the_clock_stops_when_the_desk_closes():
    friday_late = {**ticket(1, "P2"), "received_at": "2026-12-04T16:30:00.000Z"}  # 17:30 in Madrid: 30 minutes left that day
    assert sla.format_time(sla.due(friday_late, sla.FIRST_RESPONSE, MADRID_DESK)) == "2026-12-07T08:30:00.000Z"  # Monday 09:30
    at_night = {**ticket(2, "P3"), "received_at": "2026-12-02T01:00:00.000Z"}  # counts from 09:00
    assert sla.format_time(sla.due(at_night, sla.FIRST_RESPONSE, MADRID_DESK)) == "2026-12-02T12:00:00.000Z"
    p1 = {**ticket(3, "P1"), "received_at": "2026-12-05T22:00:00.000Z"}  # a Saturday night: P1 never waits for opening time
    assert sla.format_time(sla.due(p1, sla.FIRST_RESPONSE, MADRID_DESK)) == "2026-12-05T22:15:00.000Z"


def test_business_hours_follow_daylight_saving_and_reject_what_they_cannot_read():
    summer = sla.BusinessHours.parse("Mon-Fri 09:00-18:00 Europe/Madrid")
    assert summer.add(datetime.fromisoformat("2026-07-01T06:00:00+00:00"), 60).isoformat() == "2026-07-01T08:00:00+00:00"
    assert sla.BusinessHours.parse("sat-mon 10:00-12:00 UTC").days == frozenset({5, 6, 0})
    for wrong in ("Mon-Fri 9-18 Europe/Madrid", "Mon-Fri 18:00-09:00 UTC", "Mon-Fri 09:00-18:00 Mars/Olympus", "Someday 09:00-18:00 UTC"):
        with pytest.raises(sla.TargetsError):
            sla.BusinessHours.parse(wrong)


def test_a_reopened_ticket_counts_from_its_reopening():
    reopened = ticket(1, "P1", reopened_at="2026-12-03T10:00:00.000Z")
    assert sla.format_time(sla.due(reopened, sla.FIRST_RESPONSE, TARGETS)) == "2026-12-03T10:15:00.000Z"
