"""Surges: a pile of new tickets of one skill or region is reported once, early."""
from __future__ import annotations

import copy
import datetime

import orjson
import pytest

from services.notifier.surges import SurgeRule, observe, surge_keys, suspicion, window_start

RULE = SurgeRule(window_seconds=600, threshold=5)
START = datetime.datetime(2026, 12, 2, 10, 0, tzinfo=datetime.timezone.utc)


def minute(n: float) -> datetime.datetime:
    return START + datetime.timedelta(minutes=n)


def feed(tickets: list[tuple[str, float]], state: dict | None = None, rule: SurgeRule = RULE) -> tuple[dict | None, list[list[str]]]:
    """Observe (id, minute) pairs in order; return the last state and every surge reported."""
    fired = []
    for ticket_id, at in tickets:
        state, surge = observe(state, ticket_id, minute(at), rule)
        if surge is not None:
            fired.append(surge)
    return state, fired


def test_a_surge_fires_exactly_once_when_the_window_reaches_the_threshold():
    _, fired = feed([(f"T-{n}", n) for n in range(8)])
    assert fired == [["T-0", "T-1", "T-2", "T-3", "T-4"]]


def test_below_the_threshold_nothing_fires():
    state, fired = feed([(f"T-{n}", n) for n in range(4)])
    assert fired == []
    assert not state["raised"]


def test_the_ticket_that_reaches_the_threshold_gets_the_report():
    state, _ = feed([(f"T-{n}", n) for n in range(4)])
    state, surge = observe(state, "T-4", minute(4), RULE)
    assert surge == ["T-0", "T-1", "T-2", "T-3", "T-4"]
    assert state["raised"]


def test_a_replayed_ticket_does_not_count_twice():
    state, fired = feed([("T-0", 0), ("T-1", 1), ("T-1", 1), ("T-1", 1), ("T-2", 2), ("T-3", 3)])
    assert fired == []
    assert [entry["id"] for entry in state["entries"]] == ["T-0", "T-1", "T-2", "T-3"]


def test_a_replay_changes_nothing_and_never_fires_even_when_raised():
    state, _ = feed([(f"T-{n}", n) for n in range(5)])
    replayed, surge = observe(state, "T-4", minute(4), RULE)
    assert surge is None
    assert replayed == state


def test_it_fires_again_only_after_falling_below_the_rearm_line_and_rising_to_the_threshold():
    state, fired = feed([(f"A-{n}", n) for n in range(5)])  # minutes 0-4: surge
    assert len(fired) == 1
    # minute 13: the window [3, 13] holds and B-0: 3 >= 2.5, still raised
    state, fired = feed([("B-0", 13)], state)
    assert fired == [] and state["raised"]
    # minute 14.5: the window [4.5, 14.5] holds B-0 and B-1: 2 < 2.5, rearmed
    state, fired = feed([("B-1", 14.5)], state)
    assert fired == [] and not state["raised"]
    state, fired = feed([("B-2", 15), ("B-3", 15.5), ("B-4", 16)], state)
    assert fired == [["B-0", "B-1", "B-2", "B-3", "B-4"]]


def test_a_count_hovering_around_the_threshold_does_not_fire_again():
    # one ticket a minute for an hour keeps the ten-minute window at 10-11 tickets
    _, fired = feed([(f"T-{n}", n) for n in range(60)])
    assert len(fired) == 1


def test_tickets_outside_the_window_do_not_count():
    state, fired = feed([("T-0", 0), ("T-1", 1), ("T-2", 2), ("T-3", 11), ("T-4", 12), ("T-5", 12)])
    assert fired == []
    assert [entry["id"] for entry in state["entries"]] == ["T-2", "T-3", "T-4", "T-5"]


def test_the_edge_of_the_window_still_counts():
    _, fired = feed([("T-0", 0), ("T-1", 1), ("T-2", 2), ("T-3", 3), ("T-4", 10)])
    assert fired == [["T-0", "T-1", "T-2", "T-3", "T-4"]]


def test_tickets_arriving_out_of_order_are_kept_in_time_order_and_still_count():
    _, fired = feed([("T-3", 3), ("T-1", 1), ("T-4", 4), ("T-0", 0), ("T-2", 2)])
    assert fired == [["T-0", "T-1", "T-2", "T-3", "T-4"]]


def test_a_ticket_arriving_after_its_window_has_passed_is_dropped():
    state, fired = feed([("T-1", 20), ("T-2", 21), ("T-3", 22), ("T-4", 23), ("T-0", 5)])
    assert fired == []
    assert [entry["id"] for entry in state["entries"]] == ["T-1", "T-2", "T-3", "T-4"]


def test_the_state_keeps_at_most_max_kept_entries_dropping_the_oldest():
    rule = SurgeRule(window_seconds=600, threshold=3, max_kept=4)
    state, fired = feed([(f"T-{n}", n / 10) for n in range(10)], rule=rule)
    assert len(fired) == 1
    assert [entry["id"] for entry in state["entries"]] == ["T-6", "T-7", "T-8", "T-9"]


def test_the_window_starts_at_the_oldest_ticket_kept():
    state, _ = feed([("T-1", 1), ("T-0", 0.5), ("T-2", 2)])
    assert window_start(state) == "2026-12-02T10:00:30+00:00"
    assert window_start({"entries": [], "raised": False}) is None


def test_times_in_other_offsets_are_kept_in_utc():
    madrid_time = datetime.datetime(2026, 12, 2, 11, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    state, _ = observe(None, "T-0", madrid_time, RULE)
    assert window_start(state) == "2026-12-02T10:00:00+00:00"


def test_the_given_state_is_not_changed():
    state, _ = feed([(f"T-{n}", n) for n in range(4)])
    before = copy.deepcopy(state)
    observe(state, "T-4", minute(4), RULE)
    observe(state, "T-5", minute(30), RULE)
    assert state == before


def test_the_state_survives_a_json_round_trip():
    state = None
    fired = []
    for ticket_id, at in [(f"T-{n}", n) for n in range(7)] + [("T-3", 3), ("U-0", 20), ("U-1", 21)]:
        state, surge = observe(state, ticket_id, minute(at), RULE)
        stored = orjson.dumps(state)
        state = orjson.loads(stored)
        fired += [surge] if surge else []
    assert fired == [["T-0", "T-1", "T-2", "T-3", "T-4"]]
    assert state == {"entries": [{"id": "U-0", "at": minute(20).isoformat()}, {"id": "U-1", "at": minute(21).isoformat()}],
                     "raised": False}


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="aware"):
        observe(None, "T-0", datetime.datetime(2026, 12, 2, 10), RULE)


@pytest.mark.parametrize("kwargs", [
    {"window_seconds": 0, "threshold": 5},
    {"window_seconds": 600, "threshold": 0},
    {"window_seconds": 600, "threshold": 5, "rearm_fraction": 0},
    {"window_seconds": 600, "threshold": 5, "rearm_fraction": 1.5},
    {"window_seconds": 600, "threshold": 50, "max_kept": 10},
])
def test_a_rule_that_could_never_work_is_refused(kwargs):
    with pytest.raises(ValueError):
        SurgeRule(**kwargs)


def test_a_ticket_counts_towards_its_skill_and_its_region():
    assert surge_keys("network", "ES") == ["skill:network", "region:ES"]


def test_the_general_skill_is_not_watched_because_it_is_the_catch_all():
    assert surge_keys("general", "ES") == ["region:ES"]


@pytest.mark.parametrize("skill, region, keys", [
    (None, None, []), ("", "", []), ("billing", None, ["skill:billing"]), (None, "MX", ["region:MX"]),
])
def test_a_missing_skill_or_region_is_skipped(skill, region, keys):
    assert surge_keys(skill, region) == keys


def test_a_surge_becomes_a_suspicion_for_ops_with_its_tickets_and_its_window():
    from deskstream.contract import default_contract
    from deskstream.events import Event

    rule = SurgeRule(window_seconds=600, threshold=3)
    state, fired = None, None
    start = datetime.datetime(2026, 12, 2, 10, 0, tzinfo=datetime.timezone.utc)
    for n, ticket_id in enumerate(["T-AAAAAAAA", "T-BBBBBBBB", "T-CCCCCCCC"]):
        state, fired = observe(state, ticket_id, start + datetime.timedelta(minutes=n), rule)
    data = suspicion("skill:network", fired, state, rule, "2026-12-02T10:02:05.000Z")
    assert (data["suspicion_id"], data["dimension"], data["value"]) == ("surge.skill:network.T-AAAAAAAA", "skill", "network")
    assert (data["count"], data["window_minutes"], data["first_at"]) == (3, 10.0, "2026-12-02T10:00:00.000Z")
    default_contract().check(Event("incident.suspected", "deskstream/notifier", data["suspicion_id"], data))
