"""Which ticket events call for a message to the customer, and what to send.

Request ids derive from the ticket and the reason, so a replayed ticket event asks
for the same message again and the notifier's delivery record drops it.
"""
from __future__ import annotations

from typing import Any


def remember_contact(created: dict[str, Any]) -> dict[str, Any]:
    """What the notifier keeps per ticket to reach its customer later."""
    customer = created["customer"]
    contact = {
        "channel": created["channel"],
        "reply_to": created["reply_to"],
        "language": customer.get("language", "en"),
        "name": customer.get("name"),
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
        "template": template,
        "params": {"ticket_id": ticket_id, **params, **({"thread": contact["thread"]} if "thread" in contact else {})},
    }


def acknowledgement(classified: dict[str, Any], contact: dict[str, Any]) -> dict[str, Any]:
    """That the message arrived, its ticket number and the wait."""
    ticket_id = classified["ticket_id"]
    return request(ticket_id, f"{ticket_id}.ack", "acknowledgement", "acknowledgement", contact, name=contact.get("name"),
                   wait_minutes=classified["estimated_wait_minutes"], priority=classified["priority"])


def agent_reply(replied: dict[str, Any], contact: dict[str, Any]) -> dict[str, Any]:
    """An agent's answer, to deliver on the customer's channel (in the thread, for mail)."""
    ticket_id = replied["ticket_id"]
    return request(ticket_id, f"{ticket_id}.reply.{replied['reply_id']}", "reply", "agent_reply", contact,
                   text=replied["text"], agent_name=replied["agent_name"])
