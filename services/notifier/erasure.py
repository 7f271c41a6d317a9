"""The notifier's part of a customer's erasure (deskstream/erasure.py).

On tickets.events (`customer.erased`) the notifier deletes its contact record of each
of the customer's tickets (name, reply address, mail thread), and passes the erasure on
where its other tables are: to every partition of notify.requests (deliveries not yet
sent, with their text and recipient, and consent records) and of incidents.events
(incident audiences and subscriptions), since those are keyed by recipient and incident
rather than by ticket; and to the outbox of each chat session it held, on chat.outbound.
A message still pending for the customer is never sent. Records of past deliveries
(`sent`, `failed`: state and time, keyed by request id) carry nothing personal and stay.

Plain functions of the rows; the hops in services/notifier/app.py apply them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from deskstream.erasure import Erasure


@dataclass(slots=True)
class Contacts:
    ticket_ids: list[str] = field(default_factory=list)
    chat_sessions: set[str] = field(default_factory=set)


def contacts_to_delete(rows: Iterable[tuple[str, dict[str, Any]]], erasure: Erasure) -> Contacts:
    found = Contacts()
    for ticket_id, contact in rows:
        if ticket_id in erasure.ticket_ids or erasure.covers_recipient(contact.get("reply_to")):
            found.ticket_ids.append(ticket_id)
            if contact.get("reply_to", {}).get("channel") == "chat":
                found.chat_sessions.add(contact["reply_to"]["address"])
    return found


def request_is_theirs(request: dict[str, Any], erasure: Erasure) -> bool:
    return request.get("ticket_id") in erasure.ticket_ids or erasure.covers_recipient(request.get("recipient"))


def deliveries_to_delete(rows: Iterable[tuple[str, dict[str, Any]]], erasure: Erasure) -> list[str]:
    """Deliveries that still hold a request (pending, or being sent) for the customer,
    and the slot records that point at them."""
    rows = list(rows)
    gone = {key for key, record in rows if "request" in record and request_is_theirs(record["request"], erasure)}
    slots = {key for key, record in rows if key.startswith("slot:") and record.get("request_id") in gone}
    return sorted(gone | slots)


def consents_to_delete(keys: Iterable[str], erasure: Erasure) -> list[str]:
    """Consent records (keyed by `<channel>:<address>`) of the customer's numbers."""
    return [key for key in keys if erasure.covers_recipient_key(key)]


def listeners_to_delete(rows: Iterable[tuple[str, dict[str, Any]]], erasure: Erasure) -> list[str]:
    """Incident audience entries and subscriptions (each with a recipient, audience
    entries with the ticket that brought them) that are the customer's."""
    return [key for key, row in rows
            if row.get("ticket_id") in erasure.ticket_ids or erasure.covers_recipient(row.get("recipient"))]
