"""Who gets a ticket, and the wait the customer is promised."""
from datetime import datetime, timezone

from services.router import assignment, routing
from services.router.roster import Agent, load_roster
from tests.dispatcher import Dispatcher


def agent(id, skills=("general",), tier="L1", languages=("en", "es"), cap=2):
    return Agent(id, id.title(), frozenset(skills), tier, frozenset(languages), cap)


def open_ticket(id, agent_id=None, status="assigned", priority="P3", received_at="2026-11-22T10:00:00Z"):
    return {"ticket_id": id, "agent_id": agent_id, "status": status, "priority": priority, "received_at": received_at,
            "skill": "general", "tier": "L1", "language": "en"}


def test_the_least_loaded_eligible_agent_gets_the_ticket():
    roster = (agent("a"), agent("b"))
    decision = assignment.decide(roster, [open_ticket("T1", "a")], "general", "P3", "L1", "en")
    assert decision.agent.id == "b"
    assert decision.queue_position == 0


def test_language_skill_and_tier_must_match():
    roster = (agent("en-only", languages=("en",)), agent("net", skills=("network",)), agent("spec", skills=("network",), tier="L2"))
    assert assignment.choose_agent(roster, {}, "general", "L1", "es") is None
    assert assignment.choose_agent(roster, {}, "network", "L2", "en").id == "spec"
    # L2 agents also take first-line work of their skills.
    assert assignment.choose_agent((agent("spec", skills=("network",), tier="L2"),), {}, "network", "L1", "en").id == "spec"


def test_without_an_agent_for_the_skill_general_agents_take_it():
    assert assignment.choose_agent((agent("g"),), {}, "billing", "L1", "en").id == "g"


def test_when_everyone_is_full_the_ticket_waits_in_priority_order():
    roster = (agent("a", cap=1),)
    tickets = [open_ticket("T1", "a"), open_ticket("T2", status="queued", priority="P1"), open_ticket("T3", status="queued", priority="P4")]
    decision = assignment.decide(roster, tickets, "general", "P2", "L1", "en")
    assert decision.agent is None
    assert decision.queue_position == 2  # behind the P1, ahead of the P4
    assert [t["ticket_id"] for t in assignment.next_in_queue(tickets)] == ["T2", "T3"]


def test_the_wait_is_the_turns_ahead_times_recent_handling_shared_among_the_places():
    recent = {"response_minutes": [1.0, 3.0, 5.0], "handling_minutes": [20.0, 40.0, 30.0]}
    assert assignment.estimate_wait("P3", 0, 4, recent) == 3  # given at once: the median answer time
    assert assignment.estimate_wait("P3", 8, 4, recent) == 8 * 30 // 4 + 3  # 8th in line, 4 places, 30 minutes each
    assert assignment.estimate_wait("P3", 1, 4) == 20 // 4 + 2  # nothing seen yet: the defaults
    assert assignment.estimate_wait("P3", 3, 4, recent) < assignment.estimate_wait("P3", 6, 4, recent)
    assert assignment.estimate_wait("P1", 5, 0, recent) == assignment.FIRST_RESPONSE_TARGET["P1"]  # nobody online to take it


def test_recent_times_keep_the_last_fifty():
    recent: dict = {}
    for minutes in range(60):
        recent = assignment.remember(recent, "handling_minutes", minutes)
    assert recent["handling_minutes"] == [float(m) for m in range(10, 60)]


def test_the_same_state_gives_the_same_choice():
    roster = (agent("b"), agent("a"))
    assert assignment.choose_agent(roster, {}, "general", "L1", "en").id == "a"


def test_the_seeded_roster_covers_every_skill_in_both_languages():
    roster = load_roster()
    for skill in ("network", "billing", "account", "hardware", "software", "general"):
        for language in ("es", "en"):
            assert assignment.choose_agent(roster, {}, skill, "L1", language) is not None, (skill, language)


def test_the_dispatcher_places_queues_refills_and_ignores_what_it_has_seen():
    roster = (Agent("ana", "Ana", frozenset({"general", "billing"}), "L1", frozenset({"es"}), 1),)
    dispatcher = Dispatcher(roster)
    board = dispatcher.tickets

    def triaged(n: int, priority: str = "P3") -> dict:
        return {"ticket_id": f"T-AAAAAAA{n}", "skill": "billing", "priority": priority, "tier": "L1", "language": "es",
                "channel": "chat", "received_at": f"2026-12-02T10:00:0{n}.000Z", "signals": {}}

    def run(command: str, data: dict) -> routing.Dispatched:
        return dispatcher.run(command, data)

    first = run("dispatch.ticket_triaged", triaged(2))
    assert [a.data["agent_id"] for a in first.assignments] == ["ana"] and first.classified["queue_position"] == 0
    queued_p4, queued_p2 = run("dispatch.ticket_triaged", triaged(3, "P4")), run("dispatch.ticket_triaged", triaged(4, "P2"))
    assert queued_p4.assignments == queued_p2.assignments == [] and queued_p2.classified["queue_position"] == 1
    assert run("dispatch.ticket_triaged", triaged(2)) == routing.Dispatched()  # a replay
    freed = run("dispatch.ticket_closed", {"ticket_id": "T-AAAAAAA2", "status": "resolved"})
    assert [a.data["ticket_id"] for a in freed.assignments] == ["T-AAAAAAA4"]  # the P2 before the older P4
    assert board["T-AAAAAAA2"]["status"] == "resolved"
    assert run("dispatch.ticket_closed", {"ticket_id": "T-AAAAAAA2", "status": "resolved"}).assignments == []


def ticket(n: int, priority: str, received_at: str, status: str = "queued", agent_id: str | None = None) -> dict:
    return {"ticket_id": f"T-AAAAAAA{n}", "status": status, "skill": "billing", "priority": priority, "tier": "L1",
            "language": "es", "channel": "chat", "agent_id": agent_id, "received_at": received_at, "assignments": 0}


def test_a_waiting_ticket_climbs_a_level_for_every_aging_period():
    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    old_p4 = ticket(1, "P4", "2026-12-02T10:25:00.000Z")  # 95 minutes: three levels up, competes as P1
    new_p2 = ticket(2, "P2", "2026-12-02T11:59:00.000Z")
    fresh_p4 = ticket(3, "P4", "2026-12-02T11:50:00.000Z")
    order = [t["ticket_id"] for t in assignment.next_in_queue([fresh_p4, new_p2, old_p4], now, aging_minutes=30)]
    assert order == ["T-AAAAAAA1", "T-AAAAAAA2", "T-AAAAAAA3"]
    assert [t["ticket_id"] for t in assignment.next_in_queue([fresh_p4, new_p2, old_p4])] == ["T-AAAAAAA2", "T-AAAAAAA1", "T-AAAAAAA3"]


def test_an_agent_going_offline_hands_back_unanswered_tickets_and_away_gets_none():
    roster = (Agent("ana", "Ana", frozenset({"billing"}), "L1", frozenset({"es"}), 2),
              Agent("ben", "Ben", frozenset({"billing"}), "L1", frozenset({"es"}), 1))
    dispatcher = Dispatcher(roster, tickets={t["ticket_id"]: t for t in (
        ticket(1, "P3", "2026-12-02T10:00:00.000Z", "assigned", "ana"),
        {**ticket(2, "P3", "2026-12-02T10:01:00.000Z", "assigned", "ana"), "answered": True},
        ticket(3, "P2", "2026-12-02T10:02:00.000Z"),
    )})
    offline = dispatcher.run("dispatch.agent_changed", {"agent_id": "ana", "presence": "offline"})
    assert [r["ticket_id"] for r in offline.requeued] == ["T-AAAAAAA1"]  # the answered one stays with her
    assert [(a.data["ticket_id"], a.data["agent_id"]) for a in offline.assignments] == [("T-AAAAAAA3", "ben")]  # P2 first
    assert offline.updates["T-AAAAAAA1"]["status"] == "queued" and offline.agent_updates == {"ana": {"presence": "offline"}}
    newcomer = dispatcher.run("dispatch.ticket_triaged", {
        "ticket_id": "T-AAAAAAA4", "skill": "billing", "priority": "P1", "tier": "L1", "language": "es", "channel": "chat",
        "received_at": "2026-12-02T10:05:00.000Z", "signals": {}})
    assert newcomer.assignments == []  # ben is full, ana offline
    back = dispatcher.run("dispatch.agent_changed", {"agent_id": "ana", "presence": "online", "max_concurrent": 3})
    assert [a.data["ticket_id"] for a in back.assignments] == ["T-AAAAAAA4", "T-AAAAAAA1"]  # P1 first, up to her new capacity
    assert dispatcher.run("dispatch.agent_changed", {"agent_id": "ana", "presence": "online", "max_concurrent": 3}) == routing.Dispatched()


def test_first_line_work_goes_to_first_line_while_one_is_free():
    l1, l2 = agent("ana", ("billing",), "L1", cap=2), agent("omar", ("billing",), "L2", cap=2)
    assert assignment.choose_agent((l1, l2), {"ana": 1}, "billing", "L1", "es").id == "ana"
    assert assignment.choose_agent((l1, l2), {"ana": 2}, "billing", "L1", "es").id == "omar"  # overflow to second line
    assert assignment.choose_agent((l1, l2), {}, "billing", "L2", "es").id == "omar"
