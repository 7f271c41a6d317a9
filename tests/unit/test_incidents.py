"""Incidents as data: an incident's life, who it affects, and the notice each gets."""
from __future__ import annotations

from deskstream.contract import default_contract
from deskstream.events import Event

from services.notifier import incidents, requests
from services.notifier.templates import render

DECLARED = {
    "incident_id": "INC-ABCDEFGH", "update_id": "u1", "service": "fibra", "region": "ES", "skill": "network",
    "message": {"en": "A cable was cut.", "es": "Se cortó un cable."}, "expected_fix_at": "2026-12-02T15:30:00Z",
    "by": "ops:1a2b3c4d", "at": "2026-12-02T10:00:00Z",
}
UPDATED = {"incident_id": "INC-ABCDEFGH", "update_id": "u2", "message": {"en": "Technicians on site."},
           "expected_fix_at": "2026-12-02T17:00:00Z", "by": "ops:1a2b3c4d", "at": "2026-12-02T11:00:00Z"}
RESOLVED = {"incident_id": "INC-ABCDEFGH", "update_id": "u3", "message": {"es": "Reparado."}, "by": "ops:1a2b3c4d",
            "at": "2026-12-02T12:00:00Z"}
ANA = {"channel": "sms", "address": "+34600111222"}


def declared() -> dict:
    incident = incidents.fold(None, "incident.declared", DECLARED)
    assert incident is not None
    return incident


def contact(ticket_id: str, skill: str | None, phone: str | None, status: str = "open") -> dict:
    created = {"ticket_id": ticket_id, "channel": "sms", "reply_to": {"channel": "sms", "address": phone or "+15550000000"},
               "customer": {"language": "es", "name": "Ana", **({"phone": phone} if phone else {})}}
    return {**requests.remember_contact(created, "Europe/Madrid"), "skill": skill, "status": status}


def test_an_incident_is_active_from_its_declaration_until_its_resolution():
    incident = declared()
    assert incident["status"] == "active" and incident["fanout"] == {"update_id": "u1", "done": False}
    updated = incidents.fold(incident, "incident.updated", UPDATED)
    assert updated["status"] == "active" and updated["expected_fix_at"] == "2026-12-02T17:00:00Z"
    resolved = incidents.fold(updated, "incident.resolved", RESOLVED)
    assert resolved["status"] == "resolved" and resolved["resolved_at"] == RESOLVED["at"]
    assert [u["kind"] for u in resolved["updates"]] == ["declared", "updated", "resolved"]


def test_a_replayed_update_an_update_after_resolution_and_a_second_declaration_change_nothing():
    incident = declared()
    updated = incidents.fold(incident, "incident.updated", UPDATED)
    assert incidents.fold(updated, "incident.updated", UPDATED) is None
    assert incidents.fold(incident, "incident.declared", DECLARED) is None
    resolved = incidents.fold(updated, "incident.resolved", RESOLVED)
    assert incidents.fold(resolved, "incident.updated", {**UPDATED, "update_id": "u9"}) is None
    assert incidents.fold(None, "incident.updated", UPDATED) is None


def test_a_ticket_is_affected_when_its_skill_and_its_phone_s_country_match():
    incident = declared()
    assert incidents.affects(incident, skill="network", region="ES")
    assert not incidents.affects(incident, skill="billing", region="ES")
    assert not incidents.affects(incident, skill="network", region="MX")
    assert not incidents.affects(incident, skill="network", region=None)
    anywhere = incidents.fold(None, "incident.declared", {**DECLARED, "region": None})
    assert incidents.affects(anywhere, skill="network", region=None)
    service_only = incidents.fold(None, "incident.declared", {**DECLARED, "region": None, "skill": None})
    assert not incidents.affects(service_only, skill="network", region="ES")


def test_the_audience_is_everyone_told_before_the_open_matching_tickets_and_the_subscribers_each_once():
    incident = declared()
    told = [incidents.member({"channel": "email", "address": "eva@example.test"}, "en", ticket_id="T-EVAEVAEV")]
    contacts = [
        contact("T-AAAAAAAA", "network", "+34600111222"),
        contact("T-BBBBBBBB", "network", "+34600111222"),  # the same customer twice
        contact("T-CCCCCCCC", "network", "+34600333444", status="resolved"),
        contact("T-DDDDDDDD", "billing", "+34600555666"),
        contact("T-EEEEEEEE", "network", "+525512345678"),  # Mexico
        contact("T-FFFFFFFF", None, "+34600777888"),  # not classified yet
    ]
    subscriptions = [
        {"service": "fibra", "region": None, "recipient": ANA, "language": "es"},
        {"service": "fibra", "region": "ES", "recipient": {"channel": "whatsapp", "address": "+34611000000"}, "language": "en"},
        {"service": "fibra", "region": "MX", "recipient": {"channel": "sms", "address": "+525500000000"}, "language": "es"},
        {"service": "movil", "region": None, "recipient": {"channel": "sms", "address": "+34622000000"}, "language": "es"},
    ]
    audience = incidents.audience(incident, contacts, subscriptions, told)
    assert [(m["recipient"]["address"], m.get("ticket_id")) for m in audience] == [
        ("eva@example.test", "T-EVAEVAEV"), ("+34600111222", "T-AAAAAAAA"), ("+34611000000", None),
    ]


def test_a_notice_is_a_valid_request_whose_slot_is_the_incident_and_the_recipient():
    incident = declared()
    first = incidents.notice(incident, incidents.member(ANA, "es", "Ana López", "Europe/Madrid", "T-AAAAAAAA"))
    later = incidents.notice(incidents.fold(incident, "incident.updated", UPDATED), incidents.member(ANA, "es"))
    assert first["slot"] == later["slot"] and first["request_id"] != later["request_id"]
    assert "+34600111222" not in first["request_id"]
    assert "ticket_id" not in later and later["template"] == "incident_updated"
    for request in (first, later):
        default_contract().check(Event("notify.requested", "deskstream/notifier", request["request_id"], request))
    text = render(first["template"], "es", {**first["params"], "timezone": first["timezone"]})
    assert text.startswith("Hola Ana, sabemos que hay un problema que afecta a fibra en ES. Se cortó un cable.")
    assert "16:30 (Europe/Madrid)" in text


def test_the_ops_message_falls_back_to_the_language_there_is():
    resolved = incidents.fold(incidents.fold(declared(), "incident.updated", UPDATED), "incident.resolved", RESOLVED)
    assert incidents.status_params(resolved, "en", None)["message"] == "Reparado."


def test_a_new_ticket_about_an_active_incident_is_answered_with_its_status():
    incident = declared()
    ana = {**contact("T-AAAAAAAA", "network", "+34600111222"), "priority": "P2"}
    match = incidents.active_match([incident], skill="network", region="ES")
    request = requests.acknowledgement({"ticket_id": "T-AAAAAAAA", "estimated_wait_minutes": 30, "priority": "P2"}, ana, match)
    assert request["template"] == "acknowledgement_incident" and request["request_id"] == "T-AAAAAAAA.ack"
    text = render(request["template"], "es", {**request["params"], "timezone": request["timezone"]})
    assert "T-AAAAAAAA" in text and "Se cortó un cable." in text and "Te avisaremos" in text
    resolved = incidents.fold(incident, "incident.resolved", RESOLVED)
    assert incidents.active_match([resolved], skill="network", region="ES") is None
