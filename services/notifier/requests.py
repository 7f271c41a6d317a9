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


def acknowledgement(classified: dict[str, Any], contact: dict[str, Any]) -> dict[str, Any]:
    ticket_id = classified["ticket_id"]
    return {
        "request_id": f"{ticket_id}.ack",
        "ticket_id": ticket_id,
        "reason": "acknowledgement",
        "recipient": contact["reply_to"],
        "language": contact["language"],
        "template": "acknowledgement",
        "params": {
            "ticket_id": ticket_id,
            "name": contact.get("name"),
            "wait_minutes": classified["estimated_wait_minutes"],
            "priority": classified["priority"],
            **({"thread": contact["thread"]} if "thread" in contact else {}),
        },
    }


def agent_reply(replied: dict[str, Any], contact: dict[str, Any]) -> dict[str, Any]:
    """An agent's answer, to deliver on the customer's channel (in the thread, for mail)."""
    ticket_id = replied["ticket_id"]
    return {
        "request_id": f"{ticket_id}.reply.{replied['reply_id']}",
        "ticket_id": ticket_id,
        "reason": "reply",
        "recipient": contact["reply_to"],
        "language": contact["language"],
        "template": "agent_reply",
        "params": {
            "ticket_id": ticket_id,
            "text": replied["text"],
            "agent_name": replied["agent_name"],
            **({"thread": contact["thread"]} if "thread" in contact else {}),
        },
    }
