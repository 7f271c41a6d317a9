"""The incident API's bodies: what becomes event data, and what is refused and why."""
import re
from typing import Any

import pytest

from deskstream.contract import SchemaViolation, default_contract
from deskstream.events import Event
from services.notifier import incident_requests as ir
from services.notifier.incident_requests import IncidentClosed, InvalidIncidentRequest

AT = "2026-05-04T10:00:00.000Z"
BY = "ops:1a2b3c4d"
INCIDENT_ID = "INC-ABCDEFGH"
ACTIVE = {"incident_id": INCIDENT_ID, "status": "active", "service": "fibre-madrid", "region": "ES", "skill": "network",
          "message": {"en": "Fibre is down in Madrid."}, "expected_fix_at": "2026-05-04T16:00:00.000Z",
          "declared_at": AT, "updates": []}
RESOLVED = {**ACTIVE, "status": "resolved"}
DECLARE = {"service": "fibre-madrid", "region": "ES", "skill": "network",
           "message": {"en": "Fibre is down in Madrid.", "es": "La fibra no funciona en Madrid."},
           "expected_fix_at": "2026-05-04T18:30:00+02:00"}


def valid(event_type: str, data: dict[str, Any], event_id: str = "some-id") -> dict[str, Any]:
    """`data` as the contract sees it in an event; raises SchemaViolation otherwise."""
    default_contract().check(Event(type=event_type, source="deskstream/notifier", id=event_id, data=data))
    return data


def declared(**changes: Any) -> dict[str, Any]:
    body = {**DECLARE, **changes}
    return ir.declared({k: v for k, v in body.items() if v is not ...}, by=BY, at=AT, incident_id=INCIDENT_ID, update_id="first")


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(InvalidIncidentRequest) as raised:
        call(*args, **kwargs)
    return str(raised.value)


# Ids

def test_incident_ids_are_random_unless_a_retry_key_makes_them_repeatable():
    ids = {ir.new_incident_id() for _ in range(50)}
    assert len(ids) == 50 and all(re.fullmatch(r"INC-[A-Z2-7]{8}", i) for i in ids)
    assert ir.new_incident_id("ops:1|declare|key-1") == ir.new_incident_id("ops:1|declare|key-1") != ir.new_incident_id("ops:1|declare|key-2")
    assert re.fullmatch(r"INC-[A-Z2-7]{8}", ir.new_incident_id("ops:1|declare|key-1"))


def test_update_ids_fit_the_schema_and_an_event_id():
    for update_id in [ir.new_update_id() for _ in range(50)] + [ir.new_update_id("retry")]:
        assert re.fullmatch(r"[A-Za-z0-9_-]{12}", update_id)
    assert ir.new_update_id("retry") == ir.new_update_id("retry")


# Declaring

def test_a_declaration_becomes_incident_declared_with_the_fix_time_in_utc():
    assert valid("incident.declared", declared()) == {
        "incident_id": INCIDENT_ID, "update_id": "first", "service": "fibre-madrid", "region": "ES", "skill": "network",
        "message": {"en": "Fibre is down in Madrid.", "es": "La fibra no funciona en Madrid."},
        "expected_fix_at": "2026-05-04T16:30:00.000Z", "by": BY, "at": AT,
    }


def test_region_skill_and_fix_time_may_be_left_out_or_null():
    data = valid("incident.declared", declared(region=..., skill=None, expected_fix_at=..., message={"es": "Sin fibra."}))
    assert (data["region"], data["skill"], data["expected_fix_at"], data["message"]) == (None, None, None, {"es": "Sin fibra."})


@pytest.mark.parametrize("given, utc", [
    ("2026-05-04T16:30Z", "2026-05-04T16:30:00.000Z"),
    ("2026-05-04T16:30:00.123456+00:00", "2026-05-04T16:30:00.123Z"),
    ("2026-05-04T12:30:00-04:00", "2026-05-04T16:30:00.000Z"),
    ("20260504T163000Z", "2026-05-04T16:30:00.000Z"),
])
def test_a_fix_time_in_any_iso_form_with_an_offset_is_stored_in_utc(given, utc):
    assert valid("incident.declared", declared(expected_fix_at=given))["expected_fix_at"] == utc


@pytest.mark.parametrize("changes, error", [
    ({"service": ...}, "service must be 1 to 63 lower-case letters"),
    ({"service": "Fibre Madrid"}, "service must be 1 to 63 lower-case letters"),
    ({"service": "-fibre"}, "service must be 1 to 63 lower-case letters"),
    ({"service": "f" * 64}, "service must be 1 to 63 lower-case letters"),
    ({"service": 7}, "service must be 1 to 63 lower-case letters"),
    ({"region": "es"}, "region must be an ISO 3166 alpha-2 country code in capitals (such as ES), or null"),
    ({"region": "ESP"}, "region must be an ISO 3166 alpha-2 country code"),
    ({"skill": "plumbing"}, "skill must be one of network, billing, account, hardware, software, general, or null"),
    ({"message": ...}, "message must be an object with the text by language"),
    ({"message": "Fibre is down"}, "message must be an object with the text by language"),
    ({"message": {}}, "message must be an object with the text by language"),
    ({"message": {"en": "Down", "fr": "En panne"}}, "message languages are en and es only"),
    ({"message": {"en": ""}}, "message.en must be text of 1 to 1000 characters"),
    ({"message": {"en": "ok", "es": 5}}, "message.es must be text of 1 to 1000 characters"),
    ({"message": {"en": "x" * 1001}}, "message.en must be text of 1 to 1000 characters"),
    ({"expected_fix_at": "2026-05-04T18:30:00"}, "expected_fix_at needs its offset, Z or +hh:mm"),
    ({"expected_fix_at": "2026-05-04"}, "expected_fix_at needs its offset"),
    ({"expected_fix_at": "tomorrow"}, "expected_fix_at is not an ISO 8601 time"),
    ({"expected_fix_at": 1777900000}, "expected_fix_at must be an ISO 8601 time with its offset"),
    ({"expected_fix_at": "2026-05-04T11:59:00+02:00"}, "expected_fix_at is in the past"),
    ({"status": "active"}, "unknown fields status; allowed: expected_fix_at, message, region, service, skill"),
])
def test_each_wrong_field_of_a_declaration_is_named(changes, error):
    assert refusal(declared, **changes).startswith(error)


def test_a_body_that_is_not_an_object_is_refused():
    assert refusal(ir.declared, ["fibre"], by=BY, at=AT, incident_id=INCIDENT_ID, update_id="u") == "the body must be a JSON object"


def test_unknown_field_names_are_cut_short_in_the_error():
    error = refusal(declared, **{f"{'x' * 100}{n}": 1 for n in range(7)})
    assert len(error) < 400 and error.count("x" * 40) == 5 and ", ..." in error


# Text is untrusted

def test_messages_lose_control_characters_but_keep_their_lines():
    text = "  Corte\x1b[31m de fibra\x00.\r\nVuelve\ta las 18:00\u202e.\x7f\x85 \n"
    assert declared(message={"es": text})["message"] == {"es": "Corte[31m de fibra.\nVuelve a las 18:00."}


def test_a_message_of_only_control_characters_and_spaces_is_empty():
    assert refusal(declared, message={"en": " \x00\x1b \u202e\n"}) == "message.en must be text of 1 to 1000 characters"


def test_the_length_limit_counts_the_text_that_is_kept():
    assert declared(message={"en": "x" * 1000 + "\x00" * 50})["message"]["en"] == "x" * 1000


# Updating and resolving

def test_an_update_keeps_the_current_estimate_unless_it_gives_one():
    kept = ir.updated({"message": {"en": "Still down."}}, incident=ACTIVE, by=BY, at=AT, update_id="u2")
    assert valid("incident.updated", kept) == {"incident_id": INCIDENT_ID, "update_id": "u2", "message": {"en": "Still down."},
                                               "expected_fix_at": "2026-05-04T16:00:00.000Z", "by": BY, "at": AT}
    moved = ir.updated({"message": {"en": "Later."}, "expected_fix_at": "2026-05-04T20:00:00+02:00"},
                       incident=ACTIVE, by=BY, at=AT, update_id="u3")
    assert moved["expected_fix_at"] == "2026-05-04T18:00:00.000Z"
    withdrawn = ir.updated({"message": {"en": "No estimate."}, "expected_fix_at": None}, incident=ACTIVE, by=BY, at=AT, update_id="u4")
    assert valid("incident.updated", withdrawn)["expected_fix_at"] is None


def test_an_update_needs_a_message_and_nothing_else():
    assert refusal(ir.updated, {}, incident=ACTIVE, by=BY, at=AT, update_id="u").startswith("message must be an object")
    assert refusal(ir.updated, {"message": {"en": "x"}, "service": "other"}, incident=ACTIVE, by=BY, at=AT,
                   update_id="u") == "unknown fields service; allowed: expected_fix_at, message"


def test_a_resolution_becomes_incident_resolved():
    data = ir.resolved({"message": {"en": "Fixed.", "es": "Resuelto."}}, incident=ACTIVE, by=BY, at=AT, update_id="u9")
    assert valid("incident.resolved", data, f"{INCIDENT_ID}.resolved") == {
        "incident_id": INCIDENT_ID, "update_id": "u9", "message": {"en": "Fixed.", "es": "Resuelto."}, "by": BY, "at": AT}
    assert refusal(ir.resolved, {"message": {"en": "x"}, "expected_fix_at": None}, incident=ACTIVE, by=BY, at=AT,
                   update_id="u").startswith("unknown fields expected_fix_at")


@pytest.mark.parametrize("call", [ir.updated, ir.resolved])
def test_a_resolved_incident_takes_no_more_updates_and_says_409(call):
    with pytest.raises(IncidentClosed) as raised:
        call({"message": {"en": "Again."}}, incident=RESOLVED, by=BY, at=AT, update_id="u")
    assert isinstance(raised.value, InvalidIncidentRequest) and raised.value.status == 409
    assert str(raised.value) == f"incident {INCIDENT_ID} is resolved: it takes no more updates"


def test_a_closed_incident_is_refused_before_its_body_is_read():
    with pytest.raises(IncidentClosed):
        ir.updated({"message": "not even valid"}, incident=RESOLVED, by=BY, at=AT, update_id="u")


# Subscriptions

SUBSCRIBER = {"service": "fibre-madrid", "recipient": {"channel": "email", "address": "Marta.Lopez@Example.ES"}, "language": "es"}


def test_one_subscription_becomes_one_subscription_added():
    [data] = ir.subscriptions(SUBSCRIBER, at=AT)
    assert valid("subscription.added", data, ir.subscription_event_id("subscription.added", data)) == {
        "service": "fibre-madrid", "region": None, "recipient": {"channel": "email", "address": "marta.lopez@example.es"},
        "language": "es", "at": AT}


def test_a_list_of_subscriptions_becomes_one_event_each_in_order():
    body = {"subscriptions": [
        {**SUBSCRIBER, "region": "ES", "name": "  Marta\x00 López\n", "timezone": "Europe/Madrid"},
        {"service": "fibre-madrid", "recipient": {"channel": "sms", "address": "+34 600 11 22 33"}, "language": "en"},
        {"service": "fibre-madrid", "recipient": {"channel": "whatsapp", "address": "whatsapp:+34600112233"}, "language": "es",
         "name": "  ", "timezone": "America/Argentina/Buenos_Aires"},
        {"service": "fibre-madrid", "recipient": {"channel": "chat", "address": "Q2hhdFNlc3Npb24tMTIz"}, "language": "es"},
    ]}
    added = [valid("subscription.added", data) for data in ir.subscriptions(body, at=AT)]
    assert [data["recipient"] for data in added] == [
        {"channel": "email", "address": "marta.lopez@example.es"}, {"channel": "sms", "address": "+34600112233"},
        {"channel": "whatsapp", "address": "+34600112233"}, {"channel": "chat", "address": "Q2hhdFNlc3Npb24tMTIz"}]
    assert (added[0]["name"], added[0]["region"], added[0]["timezone"]) == ("Marta López", "ES", "Europe/Madrid")
    assert "name" not in added[2]  # a blank name is no name


def test_up_to_5000_subscriptions_per_request():
    many = [{**SUBSCRIBER, "recipient": {"channel": "email", "address": f"c{n}@example.com"}} for n in range(5001)]
    assert len(ir.subscriptions({"subscriptions": many[:5000]}, at=AT)) == 5000
    assert refusal(ir.subscriptions, {"subscriptions": many}, at=AT) == "at most 5000 subscriptions per request; split the list"


@pytest.mark.parametrize("body, error", [
    ({"subscriptions": []}, "subscriptions must be a list of 1 to 5000 subscriptions"),
    ({"subscriptions": SUBSCRIBER}, "subscriptions must be a list of 1 to 5000 subscriptions"),
    ({"subscriptions": [SUBSCRIBER], "dry_run": True}, "unknown fields dry_run; allowed: subscriptions"),
    ({"subscriptions": [SUBSCRIBER, "marta@example.es"]}, "subscriptions[1] must be a JSON object"),
    ({"subscriptions": [SUBSCRIBER, {**SUBSCRIBER, "language": "fr"}]}, "subscriptions[1].language must be one of en, es"),
    ({"subscriptions": [SUBSCRIBER, {**SUBSCRIBER, "recipient": {"channel": "email", "address": "MARTA.LOPEZ@example.es"}}]},
     "subscriptions[1] has the service and recipient of subscriptions[0]"),
    ({**SUBSCRIBER, "service": "Fibre"}, "service must be 1 to 63 lower-case letters"),
    ({**SUBSCRIBER, "region": "Spain"}, "region must be an ISO 3166 alpha-2 country code"),
    ({**SUBSCRIBER, "language": None}, "language must be one of en, es"),
    ({**SUBSCRIBER, "name": "x" * 201}, "name must be text of at most 200 characters"),
    ({**SUBSCRIBER, "name": 42}, "name must be text of at most 200 characters"),
    ({**SUBSCRIBER, "timezone": "Madrid time"}, "timezone must be an IANA time zone name"),
    ({**SUBSCRIBER, "timezone": "Europe/" + "x" * 60}, "timezone must be an IANA time zone name"),
    ({**SUBSCRIBER, "vip": True}, "unknown fields vip"),
    ({**SUBSCRIBER, "recipient": "marta@example.es"}, "recipient must be a JSON object"),
    ({**SUBSCRIBER, "recipient": {"channel": "fax", "address": "+34911223344"}}, "recipient.channel must be one of email, sms, whatsapp, chat"),
    ({**SUBSCRIBER, "recipient": {"channel": "email"}}, "recipient.address must be the email address"),
    ({**SUBSCRIBER, "recipient": {"channel": "email", "address": "marta at example"}}, "recipient.address is not an e-mail address"),
    ({**SUBSCRIBER, "recipient": {"channel": "email", "address": "m@" + "x" * 250 + ".es"}}, "recipient.address is not an e-mail address"),
    ({**SUBSCRIBER, "recipient": {"channel": "sms", "address": "600 11 22 33"}}, "recipient.address must be a phone number with its country code"),
    ({**SUBSCRIBER, "recipient": {"channel": "whatsapp", "address": "+34 6"}}, "recipient.address must be a phone number with its country code"),
    ({**SUBSCRIBER, "recipient": {"channel": "chat", "address": "short"}}, "recipient.address must be a chat session id"),
    ({**SUBSCRIBER, "recipient": {"channel": "sms", "address": "+34600112233", "name": "x"}}, "recipient: unknown fields name"),
])
def test_each_wrong_field_of_a_subscription_is_named(body, error):
    assert refusal(ir.subscriptions, body, at=AT).startswith(error)


def test_errors_do_not_quote_the_address_they_refuse():
    error = refusal(ir.subscriptions, {**SUBSCRIBER, "recipient": {"channel": "email", "address": "secret.person@nowhere"}}, at=AT)
    assert "secret.person" not in error


def test_an_unsubscription_becomes_subscription_removed_on_the_same_key():
    data = ir.unsubscription({"service": "fibre-madrid", "recipient": {"channel": "sms", "address": "+34 600 112 233"}}, at=AT)
    assert valid("subscription.removed", data) == {"service": "fibre-madrid", "recipient": {"channel": "sms", "address": "+34600112233"}, "at": AT}
    [added] = ir.subscriptions({**SUBSCRIBER, "recipient": {"channel": "sms", "address": "+34600112233"}}, at=AT)
    assert ir.subscription_key(data) == ir.subscription_key(added) == "fibre-madrid|sms:+34600112233"
    assert refusal(ir.unsubscription, {"service": "fibre-madrid"}, at=AT) == "recipient must be a JSON object"
    assert refusal(ir.unsubscription, {**SUBSCRIBER}, at=AT).startswith("unknown fields language")


def test_subscription_event_ids_are_stable_short_and_new_for_each_request_time():
    longest = {"service": "s" * 63, "recipient": {"channel": "email", "address": "a" * 64 + "@" + "b" * 185 + ".com"}, "at": AT}
    event_id = ir.subscription_event_id("subscription.removed", longest)
    assert event_id == ir.subscription_event_id("subscription.removed", dict(longest)) and len(event_id) <= 200
    assert event_id.startswith("subscription.removed." + "s" * 63 + ".")
    assert event_id != ir.subscription_event_id("subscription.removed", {**longest, "at": "2026-05-04T10:00:01.000Z"})
    assert event_id != ir.subscription_event_id("subscription.added", longest)


# The schemas of what the notifier's incident hops will emit

def test_incident_suspected_and_ticket_linked_have_schemas():
    valid("incident.suspected", {"suspicion_id": "skill.network.2026-05-04T10:00", "dimension": "skill", "value": "network",
                                 "ticket_ids": ["T-ABCDEFGH", "T-BCDEFGHI"], "count": 2, "window_minutes": 7.5,
                                 "first_at": AT, "detected_at": AT})
    valid("incident.ticket_linked", {"incident_id": INCIDENT_ID, "ticket_id": "T-ABCDEFGH",
                                     "recipient": {"channel": "chat", "address": "Q2hhdFNlc3Npb24tMTIz"}, "language": "es",
                                     "linked_at": AT})
    with pytest.raises(SchemaViolation, match="ticket_ids: fails minItems"):
        valid("incident.suspected", {"suspicion_id": "s", "dimension": "region", "value": "ES", "ticket_ids": [], "count": 1,
                                     "window_minutes": 5, "first_at": AT, "detected_at": AT})
    with pytest.raises(SchemaViolation, match="window_minutes: fails exclusiveMinimum"):
        valid("incident.suspected", {"suspicion_id": "s", "dimension": "region", "value": "ES", "ticket_ids": ["T-ABCDEFGH"],
                                     "count": 1, "window_minutes": 0, "first_at": AT, "detected_at": AT})
