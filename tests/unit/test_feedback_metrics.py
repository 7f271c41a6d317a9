"""Support metrics: ticket facts folded from events, and the figures computed from them."""
from __future__ import annotations

import csv
import io
import json

import pytest

from services.feedback import metrics


def fold(*events: tuple[str, dict, str]) -> dict | None:
    """The facts after a sequence of (type, data, time), as feedback's facts hop keeps them."""
    facts = None
    for event_type, data, time in events:
        facts = metrics.record(facts, event_type, data, time) or facts
    return facts


def created(ticket_id: str, time: str, channel: str = "chat") -> tuple[str, dict, str]:
    return "ticket.created", {"ticket_id": ticket_id, "channel": channel}, time


def classified(priority: str, skill: str, time: str) -> tuple[str, dict, str]:
    return "ticket.classified", {"priority": priority, "skill": skill}, time


def assigned(agent_id: str, time: str) -> tuple[str, dict, str]:
    return "ticket.assigned", {"agent_id": agent_id}, time


def replied(sent_at: str) -> tuple[str, dict, str]:
    return "ticket.reply_sent", {"agent_id": "ana", "sent_at": sent_at}, sent_at


def resolved(resolved_at: str) -> tuple[str, dict, str]:
    return "ticket.resolved", {"resolved_at": resolved_at, "resolved_by": "ana"}, resolved_at


def reopened(reopened_at: str) -> tuple[str, dict, str]:
    return "ticket.reopened", {"reopened_at": reopened_at, "reopened_by": "ana", "reason": "still broken"}, reopened_at


def survey_sent(survey_id: str, sent_at: str) -> tuple[str, dict, str]:
    return "survey.sent", {"survey_id": survey_id, "channel": "chat", "sent_at": sent_at, "expires_at": "2026-12-31T00:00:00Z"}, sent_at


def answered(survey_id: str, score: int, answered_at: str, comment: str | None = None) -> tuple[str, dict, str]:
    return "survey.answered", {"survey_id": survey_id, "score": score, "comment": comment,
                               "answered_at": answered_at, "via": "chat"}, answered_at


# -- the facts of one ticket --------------------------------------------------------------

def test_a_ticket_s_facts_gather_its_story():
    facts = fold(
        created("T1", "2026-11-22T10:00:00Z"),
        classified("P2", "billing", "2026-11-22T10:00:01Z"),
        assigned("ana", "2026-11-22T10:00:03Z"),
        replied("2026-11-22T10:05:00Z"),
        resolved("2026-11-22T10:30:00Z"),
        survey_sent("S-aaaaaaaaaaaa", "2026-11-22T11:30:00Z"),
        answered("S-aaaaaaaaaaaa", 5, "2026-11-22T12:00:00Z", "quick, thanks"),
    )
    assert facts == {
        "ticket_id": "T1", "channel": "chat", "created_at": "2026-11-22T10:00:00Z",
        "priority": "P2", "skill": "billing", "classified_at": "2026-11-22T10:00:01Z",
        "agent_id": "ana", "assigned_at": "2026-11-22T10:00:03Z",
        "first_reply_at": "2026-11-22T10:05:00Z",
        "resolved_at": "2026-11-22T10:30:00Z",
        "survey": {"survey_id": "S-aaaaaaaaaaaa", "sent_at": "2026-11-22T11:30:00Z", "expires_at": "2026-12-31T00:00:00Z",
                   "score": 5, "comment": "quick, thanks", "answered_at": "2026-11-22T12:00:00Z", "via": "chat"},
    }
    assert json.loads(json.dumps(facts)) == facts  # kept in a Kafka-backed table


def test_every_replayed_event_changes_nothing():
    story = [
        created("T1", "2026-11-22T10:00:00Z"),
        classified("P2", "billing", "2026-11-22T10:00:01Z"),
        assigned("ana", "2026-11-22T10:00:03Z"),
        replied("2026-11-22T10:05:00Z"),
        resolved("2026-11-22T10:30:00Z"),
        reopened("2026-11-22T11:00:00Z"),
        survey_sent("S-aaaaaaaaaaaa", "2026-11-22T11:30:00Z"),
        answered("S-aaaaaaaaaaaa", 5, "2026-11-22T12:00:00Z"),
    ]
    facts = fold(*story)
    for event_type, data, time in story:
        assert metrics.record(facts, event_type, data, time) is None, event_type


def test_events_of_a_ticket_never_created_are_ignored():
    assert metrics.record(None, "ticket.assigned", {"agent_id": "ana"}, "2026-11-22T10:00:00Z") is None
    assert metrics.record(None, *answered("S-aaaaaaaaaaaa", 5, "2026-11-22T12:00:00Z")) is None


def test_unknown_event_types_change_nothing():
    facts = fold(created("T1", "2026-11-22T10:00:00Z"))
    assert metrics.record(facts, "ticket.note_added", {"text": "hm"}, "2026-11-22T10:01:00Z") is None


def test_the_last_assignment_names_the_agent_and_an_older_one_replayed_does_not_undo_it():
    facts = fold(created("T1", "2026-11-22T10:00:00Z"), assigned("ana", "2026-11-22T10:00:03Z"),
                 assigned("ben", "2026-11-22T10:20:00Z"))
    assert (facts["agent_id"], facts["assigned_at"]) == ("ben", "2026-11-22T10:20:00Z")
    assert metrics.record(facts, *assigned("ana", "2026-11-22T10:00:03Z")) is None


def test_the_first_reply_is_the_earliest_one():
    facts = fold(created("T1", "2026-11-22T10:00:00Z"), replied("2026-11-22T10:05:00Z"), replied("2026-11-22T10:09:00Z"))
    assert facts["first_reply_at"] == "2026-11-22T10:05:00Z"


def test_times_are_compared_as_instants_not_as_text():
    facts = fold(created("T1", "2026-11-22T10:00:00Z"), replied("2026-11-22T10:05:00Z"))
    assert metrics.record(facts, *replied("2026-11-22T11:05:00+01:00")) is None  # the same moment


def test_a_reopening_is_counted_once_and_the_last_resolution_is_kept():
    facts = fold(created("T1", "2026-11-22T10:00:00Z"), resolved("2026-11-22T10:30:00Z"), reopened("2026-11-22T11:00:00Z"))
    assert (facts["resolved_at"], facts["reopened"]) == ("2026-11-22T10:30:00Z", 1)
    assert not metrics.is_resolved(facts)
    facts = fold(created("T1", "2026-11-22T10:00:00Z"), resolved("2026-11-22T10:30:00Z"), reopened("2026-11-22T11:00:00Z"),
                 resolved("2026-11-22T12:00:00Z"), reopened("2026-11-22T11:00:00Z"))
    assert (facts["resolved_at"], facts["reopened"], facts["reopened_at"]) == ("2026-11-22T12:00:00Z", 1, "2026-11-22T11:00:00Z")
    assert metrics.is_resolved(facts)


def test_the_last_answer_to_the_survey_wins():
    facts = fold(created("T1", "2026-11-22T10:00:00Z"), survey_sent("S-aaaaaaaaaaaa", "2026-11-22T11:30:00Z"),
                 answered("S-aaaaaaaaaaaa", 2, "2026-11-22T12:00:00Z"),
                 answered("S-aaaaaaaaaaaa", 4, "2026-11-22T12:05:00Z", "on second thought"))
    assert facts["survey"]["score"] == 4 and facts["survey"]["comment"] == "on second thought"
    assert metrics.record(facts, *answered("S-aaaaaaaaaaaa", 2, "2026-11-22T12:00:00Z")) is None  # replayed, older


def test_an_answer_counts_only_for_the_survey_the_ticket_holds():
    facts = fold(created("T1", "2026-11-22T10:00:00Z"))
    assert metrics.record(facts, *answered("S-aaaaaaaaaaaa", 5, "2026-11-22T12:00:00Z")) is None  # none sent
    facts = fold(created("T1", "2026-11-22T10:00:00Z"), survey_sent("S-bbbbbbbbbbbb", "2026-11-22T11:30:00Z"))
    assert metrics.record(facts, *answered("S-aaaaaaaaaaaa", 5, "2026-11-22T12:00:00Z")) is None


def test_a_later_resolution_s_survey_replaces_the_earlier_one():
    facts = fold(created("T1", "2026-11-22T10:00:00Z"), survey_sent("S-aaaaaaaaaaaa", "2026-11-22T11:30:00Z"),
                 answered("S-aaaaaaaaaaaa", 1, "2026-11-22T12:00:00Z"), survey_sent("S-bbbbbbbbbbbb", "2026-11-25T09:00:00Z"))
    assert facts["survey"] == {"survey_id": "S-bbbbbbbbbbbb", "sent_at": "2026-11-25T09:00:00Z", "expires_at": "2026-12-31T00:00:00Z",
                               "score": None, "comment": None, "answered_at": None, "via": None}
    assert metrics.record(facts, *survey_sent("S-aaaaaaaaaaaa", "2026-11-22T11:30:00Z")) is None  # replayed, older


# -- percentiles --------------------------------------------------------------------------

def test_percentiles_are_nearest_rank_so_always_an_observed_value():
    assert metrics.nearest_rank([], 50) is None
    assert metrics.nearest_rank([7.0], 90) == 7.0
    assert metrics.nearest_rank([600.0, 60.0, 300.0, 450.0, 120.0], 50) == 300.0  # rank ⌈2.5⌉ = 3
    assert metrics.nearest_rank([600.0, 60.0, 300.0, 450.0, 120.0], 90) == 600.0  # rank ⌈4.5⌉ = 5
    assert metrics.nearest_rank([1.0, 2.0, 3.0, 4.0], 50) == 2.0  # the lower middle, not 2.5
    assert metrics.nearest_rank([float(n) for n in range(1, 11)], 90) == 9.0  # rank exactly 9
    assert metrics.nearest_rank([float(n) for n in range(1, 21)], 90) == 18.0


# -- the figures ----------------------------------------------------------------------------

def five_tickets() -> list[dict]:
    """Created 10:00 UTC on 22 November (T5 just after midnight UTC on the 23rd); first
    replies after 60, 120, 300, 450 and 600 s; T1-T3 resolved after 1800, 3600 and 7200 s;
    T4 resolved and reopened; surveys answered 5, 4 and 2, T4's unanswered."""
    return [
        fold(created("T1", "2026-11-22T10:00:00Z", "chat"), classified("P2", "billing", "2026-11-22T10:00:01Z"),
             assigned("ana", "2026-11-22T10:00:02Z"), replied("2026-11-22T10:01:00Z"), resolved("2026-11-22T10:30:00Z"),
             survey_sent("S-aaaaaaaaaaa1", "2026-11-22T11:30:00Z"), answered("S-aaaaaaaaaaa1", 5, "2026-11-22T12:00:00Z")),
        fold(created("T2", "2026-11-22T10:00:00Z", "chat"), classified("P1", "billing", "2026-11-22T10:00:01Z"),
             assigned("ana", "2026-11-22T10:00:02Z"), replied("2026-11-22T10:02:00Z"), resolved("2026-11-22T11:00:00Z"),
             survey_sent("S-aaaaaaaaaaa2", "2026-11-22T12:00:00Z"), answered("S-aaaaaaaaaaa2", 4, "2026-11-22T13:00:00Z")),
        fold(created("T3", "2026-11-22T10:00:00Z", "email"), classified("P3", "technical", "2026-11-22T10:00:01Z"),
             assigned("ben", "2026-11-22T10:00:02Z"), replied("2026-11-22T10:05:00Z"), resolved("2026-11-22T12:00:00Z"),
             survey_sent("S-aaaaaaaaaaa3", "2026-11-22T13:00:00Z"), answered("S-aaaaaaaaaaa3", 2, "2026-11-22T14:00:00Z")),
        fold(created("T4", "2026-11-22T10:00:00Z", "email"), classified("P3", "technical", "2026-11-22T10:00:01Z"),
             assigned("ben", "2026-11-22T10:00:02Z"), replied("2026-11-22T10:07:30Z"), resolved("2026-11-22T10:20:00Z"),
             survey_sent("S-aaaaaaaaaaa4", "2026-11-22T11:20:00Z"), reopened("2026-11-22T11:30:00Z")),
        fold(created("T5", "2026-11-22T23:30:00-01:00", "sms"), replied("2026-11-23T00:40:00Z")),
    ]


def test_the_figures_of_everything():
    [row] = metrics.summary(five_tickets())
    assert row == {
        "tickets": 5, "resolved": 3, "surveys_sent": 4, "surveys_answered": 3,
        "response_rate": 0.75,
        "csat": pytest.approx(2 / 3),  # 5 and 4 of 5, 4 and 2
        "score_mean": pytest.approx(11 / 3),
        "first_response_seconds_median": 300.0, "first_response_seconds_p90": 600.0,
        "resolution_seconds_median": 3600.0, "resolution_seconds_p90": 7200.0,  # T4 is open again: not counted
    }
    assert row["csat"] == pytest.approx(0.667, abs=5e-4)


def test_the_figures_by_agent_with_unassigned_tickets_in_their_own_row():
    rows = metrics.summary(five_tickets(), by="agent")
    assert [row["agent"] for row in rows] == ["ana", "ben", "unassigned"]
    ana, ben, unassigned = rows
    assert ana == {
        "agent": "ana", "tickets": 2, "resolved": 2, "surveys_sent": 2, "surveys_answered": 2,
        "response_rate": 1.0, "csat": 1.0, "score_mean": 4.5,
        "first_response_seconds_median": 60.0, "first_response_seconds_p90": 120.0,
        "resolution_seconds_median": 1800.0, "resolution_seconds_p90": 3600.0,
    }
    assert (ben["tickets"], ben["resolved"], ben["response_rate"], ben["csat"], ben["score_mean"]) == (2, 1, 0.5, 0.0, 2.0)
    assert (ben["first_response_seconds_median"], ben["first_response_seconds_p90"]) == (300.0, 450.0)
    assert unassigned == {
        "agent": "unassigned", "tickets": 1, "resolved": 0, "surveys_sent": 0, "surveys_answered": 0,
        "response_rate": None, "csat": None, "score_mean": None,  # nothing to divide by is not zero
        "first_response_seconds_median": 600.0, "first_response_seconds_p90": 600.0,
        "resolution_seconds_median": None, "resolution_seconds_p90": None,
    }


def test_the_figures_by_skill_priority_and_channel():
    assert [(row["skill"], row["tickets"]) for row in metrics.summary(five_tickets(), by="skill")] == [
        ("billing", 2), ("technical", 2), ("unclassified", 1)]
    assert [(row["priority"], row["tickets"]) for row in metrics.summary(five_tickets(), by="priority")] == [
        ("P1", 1), ("P2", 1), ("P3", 2), ("unclassified", 1)]
    assert [(row["channel"], row["tickets"]) for row in metrics.summary(five_tickets(), by="channel")] == [
        ("chat", 2), ("email", 2), ("sms", 1)]


def test_the_day_is_the_utc_day_of_creation():
    rows = metrics.summary(five_tickets(), by="day")
    assert [(row["day"], row["tickets"]) for row in rows] == [("2026-11-22", 4), ("2026-11-23", 1)]  # T5: 23:30 at -01:00


def test_tickets_are_chosen_by_creation_time_since_included_until_excluded():
    assert metrics.summary(five_tickets(), since="2026-11-23")[0]["tickets"] == 1
    assert metrics.summary(five_tickets(), until="2026-11-23T00:00:00Z")[0]["tickets"] == 4
    assert metrics.summary(five_tickets(), since="2026-11-22T10:00:00Z", until="2026-11-23T00:30:00Z")[0]["tickets"] == 4
    assert metrics.summary(five_tickets(), since="2026-11-22T10:00:00Z", until="2026-11-23T00:30:00.001Z")[0]["tickets"] == 5


def test_no_tickets_one_empty_row_for_everything_and_no_rows_by_a_dimension():
    assert metrics.summary([]) == [{
        "tickets": 0, "resolved": 0, "surveys_sent": 0, "surveys_answered": 0,
        "response_rate": None, "csat": None, "score_mean": None,
        "first_response_seconds_median": None, "first_response_seconds_p90": None,
        "resolution_seconds_median": None, "resolution_seconds_p90": None,
    }]
    assert metrics.summary([], by="agent") == []


def test_a_reply_stamped_before_the_ticket_counts_as_an_immediate_one():
    facts = fold(created("T1", "2026-11-22T10:00:00Z"), replied("2026-11-22T09:59:59Z"))
    assert metrics.summary([facts])[0]["first_response_seconds_median"] == 0.0


def test_an_unknown_dimension_is_refused():
    with pytest.raises(ValueError):
        metrics.summary(five_tickets(), by="colour")


# -- CSV --------------------------------------------------------------------------------------

def test_csv_has_a_header_and_a_line_per_row_with_plain_numbers_and_empty_nones():
    text = metrics.as_csv([{"agent": "ana", "tickets": 2, "csat": 1.0, "score_mean": 4.5, "resolution_seconds_p90": 3600.0},
                           {"agent": "o'brien, jo", "tickets": 1, "csat": None, "score_mean": None, "resolution_seconds_p90": None}])
    assert text == ("agent,tickets,csat,score_mean,resolution_seconds_p90\r\n"
                    "ana,2,1,4.5,3600\r\n"
                    "\"o'brien, jo\",1,,,\r\n")


def test_csv_of_a_summary_reads_back_with_the_same_figures():
    rows = metrics.summary(five_tickets(), by="agent")
    header, *lines = csv.reader(io.StringIO(metrics.as_csv(rows)))
    assert header == list(rows[0])
    assert lines[0][header.index("score_mean")] == "4.5"
    assert float(lines[1][header.index("first_response_seconds_median")]) == rows[1]["first_response_seconds_median"]
    assert lines[2][header.index("csat")] == ""


def test_csv_of_no_rows_is_empty():
    assert metrics.as_csv([]) == ""


def test_a_breached_target_counts_once_per_opening_of_the_ticket():
    from services.feedback.metrics import record

    facts = record(None, "ticket.created", {"ticket_id": "T-AAAAAAAA", "channel": "chat"}, "2026-12-02T10:00:00.000Z")
    breach = {"ticket_id": "T-AAAAAAAA", "target": "first_response", "priority": "P1", "due_at": "2026-12-02T10:15:00.000Z",
              "breached_at": "2026-12-02T10:15:00.000Z", "agent_id": None}
    facts = record(facts, "ticket.sla_breached", breach, "2026-12-02T10:15:01.000Z")
    assert facts["breaches"] == ["first_response@0"] and facts["breached_at"] == "2026-12-02T10:15:00.000Z"
    assert record(facts, "ticket.sla_breached", breach, "2026-12-02T10:15:01.000Z") is None
