"""Which ticket events call for a message to the customer, and what to send.

Request ids derive from the ticket and the reason, so a replayed ticket event asks
for the same message again and the notifier's delivery record drops it.
"""
from __future__ import annotations

from typing import Any

import phonenumbers

from services.notifier import incidents
from services.notifier.quiet_hours import timezone_for


def region_of(phone: str | None) -> str | None:
    """The ISO country of a customer's phone number: where an outage can reach them."""
    if not phone:
        return None
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone)) or None
    except phonenumbers.NumberParseException:
        return None


def remember_contact(created: dict[str, Any], default_timezone: str = "UTC") -> dict[str, Any]:
    """What the notifier keeps per ticket to reach its customer later, and to tell
    whether an outage concerns them (the skill comes with the classification)."""
    customer = created["customer"]
    contact = {
        "ticket_id": created["ticket_id"],
        "channel": created["channel"],
        "reply_to": created["reply_to"],
        "language": customer.get("language", "en"),
        "name": customer.get("name"),
        "region": region_of(customer.get("phone")),
        "timezone": timezone_for(created["reply_to"], customer.get("timezone"), default_timezone),
        "status": "open",
        "skill": None,
        "priority": None,
    }
    if "email" in created:  # what a threaded reply needs
        contact["thread"] = {
            "subject": created.get("subject"),
            "message_id": created["email"]["message_id"],
            "references": created["email"]["references"],
        }
    return contact


def request(ticket_id: str, request_id: str, reason: str, template: str, contact: dict[str, Any], **params: Any) -> dict[str, Any]:
    """A `notify.requested` to the ticket's customer, on their channel and in their
    language; mail also gets the thread it answers."""
    return {
        "request_id": request_id,
        "ticket_id": ticket_id,
        "reason": reason,
        "recipient": contact["reply_to"],
        "language": contact["language"],
        "priority": contact.get("priority"),
        "timezone": contact.get("timezone"),
        "template": template,
        "params": {"ticket_id": ticket_id, **params, **({"thread": contact["thread"]} if "thread" in contact else {})},
    }


def classified(contact: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return {**contact, "skill": data["skill"], "priority": data["priority"]}


def acknowledgement(classified: dict[str, Any], contact: dict[str, Any], incident: dict[str, Any] | None = None) -> dict[str, Any]:
    """That the message arrived, its ticket number and the wait; or, when the ticket is
    about a known outage, what is known about it."""
    ticket_id = classified["ticket_id"]
    if incident is not None:
        return request(ticket_id, f"{ticket_id}.ack", "acknowledgement", "acknowledgement_incident", contact,
                       **incidents.status_params(incident, contact["language"], contact.get("name")))
    return request(ticket_id, f"{ticket_id}.ack", "acknowledgement", "acknowledgement", contact, name=contact.get("name"),
                   wait_minutes=classified["estimated_wait_minutes"], priority=classified["priority"])


def linked(incident: dict[str, Any], contact: dict[str, Any], at: str) -> dict[str, Any]:
    """The `incident.ticket_linked` data: the ticket's customer now hears of the incident."""
    linked = {"incident_id": incident["incident_id"], "update_id": incidents.latest(incident)["update_id"],
              "ticket_id": contact["ticket_id"], "recipient": contact["reply_to"], "language": contact["language"], "linked_at": at}
    for field in ("name", "timezone"):  # so that the updates greet them and state times as their acknowledgement did
        if contact.get(field):
            linked[field] = contact[field]
    return linked


def agent_reply(replied: dict[str, Any], contact: dict[str, Any]) -> dict[str, Any]:
    """An agent's answer, to deliver on the customer's channel (in the thread, for mail)."""
    ticket_id = replied["ticket_id"]
    return request(ticket_id, f"{ticket_id}.reply.{replied['reply_id']}", "reply", "agent_reply", contact,
                   text=replied["text"], agent_name=replied["agent_name"])
