"""The dispatcher's memory: a customer's earlier tickets, the skill's recent handling
times, reopened and accepted tickets, and what it forgets."""
from datetime import datetime, timedelta, timezone

from services.router import routing
from services.router.roster import Agent
from tests.dispatcher import Dispatcher

ANA = Agent("ana", "Ana", frozenset({"billing", "general"}), "L1", frozenset({"es"}), 1)
BEN = Agent("ben", "Ben", frozenset({"billing"}), "L1", frozenset({"es"}), 1)
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def triaged(n: int, received: datetime, priority: str = "P4", customer: str = "cus-1", **signals) -> dict:
    return {"ticket_id": f"T-AAAAAAA{n}", "skill": "billing", "priority": priority, "tier": "L1", "language": "es",
            "channel": "sms", "received_at": stamp(received), "customer_id": customer,
            "signals": {"sentiment_words": [], "impatience_words": [], "specialist_words": [], "customer_hint": "unknown",
                        "repeat_count": 0, **signals}}


def test_a_customer_writing_again_within_the_window_is_a_repeat_and_a_threat_to_leave_is_p2():
    dispatcher = Dispatcher((ANA, BEN))
    first = dispatcher.run("dispatch.ticket_triaged", triaged(1, NOON - timedelta(days=2)), NOON)
    assert first.classified["signals"]["repeat_count"] == 0 and first.classified["priority"] == "P4"
    again = dispatcher.run("dispatch.ticket_triaged", triaged(2, NOON, leaving_words=["darme de baja"]), NOON)
    assert again.classified["signals"]["repeat_count"] == 1
    assert again.classified["priority"] == "P2"  # the rubric: a repeated contact with a threat to leave
    assert again.classified["signals"]["customer_hint"] == "sceptical"
    other = dispatcher.run("dispatch.ticket_triaged", triaged(3, NOON, customer="cus-2", leaving_words=["darme de baja"]), NOON)
    assert other.classified["signals"]["repeat_count"] == 0 and other.classified["priority"] == "P4"


def test_earlier_tickets_outside_the_window_do_not_count_and_are_forgotten_at_a_tick():
    dispatcher = Dispatcher((ANA,), routing.Policy(repeat_window=timedelta(days=7)))
    dispatcher.run("dispatch.ticket_triaged", triaged(1, NOON - timedelta(days=8)), NOON)
    later = dispatcher.run("dispatch.ticket_triaged", triaged(2, NOON), NOON)
    assert later.classified["signals"]["repeat_count"] == 0
    dispatcher.run("dispatch.tick", {"at": stamp(NOON + timedelta(days=8))})
    assert dispatcher.tables["customers"] == {}


def test_a_resolved_ticket_is_forgotten_once_it_can_no_longer_be_reopened():
    dispatcher = Dispatcher((ANA,), routing.Policy(keep_resolved=timedelta(days=14)))
    dispatcher.run("dispatch.ticket_triaged", triaged(1, NOON), NOON)
    dispatcher.run("dispatch.ticket_closed", {"ticket_id": "T-AAAAAAA1", "status": "resolved"}, NOON + timedelta(hours=1))
    dispatcher.run("dispatch.tick", {"at": stamp(NOON + timedelta(days=10))})
    assert "T-AAAAAAA1" in dispatcher.tickets
    dispatcher.run("dispatch.tick", {"at": stamp(NOON + timedelta(days=15))})
    assert "T-AAAAAAA1" not in dispatcher.tickets


def test_the_wait_a_queued_customer_is_told_comes_from_the_skills_recent_handling_times():
    dispatcher = Dispatcher((ANA,))
    dispatcher.run("dispatch.ticket_triaged", triaged(1, NOON, customer="a"), NOON)
    dispatcher.run("dispatch.ticket_answered", {"ticket_id": "T-AAAAAAA1", "answered_at": stamp(NOON + timedelta(minutes=4))})
    dispatcher.run("dispatch.ticket_closed", {"ticket_id": "T-AAAAAAA1", "status": "resolved"}, NOON + timedelta(minutes=40))
    assert dispatcher.tables["handling"]["billing"] == {"response_minutes": [4.0], "handling_minutes": [40.0]}
    dispatcher.run("dispatch.ticket_triaged", triaged(2, NOON, customer="b"), NOON + timedelta(minutes=41))  # takes ana's place
    queued = dispatcher.run("dispatch.ticket_triaged", triaged(3, NOON, customer="c"), NOON + timedelta(minutes=42))
    assert queued.classified["queue_position"] == 1
    assert queued.classified["estimated_wait_minutes"] == 40 + 4  # one turn of 40 minutes on her one place, then her answer


def test_a_reopened_ticket_goes_back_to_its_agent_with_fresh_targets_or_waits_for_one():
    dispatcher = Dispatcher((ANA, BEN))
    dispatcher.run("dispatch.ticket_triaged", triaged(1, NOON), NOON)
    assert dispatcher.tickets["T-AAAAAAA1"]["agent_id"] == "ana"
    dispatcher.run("dispatch.ticket_answered", {"ticket_id": "T-AAAAAAA1", "answered_at": stamp(NOON)})
    dispatcher.run("dispatch.ticket_closed", {"ticket_id": "T-AAAAAAA1", "status": "resolved"}, NOON)
    back = dispatcher.run("dispatch.ticket_reopened", {"ticket_id": "T-AAAAAAA1", "reopened_at": stamp(NOON + timedelta(hours=2))})
    assert [(a.event_id, a.data["agent_id"]) for a in back.assignments] == [("T-AAAAAAA1.assigned.2", "ana")]
    record = dispatcher.tickets["T-AAAAAAA1"]
    assert record["reopens"] == 1 and not record["answered"] and record["reopened_at"] == stamp(NOON + timedelta(hours=2))
    assert dispatcher.run("dispatch.ticket_reopened", {"ticket_id": "T-AAAAAAA1", "reopened_at": stamp(NOON)}) == routing.Dispatched()

    dispatcher.run("dispatch.ticket_closed", {"ticket_id": "T-AAAAAAA1", "status": "resolved"}, NOON)
    dispatcher.run("dispatch.ticket_triaged", triaged(2, NOON, customer="x"), NOON)  # ana's one place
    dispatcher.run("dispatch.ticket_triaged", triaged(3, NOON, customer="y"), NOON)  # ben's
    waits = dispatcher.run("dispatch.ticket_reopened", {"ticket_id": "T-AAAAAAA1", "reopened_at": stamp(NOON)})
    assert waits.assignments == [] and dispatcher.tickets["T-AAAAAAA1"]["status"] == "queued"


def test_an_agent_online_with_the_skill_may_take_a_waiting_ticket_past_the_routers_capacity():
    roster = (ANA, Agent("carl", "Carl", frozenset({"network"}), "L1", frozenset({"es"}), 2))
    dispatcher = Dispatcher(roster)
    dispatcher.run("dispatch.ticket_triaged", triaged(1, NOON, customer="a"), NOON)  # ana's one place
    dispatcher.run("dispatch.ticket_triaged", triaged(2, NOON, customer="b"), NOON)
    assert dispatcher.tickets["T-AAAAAAA2"]["status"] == "queued"
    assert dispatcher.run("dispatch.accept_requested", {"ticket_id": "T-AAAAAAA2", "agent_id": "carl"}) == routing.Dispatched()
    dispatcher.run("dispatch.agent_changed", {"agent_id": "ana", "presence": "away"})
    assert dispatcher.run("dispatch.accept_requested", {"ticket_id": "T-AAAAAAA2", "agent_id": "ana"}) == routing.Dispatched()
    dispatcher.run("dispatch.agent_changed", {"agent_id": "ana", "presence": "online"})
    taken = dispatcher.run("dispatch.accept_requested", {"ticket_id": "T-AAAAAAA2", "agent_id": "ana"}, NOON)
    assert [(a.event_id, a.data["agent_id"]) for a in taken.assignments] == [("T-AAAAAAA2.assigned.1", "ana")]
    assert dispatcher.run("dispatch.accept_requested", {"ticket_id": "T-AAAAAAA2", "agent_id": "ana"}) == routing.Dispatched()
    dispatcher.run("dispatch.ticket_closed", {"ticket_id": "T-AAAAAAA1", "status": "resolved"}, NOON)
    third = dispatcher.run("dispatch.ticket_triaged", triaged(3, NOON, customer="c"), NOON)
    assert third.assignments == []  # she holds T2, her one place: the router gives her nothing more


def test_a_ticket_reassigned_to_a_named_agent_goes_to_them_and_its_place_goes_to_the_queue():
    roster = (ANA, BEN, Agent("carl", "Carl", frozenset({"network"}), "L1", frozenset({"es"}), 2))
    dispatcher = Dispatcher(roster)
    dispatcher.run("dispatch.ticket_triaged", triaged(1, NOON, customer="a"), NOON)  # ana
    dispatcher.run("dispatch.ticket_triaged", triaged(2, NOON, customer="b"), NOON)  # ben
    dispatcher.run("dispatch.ticket_triaged", triaged(3, NOON, customer="c"), NOON)  # waits
    holder = dispatcher.tickets["T-AAAAAAA1"]["agent_id"]
    other = "ben" if holder == "ana" else "ana"
    move = {"ticket_id": "T-AAAAAAA1", "agent_id": "carl", "requested_by": "sam", "reason": "needs network"}
    assert dispatcher.run("dispatch.reassign_requested", move, NOON) == routing.Dispatched()  # carl lacks the skill
    move = {**move, "agent_id": other}
    moved = dispatcher.run("dispatch.reassign_requested", move, NOON)
    first, refilled = moved.assignments
    assert (first.event_id, first.data["agent_id"], first.data["assigned_by"], first.data["reason"]) == (
        "T-AAAAAAA1.assigned.2", other, "sam", "needs network")  # past the other's capacity: a person chose
    assert (refilled.data["ticket_id"], refilled.data["agent_id"]) == ("T-AAAAAAA3", holder)
    assert "assigned_by" not in refilled.data
    assert dispatcher.run("dispatch.reassign_requested", move, NOON) == routing.Dispatched()  # already theirs
