"""Each ticket's conversation as the console shows it: what the customer wrote, on
which channel, what agents answered and noted, and what happened to the ticket, in
one timeline; and the customer's other tickets, whatever channel they came by.

Folded from tickets.events, one event at a time, into a record per ticket (the
router's `conversations` table): a pure function, so that the fold is tested without
a broker and a replayed event (same id) changes nothing.
"""
from __future__ import annotations

from typing import Any, Iterable

Conversation = dict[str, Any]

# Enough for any real conversation; a thread that grows past it keeps its first
# message and the latest ones, so the record (and its changelog entry) stays bounded.
MAX_ENTRIES = 400

# What each event of the ticket's life says, beyond the customer's and agents' words.
_HAPPENINGS = {
    "ticket.assigned": ("assigned", ("agent_id", "agent_name", "assigned_by", "reason")),
    "ticket.requeued": ("requeued", ("agent_id", "reason")),
    "ticket.escalated": ("escalated", ("from_tier", "to_tier", "reason", "escalated_by")),
    "ticket.sla_breached": ("sla_breached", ("target", "due_at")),
    "ticket.resolved": ("resolved", ("resolved_by", "note")),
    "ticket.reopened": ("reopened", ("reopened_by", "reason")),
}


def record(conversation: Conversation | None, event_type: str, event_id: str, time: str, data: dict[str, Any]) -> Conversation | None:
    """The conversation after one event of tickets.events; None if the event changes
    nothing (another type, a repeat, or a ticket this worker never saw open)."""
    if event_type == "ticket.created":
        if conversation is not None:
            return None
        return {
            "ticket_id": data["ticket_id"],
            "channel": data["channel"],
            "subject": data.get("subject") or "",
            "customer": dict(data["customer"]),
            "opened_at": data["received_at"],
            "status": "open",
            "entries": [customer_entry(event_id, data)],
        }
    if conversation is None or any(entry["id"] == event_id for entry in conversation["entries"]):
        return None
    if event_type == "ticket.message_received":
        return _append(conversation, customer_entry(event_id, data), customer={**conversation["customer"], **data["customer"]})
    if event_type == "ticket.reply_sent":
        entry = {"id": event_id, "kind": "reply", "at": data["sent_at"], "agent_id": data["agent_id"],
                 "agent_name": data["agent_name"], "text": data["text"]}
        return _append(conversation, entry)
    if event_type == "ticket.note_added":
        entry = {"id": event_id, "kind": "note", "at": data["added_at"], "agent_id": data["agent_id"],
                 "agent_name": data["agent_name"], "text": data["text"]}
        return _append(conversation, entry)
    if event_type == "ticket.classified":
        signals = data.get("signals") or {}
        classified = {**conversation, "skill": data["skill"], "priority": data["priority"], "tier": data["tier"],
                      "hint": signals.get("customer_hint", "unknown"), "repeat_count": signals.get("repeat_count", 0)}
        return None if classified == conversation else classified
    if event_type in _HAPPENINGS:
        what, fields = _HAPPENINGS[event_type]
        entry = {"id": event_id, "kind": "event", "what": what, "at": time, **{k: data[k] for k in fields if data.get(k) is not None}}
        status = {"resolved": "resolved", "reopened": "open"}.get(what, conversation["status"])
        return _append(conversation, entry, status=status)
    return None


def customer_entry(event_id: str, data: dict[str, Any]) -> dict[str, Any]:
    attachments = [{"filename": a.get("filename") or "", "content_type": a["content_type"], "size": a["size"], "sha256": a["sha256"]}
                   for a in (data.get("email") or {}).get("attachments", [])]
    media = [{"url": m["url"], "content_type": m["content_type"]} for m in (data.get("sms") or {}).get("media", [])]
    return {"id": event_id, "kind": "customer", "at": data["received_at"], "channel": data["channel"],
            "name": data["customer"].get("name") or "", "text": data["body_text"],
            **({"attachments": attachments} if attachments else {}), **({"media": media} if media else {})}


def _append(conversation: Conversation, entry: dict[str, Any], **changes: Any) -> Conversation:
    entries = [*conversation["entries"], entry]
    if len(entries) > MAX_ENTRIES:
        entries = [entries[0], *entries[-(MAX_ENTRIES - 1):]]
    return {**conversation, **changes, "entries": entries}


def identities(customer: dict[str, Any]) -> set[str]:
    """What makes two contacts the same person: the customer id intake gave, and the
    e-mail address or phone number they wrote from or left."""
    found = {f"id:{customer['id']}"}
    if customer.get("email"):
        found.add("email:" + str(customer["email"]).strip().lower())
    if customer.get("phone"):
        found.add("phone:" + "".join(ch for ch in str(customer["phone"]) if ch.isdigit() or ch == "+"))
    return found


def customer_tickets(conversations: Iterable[Conversation | None], conversation: Conversation) -> list[Conversation]:
    """The customer's tickets, this one included, oldest first: every conversation that
    shares an id, an e-mail address or a phone number with this one's customer, so
    that a customer who wrote by e-mail and then by SMS (with the number on file from a
    chat) is one history."""
    mine = identities(conversation["customer"])
    found = [c for c in conversations if c and identities(c["customer"]) & mine]
    return sorted(found, key=lambda c: (c["opened_at"], c["ticket_id"]))


def timeline(tickets: Iterable[Conversation]) -> list[dict[str, Any]]:
    """Every entry of these tickets in time order, each marked with its ticket."""
    merged = [{**entry, "ticket_id": c["ticket_id"]} for c in tickets for entry in c["entries"]]
    return sorted(merged, key=lambda entry: entry["at"])


def summary(conversation: Conversation) -> dict[str, Any]:
    """A ticket in the customer's history: what it was about and how it went."""
    return {key: conversation.get(key) for key in ("ticket_id", "channel", "subject", "opened_at", "status", "skill", "priority")}
