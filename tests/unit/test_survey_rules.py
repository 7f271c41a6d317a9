"""When feedback asks a customer how it went, and when it leaves them alone."""
from __future__ import annotations

import re

import pytest

from services.feedback.surveys import SurveyRules, answer_open, due_at, skip_reason, survey_id

RULES = SurveyRules(delay_seconds=3600, fatigue_days=30, answer_window_hours=72)
TICKET = {"tags": ["billing"], "reopened_after_resolution": False, "resolution": "resolved"}
NOW = "2026-12-01T10:00:00Z"


# -- when the survey goes out -------------------------------------------------------------

def test_the_survey_is_due_the_delay_after_the_resolution():
    assert due_at("2026-11-22T10:00:00Z", RULES) == "2026-11-22T11:00:00.000Z"


def test_due_at_crosses_midnight_and_is_given_in_utc():
    assert due_at("2026-11-22T23:30:00Z", RULES) == "2026-11-23T00:30:00.000Z"
    assert due_at("2026-11-22T10:00:00+02:00", RULES) == "2026-11-22T09:00:00.000Z"


def test_due_at_keeps_fractions_of_a_second():
    rules = SurveyRules(delay_seconds=90.5, fatigue_days=30, answer_window_hours=72)
    assert due_at("2026-11-22T10:00:00.250Z", rules) == "2026-11-22T10:01:30.750Z"


# -- whom to leave alone --------------------------------------------------------------------

def test_a_customer_never_surveyed_is_asked():
    assert skip_reason(customer=None, ticket=TICKET, now=NOW, rules=RULES) is None
    assert skip_reason(customer={}, ticket=TICKET, now=NOW, rules=RULES) is None
    assert skip_reason(customer={"last_surveyed_at": None, "opted_out": False}, ticket=TICKET, now=NOW, rules=RULES) is None


def test_a_ticket_without_tags_is_asked_about():
    assert skip_reason(customer=None, ticket={}, now=NOW, rules=RULES) is None


def test_a_customer_who_opted_out_is_never_asked():
    customer = {"last_surveyed_at": None, "opted_out": True}
    assert skip_reason(customer=customer, ticket=TICKET, now=NOW, rules=RULES) == "opted out"


def test_one_survey_per_customer_per_fatigue_period_which_ends_exactly_n_days_later():
    customer = {"last_surveyed_at": "2026-11-01T10:00:00Z", "opted_out": False}
    assert skip_reason(customer=customer, ticket=TICKET, now="2026-12-01T09:59:59.999Z", rules=RULES) == (
        "surveyed on 2026-11-01 (fatigue: one per 30 days)")
    assert skip_reason(customer=customer, ticket=TICKET, now="2026-12-01T10:00:00Z", rules=RULES) is None
    assert skip_reason(customer=customer, ticket=TICKET, now="2026-12-01T11:00:00+01:00", rules=RULES) is None  # the same instant


def test_the_fatigue_reason_gives_the_utc_day_and_the_period_as_configured():
    customer = {"last_surveyed_at": "2026-11-30T23:30:00-01:00", "opted_out": False}
    rules = SurveyRules(delay_seconds=3600, fatigue_days=7.5, answer_window_hours=72)
    assert skip_reason(customer=customer, ticket=TICKET, now="2026-12-02T00:00:00Z", rules=rules) == (
        "surveyed on 2026-12-01 (fatigue: one per 7.5 days)")


def test_spam_is_not_surveyed():
    ticket = {**TICKET, "tags": ["billing", "spam"]}
    assert skip_reason(customer=None, ticket=ticket, now=NOW, rules=RULES) == "spam"


def test_auto_closed_tickets_are_not_surveyed_by_tag_or_by_resolution():
    assert skip_reason(customer=None, ticket={**TICKET, "tags": ["auto_closed"]}, now=NOW, rules=RULES) == "auto-closed"
    assert skip_reason(customer=None, ticket={**TICKET, "resolution": "auto_closed"}, now=NOW, rules=RULES) == "auto-closed"


def test_the_skip_tags_are_configurable():
    rules = SurveyRules(delay_seconds=3600, fatigue_days=30, answer_window_hours=72, skip_tags=frozenset({"legal_hold"}))
    assert skip_reason(customer=None, ticket={"tags": ["legal_hold"]}, now=NOW, rules=rules) == "legal-hold"
    assert skip_reason(customer=None, ticket={"tags": ["spam"]}, now=NOW, rules=rules) is None


def test_a_ticket_reopened_after_its_resolution_is_not_surveyed():
    ticket = {**TICKET, "reopened_after_resolution": True}
    assert skip_reason(customer=None, ticket=ticket, now=NOW, rules=RULES) == "reopened"


def test_the_customer_s_wish_comes_first_then_the_ticket_then_fatigue():
    tired = {"last_surveyed_at": "2026-11-30T10:00:00Z", "opted_out": False}
    spam = {**TICKET, "tags": ["spam"], "reopened_after_resolution": True}
    assert skip_reason(customer={**tired, "opted_out": True}, ticket=spam, now=NOW, rules=RULES) == "opted out"
    assert skip_reason(customer=tired, ticket=spam, now=NOW, rules=RULES) == "spam"
    assert skip_reason(customer=tired, ticket={**TICKET, "reopened_after_resolution": True}, now=NOW, rules=RULES) == "reopened"
    assert skip_reason(customer=tired, ticket=TICKET, now=NOW, rules=RULES).startswith("surveyed on 2026-11-30")


# -- how long answers count ---------------------------------------------------------------------

@pytest.mark.parametrize(("now", "open_"), [
    ("2026-11-22T10:00:00Z", True),  # at once
    ("2026-11-25T09:59:59.999Z", True),  # the last moment
    ("2026-11-25T10:00:00Z", False),  # exactly 72 hours: closed, as intake treats expires_at
    ("2026-11-25T12:00:00+02:00", False),  # the same instant elsewhere
    ("2026-11-26T10:00:00Z", False),
    ("2026-11-22T09:59:59Z", True),  # before sending: another clock's skew, not a reason to refuse
])
def test_answers_count_for_the_window_after_sending(now: str, open_: bool):
    assert answer_open("2026-11-22T10:00:00Z", now, RULES) is open_


# -- which survey ----------------------------------------------------------------------------------

def test_the_survey_id_is_stable_per_resolution():
    first = survey_id("T1", "2026-11-22T10:30:00Z")
    assert re.fullmatch(r"S-[a-z2-7]{12}", first)  # as schemas/survey.*.json require
    assert survey_id("T1", "2026-11-22T10:30:00Z") == first  # a replayed resolution: the same survey
    assert survey_id("T1", "2026-11-22T11:30:00+01:00") == first  # the same instant written otherwise


def test_two_resolutions_of_one_ticket_get_two_surveys_and_tickets_do_not_share():
    first = survey_id("T1", "2026-11-22T10:30:00Z")
    assert survey_id("T1", "2026-11-24T09:00:00Z") != first  # resolved again after a reopening
    assert survey_id("T2", "2026-11-22T10:30:00Z") != first
