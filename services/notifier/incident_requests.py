"""The incident API's request bodies, checked and turned into event data.

Pure functions (no aiohttp, no Kafka), so every rule is a unit test. Bodies come from
ops (incidents) and from whatever system feeds the subscriptions (a CRM export): both
are untrusted text that will end up in customers' SMS and e-mail, so each field is
checked against the event schema's own limits here, with an error that names the
field, rather than failing later as a SchemaViolation that says less. Text loses its
control characters (a stray escape sequence in an SMS, a bidi override that reverses
what a phone shows), except newlines in messages.

    declared(body, ...)        POST /api/incidents                   -> incident.declared
    updated(body, ...)         POST /api/incidents/{id}/updates      -> incident.updated
    resolved(body, ...)        POST /api/incidents/{id}/resolve      -> incident.resolved
    subscriptions(body, ...)   POST /api/subscriptions (one or many) -> subscription.added each
    unsubscription(body, ...)  DELETE /api/subscriptions             -> subscription.removed
"""
from __future__ import annotations

import re
import secrets
import unicodedata
from base64 import b32encode
from datetime import datetime
from typing import Any, Mapping

from deskstream.events import stable_id, timestamp
from deskstream.phones import InvalidPhoneNumber, e164

MAX_MESSAGE_CHARS = 1000
MAX_NAME_CHARS = 200
MAX_TIMEZONE_CHARS = 64
MAX_SUBSCRIPTIONS = 5000
LANGUAGES = ("en", "es")
SKILLS = ("network", "billing", "account", "hardware", "software", "general")
CHANNELS = ("email", "sms", "whatsapp", "chat")
PHONE_CHANNELS = ("sms", "whatsapp")

INCIDENT_ID = re.compile(r"^INC-[A-Z2-7]{8}$")
UPDATE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SERVICE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
REGION = re.compile(r"^[A-Z]{2}$")
TIMEZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
# The same simple test intake applies to a chat customer's address: one @, no spaces,
# a dot in the domain. Whether the mailbox exists only a send can tell.
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")
# Chat addresses are intake's session ids (services.intake.chat issues them; a service
# does not import another's internals, so the form is repeated here).
CHAT_SESSION = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_EMAIL_CHARS = 254

_DECLARE_FIELDS = frozenset({"service", "region", "skill", "message", "expected_fix_at"})
_UPDATE_FIELDS = frozenset({"message", "expected_fix_at"})
_RESOLVE_FIELDS = frozenset({"message"})
_SUBSCRIPTION_FIELDS = frozenset({"service", "region", "recipient", "language", "name", "timezone"})
_UNSUBSCRIPTION_FIELDS = frozenset({"service", "recipient"})
# Bidirectional embeddings, overrides and isolates: format characters, not control
# characters, but they make a phone show text in another order than it was written.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class InvalidIncidentRequest(ValueError):
    """A request body the API refuses with 400; the message says which field and why,
    and never quotes the offending value (it may be a customer's address)."""

    status = 400


class IncidentClosed(InvalidIncidentRequest):
    """An update or a resolution for an incident that is already resolved (409): a
    resolved incident's customers have had their last word on it."""

    status = 409


def new_incident_id(retry_key: str | None = None) -> str:
    """`INC-` and 8 base32 characters (40 random bits). With `retry_key` (the caller's
    Idempotency-Key, with who they are), the same key gives the same id, so a declare
    retried after a 503 that was stored after all is one incident, not two."""
    if retry_key is not None:
        return "INC-" + stable_id("incident", retry_key, length=8).upper()
    return "INC-" + b32encode(secrets.token_bytes(5)).decode()


def new_update_id(retry_key: str | None = None) -> str:
    """12 URL-safe characters naming one message of an incident (stable for a retry_key)."""
    if retry_key is not None:
        return stable_id("incident-update", retry_key, length=12)
    return secrets.token_urlsafe(9)


def declared(body: Mapping[str, Any], *, by: str, at: str, incident_id: str, update_id: str) -> dict[str, Any]:
    """`incident.declared` data from a POST /api/incidents body:
    `{"service", "region"?, "skill"?, "message": {"en"?, "es"?}, "expected_fix_at"?}`."""
    body = _object(body, "the body", _DECLARE_FIELDS)
    skill = body.get("skill")
    if skill is not None and skill not in SKILLS:
        raise InvalidIncidentRequest(f"skill must be one of {', '.join(SKILLS)}, or null")
    return {
        "incident_id": _incident_id(incident_id),
        "update_id": _update_id(update_id),
        "service": _service(body.get("service")),
        "region": _region(body.get("region")),
        "skill": skill,
        "message": _message(body.get("message")),
        "expected_fix_at": _fix_at(body.get("expected_fix_at"), at),
        "by": _by(by),
        "at": at,
    }


def updated(body: Mapping[str, Any], *, incident: Mapping[str, Any], by: str, at: str, update_id: str) -> dict[str, Any]:
    """`incident.updated` data from a POST /api/incidents/{id}/updates body:
    `{"message", "expected_fix_at"?}`. Without `expected_fix_at` the incident's current
    estimate carries over (the event states the estimate as of this update); an explicit
    null withdraws it."""
    _active(incident)
    body = _object(body, "the body", _UPDATE_FIELDS)
    fix_at = _fix_at(body["expected_fix_at"], at) if "expected_fix_at" in body else incident.get("expected_fix_at")
    return {
        "incident_id": _incident_id(incident.get("incident_id")),
        "update_id": _update_id(update_id),
        "message": _message(body.get("message")),
        "expected_fix_at": fix_at,
        "by": _by(by),
        "at": at,
    }


def resolved(body: Mapping[str, Any], *, incident: Mapping[str, Any], by: str, at: str, update_id: str) -> dict[str, Any]:
    """`incident.resolved` data from a POST /api/incidents/{id}/resolve body: `{"message"}`."""
    _active(incident)
    body = _object(body, "the body", _RESOLVE_FIELDS)
    return {
        "incident_id": _incident_id(incident.get("incident_id")),
        "update_id": _update_id(update_id),
        "message": _message(body.get("message")),
        "by": _by(by),
        "at": at,
    }


def subscriptions(body: Mapping[str, Any], *, at: str) -> list[dict[str, Any]]:
    """`subscription.added` data, one per subscription: the body is one subscription
    `{"service", "region"?, "recipient": {"channel", "address"}, "language", "name"?,
    "timezone"?}` or `{"subscriptions": [...]}` with 1 to 5000 of them. The whole body
    is refused if one is wrong (the error names its index), so that a fixed body can
    simply be sent again; a recipient twice for one service is refused too, as the
    second would silently replace the first."""
    if not isinstance(body, Mapping):
        raise InvalidIncidentRequest("the body must be a JSON object")
    if "subscriptions" not in body:
        return [_subscription(body, "the body", at)]
    _object(body, "the body", frozenset({"subscriptions"}))
    items = body["subscriptions"]
    if not isinstance(items, list) or not items:
        raise InvalidIncidentRequest(f"subscriptions must be a list of 1 to {MAX_SUBSCRIPTIONS} subscriptions")
    if len(items) > MAX_SUBSCRIPTIONS:
        raise InvalidIncidentRequest(f"at most {MAX_SUBSCRIPTIONS} subscriptions per request; split the list")
    added: list[dict[str, Any]] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        data = _subscription(item, f"subscriptions[{index}]", at)
        key = subscription_key(data)
        if key in first_seen:
            raise InvalidIncidentRequest(
                f"subscriptions[{index}] has the service and recipient of subscriptions[{first_seen[key]}]")
        first_seen[key] = index
        added.append(data)
    return added


def unsubscription(body: Mapping[str, Any], *, at: str) -> dict[str, Any]:
    """`subscription.removed` data from a DELETE /api/subscriptions body:
    `{"service", "recipient": {"channel", "address"}}`."""
    body = _object(body, "the body", _UNSUBSCRIPTION_FIELDS)
    return {"service": _service(body.get("service")), "recipient": _recipient(body.get("recipient"), "recipient"), "at": at}


def subscription_key(data: Mapping[str, Any]) -> str:
    """The Kafka key of a subscription's events, `<service>|<channel>:<address>`: every
    change to one subscription lands on one partition, in order."""
    recipient = data["recipient"]
    return f"{data['service']}|{recipient['channel']}:{recipient['address']}"


def subscription_event_id(event_type: str, data: Mapping[str, Any]) -> str:
    """`<event type>.<service>.<26 base32 characters>` (at most 109 characters, within
    CloudEvents' 200): derived from the key and the request time, so one request's event
    is always the same id, while a later subscribe after an unsubscribe is a new one."""
    recipient = data["recipient"]
    digest = stable_id(event_type, data["service"], recipient["channel"], recipient["address"], data["at"])
    return f"{event_type}.{data['service']}.{digest}"


def clean_text(value: str, *, keep_newlines: bool) -> str:
    """`value` without control characters (tab becomes a space; newline stays in
    multi-line text, CR LF becomes LF) and bidi controls, trimmed."""
    value = value.replace("\r\n", "\n").replace("\t", " ")
    kept = (
        char for char in value
        if (char == "\n" and keep_newlines)
        or (char not in _BIDI_CONTROLS and unicodedata.category(char) != "Cc")
    )
    return "".join(kept).strip()


def _object(value: Any, what: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidIncidentRequest(f"{what} must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        prefix = "" if what == "the body" else f"{what}: "
        named = ", ".join(name[:40] for name in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise InvalidIncidentRequest(f"{prefix}unknown fields {named}; allowed: {', '.join(sorted(allowed))}")
    return value


def _active(incident: Mapping[str, Any]) -> None:
    status = incident.get("status")
    if status != "active":
        raise IncidentClosed(f"incident {incident.get('incident_id')} is {status or 'not active'}: it takes no more updates")


def _incident_id(value: Any) -> str:
    if not isinstance(value, str) or not INCIDENT_ID.match(value):
        raise InvalidIncidentRequest("incident_id must be INC- and 8 characters of A-Z and 2-7")
    return value


def _update_id(value: Any) -> str:
    if not isinstance(value, str) or not UPDATE_ID.match(value):
        raise InvalidIncidentRequest("update_id must be 1 to 64 letters, digits, _ or -")
    return value


def _by(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 100:
        raise InvalidIncidentRequest("by must be 1 to 100 characters")
    return value


def _service(value: Any, where: str = "service") -> str:
    if not isinstance(value, str) or not SERVICE.match(value):
        raise InvalidIncidentRequest(
            f"{where} must be 1 to 63 lower-case letters, digits or -, starting with a letter or digit (such as fibre-madrid)")
    return value


def _region(value: Any, where: str = "region") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not REGION.match(value):
        raise InvalidIncidentRequest(f"{where} must be an ISO 3166 alpha-2 country code in capitals (such as ES), or null")
    return value


def _message(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidIncidentRequest('message must be an object with the text by language: {"en": "...", "es": "..."}')
    unknown = set(value) - set(LANGUAGES)
    if unknown:
        raise InvalidIncidentRequest(f"message languages are {' and '.join(LANGUAGES)} only")
    message = {}
    for language in LANGUAGES:
        if language not in value:
            continue
        text = value[language]
        cleaned = clean_text(text, keep_newlines=True) if isinstance(text, str) else ""
        if not 1 <= len(cleaned) <= MAX_MESSAGE_CHARS:
            raise InvalidIncidentRequest(f"message.{language} must be text of 1 to {MAX_MESSAGE_CHARS} characters")
        message[language] = cleaned
    return message


def _fix_at(value: Any, at: str) -> str | None:
    """An ISO 8601 time with its offset, as UTC; not before `at` (a time in the past is
    nearly always a local time written without its offset, or the wrong day)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidIncidentRequest("expected_fix_at must be an ISO 8601 time with its offset (2026-05-04T18:00:00+02:00), or null")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidIncidentRequest("expected_fix_at is not an ISO 8601 time (2026-05-04T18:00:00+02:00)") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidIncidentRequest("expected_fix_at needs its offset, Z or +hh:mm: the time alone is ambiguous")
    if moment < datetime.fromisoformat(at):
        raise InvalidIncidentRequest("expected_fix_at is in the past")
    return timestamp(moment)


def _subscription(value: Any, where: str, at: str) -> dict[str, Any]:
    item = _object(value, where, _SUBSCRIPTION_FIELDS)
    prefix = "" if where == "the body" else f"{where}."
    language = item.get("language")
    if language not in LANGUAGES:
        raise InvalidIncidentRequest(f"{prefix}language must be one of {', '.join(LANGUAGES)}")
    data: dict[str, Any] = {
        "service": _service(item.get("service"), f"{prefix}service"),
        "region": _region(item.get("region"), f"{prefix}region"),
        "recipient": _recipient(item.get("recipient"), f"{prefix}recipient"),
        "language": language,
    }
    if item.get("name") is not None:  # an empty name (a gap in a CRM export) is no name
        if not isinstance(item["name"], str):
            raise InvalidIncidentRequest(f"{prefix}name must be text of at most {MAX_NAME_CHARS} characters")
        name = clean_text(item["name"], keep_newlines=False)
        if len(name) > MAX_NAME_CHARS:
            raise InvalidIncidentRequest(f"{prefix}name must be text of at most {MAX_NAME_CHARS} characters")
        if name:
            data["name"] = name
    if item.get("timezone") is not None:
        zone = item["timezone"]
        if not isinstance(zone, str) or len(zone) > MAX_TIMEZONE_CHARS or not TIMEZONE.match(zone):
            raise InvalidIncidentRequest(f"{prefix}timezone must be an IANA time zone name such as Europe/Madrid, or left out")
        data["timezone"] = zone
    data["at"] = at
    return data


def _recipient(value: Any, where: str) -> dict[str, str]:
    """A `{"channel", "address"}` in the form the notifier keys recipients by: e-mail in
    lower case, phone numbers (SMS, WhatsApp) in E.164 with their country code."""
    recipient = _object(value, where, frozenset({"channel", "address"}))
    channel, address = recipient.get("channel"), recipient.get("address")
    if channel not in CHANNELS:
        raise InvalidIncidentRequest(f"{where}.channel must be one of {', '.join(CHANNELS)}")
    if not isinstance(address, str) or not address.strip():
        raise InvalidIncidentRequest(f"{where}.address must be the {channel} address")
    address = address.strip()
    if channel == "email":
        if len(address) > MAX_EMAIL_CHARS or not EMAIL.match(address):
            raise InvalidIncidentRequest(f"{where}.address is not an e-mail address")
        address = address.lower()
    elif channel in PHONE_CHANNELS:
        try:
            address = e164(address.removeprefix("whatsapp:"))
        except InvalidPhoneNumber:
            raise InvalidIncidentRequest(f"{where}.address must be a phone number with its country code (+34 600 11 22 33)") from None
    elif not CHAT_SESSION.match(address):
        raise InvalidIncidentRequest(f"{where}.address must be a chat session id")
    return {"channel": channel, "address": address}
