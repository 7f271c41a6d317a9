"""Incidents as data: what ops said, who is affected, and the notice each one gets.

An incident names an affected service and, optionally, a region (ISO country code)
and a skill. A customer is affected when they have an open ticket that matches (its
skill, and its region as read from the customer's phone number), when they
subscribed to that service (and region), or when they were told about the incident
before: everyone who heard of it hears of each update and of its resolution.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterable

from deskstream.recipients import recipient_key

ACTIVE, RESOLVED = "active", "resolved"
MAX_UPDATES_KEPT = 50
KINDS = {"incident.declared": "declared", "incident.updated": "updated", "incident.resolved": "resolved"}


def fold(incident: dict[str, Any] | None, event_type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The incident after one of its events; None when the event changes nothing
    (an update of an unknown or resolved incident, a replayed update)."""
    kind = KINDS[event_type]
    if kind == "declared":
        if incident is not None:
            return None
        incident = {
            "incident_id": data["incident_id"],
            "service": data["service"],
            "region": data.get("region"),
            "skill": data.get("skill"),
            "status": ACTIVE,
            "declared_at": data["at"],
            "resolved_at": None,
            "updates": [],
        }
    elif incident is None or incident["status"] != ACTIVE or any(u["update_id"] == data["update_id"] for u in incident["updates"]):
        return None
    update = {
        "update_id": data["update_id"],
        "kind": kind,
        "message": data["message"],
        "expected_fix_at": data.get("expected_fix_at", incident.get("expected_fix_at")),
        "by": data["by"],
        "at": data["at"],
    }
    return {
        **incident,
        "status": RESOLVED if kind == "resolved" else ACTIVE,
        "resolved_at": data["at"] if kind == "resolved" else None,
        "message": data["message"],
        "expected_fix_at": None if kind == "resolved" else update["expected_fix_at"],
        "updates": [*incident["updates"], update][-MAX_UPDATES_KEPT:],
        # the notice of this update is still to reach everyone: see fanout.py
        "fanout": {"update_id": data["update_id"], "done": False},
    }


def latest(incident: dict[str, Any]) -> dict[str, Any]:
    return incident["updates"][-1]


def affects(incident: dict[str, Any], *, skill: str | None, region: str | None) -> bool:
    """Whether a ticket of this skill from this region is about the incident. Tickets
    say nothing of services: an incident that names neither a skill nor a region is for
    its service's subscribers only."""
    if not incident.get("skill") and not incident.get("region"):
        return False
    if incident.get("skill") and incident["skill"] != skill:
        return False
    return not incident.get("region") or incident["region"] == region


def active_match(incidents: Iterable[dict[str, Any]], *, skill: str | None, region: str | None) -> dict[str, Any] | None:
    """The most recently declared active incident a new ticket is about, if any."""
    matching = [i for i in incidents if i.get("status") == ACTIVE and affects(i, skill=skill, region=region)]
    return max(matching, key=lambda i: i["declared_at"], default=None)


def subscribed(incident: dict[str, Any], subscription: dict[str, Any]) -> bool:
    if subscription["service"] != incident["service"]:
        return False
    return not subscription.get("region") or not incident.get("region") or subscription["region"] == incident["region"]


def member(recipient: dict[str, str], language: str, name: str | None = None, timezone: str | None = None,
           ticket_id: str | None = None) -> dict[str, Any]:
    return {"recipient": recipient, "language": language, "name": name, "timezone": timezone, "ticket_id": ticket_id}


def audience(incident: dict[str, Any], contacts: Iterable[dict[str, Any]], subscriptions: Iterable[dict[str, Any]],
             told: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everyone to tell about the incident's latest update, each recipient once: those
    told before, the customers of matching open tickets, and the subscribers."""
    found: dict[str, dict[str, Any]] = {}
    for row in told:
        found.setdefault(recipient_key(row["recipient"]), row)
    for contact in contacts:
        if contact.get("status", "open") == "open" and contact.get("skill") and affects(
                incident, skill=contact.get("skill"), region=contact.get("region")):
            found.setdefault(recipient_key(contact["reply_to"]), member(
                contact["reply_to"], contact["language"], contact.get("name"), contact.get("timezone"), contact.get("ticket_id")))
    for subscription in subscriptions:
        if subscribed(incident, subscription):
            found.setdefault(recipient_key(subscription["recipient"]), member(
                subscription["recipient"], subscription["language"], subscription.get("name"), subscription.get("timezone")))
    return list(found.values())


def recipient_hash(recipient: dict[str, str]) -> str:
    """A short stable name for a recipient in ids (addresses are long, and personal)."""
    return hashlib.sha256(recipient_key(recipient).encode()).hexdigest()[:16]


def audience_key(incident_id: str, recipient: dict[str, str]) -> str:
    return f"{incident_id}|{recipient_hash(recipient)}"


def notice(incident: dict[str, Any], who: dict[str, Any]) -> dict[str, Any]:
    """The `notify.requested` data of the incident's latest update for one recipient.
    Its slot is the incident and recipient: a newer update replaces one still waiting."""
    update = latest(incident)
    tag = recipient_hash(who["recipient"])
    request = {
        "request_id": f"{incident['incident_id']}.{update['update_id']}.{tag}",
        "incident_id": incident["incident_id"],
        "reason": "incident",
        "slot": f"{incident['incident_id']}.{tag}",
        "recipient": who["recipient"],
        "language": who["language"],
        "timezone": who.get("timezone"),
        "template": f"incident_{update['kind']}",
        "params": status_params(incident, who["language"], who.get("name")),
    }
    if who.get("ticket_id"):
        request["ticket_id"] = who["ticket_id"]
    if not who.get("timezone"):
        del request["timezone"]
    return request


def status_params(incident: dict[str, Any], language: str, name: str | None) -> dict[str, Any]:
    """What a message about the incident says: the service, the region, the ops message
    in the customer's language (or the one there is) and the expected fix time."""
    message = incident["message"]
    return {
        "name": name,
        "incident_id": incident["incident_id"],
        "service": incident["service"],
        "region": incident.get("region"),
        "message": message.get(language) or next(iter(message.values())),
        "expected_fix_at": incident.get("expected_fix_at"),
    }
