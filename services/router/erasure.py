"""The router's part of a customer's erasure (deskstream/erasure.py): the conversations
agents read (names, addresses, phone numbers, every word), and the dispatcher's record
of the customer's tickets and history, are deleted (tombstones in their changelogs).

Deleting the dispatcher's ticket frees its agent's place (loads are counted from the
open tickets), and the console no longer lists it. Plain functions of the rows; the
hops in services/router/app.py apply what they return.
"""
from __future__ import annotations

from typing import Any, Iterable

from deskstream.erasure import Erasure


def conversation_is_theirs(ticket_id: str, conversation: dict[str, Any], erasure: Erasure) -> bool:
    return ticket_id in erasure.ticket_ids or erasure.covers_customer(conversation.get("customer"))


def conversations_to_delete(rows: Iterable[tuple[str, dict[str, Any]]], erasure: Erasure) -> list[str]:
    return [ticket_id for ticket_id, conversation in rows if conversation_is_theirs(ticket_id, conversation, erasure)]


def dispatcher_rows_to_delete(tickets: Iterable[tuple[str, dict[str, Any]]], customers: Iterable[tuple[str, dict[str, Any]]],
                              erasure: Erasure) -> tuple[list[str], list[str]]:
    """(ticket ids, customer ids) of the dispatcher's tables that are the customer's:
    tickets by id or by their customer id, histories by customer id or by a ticket."""
    ticket_keys = [key for key, ticket in tickets
                   if key in erasure.ticket_ids or ticket.get("customer_id") in erasure.customer_ids]
    gone = erasure.ticket_ids | set(ticket_keys)
    customer_keys = [key for key, history in customers
                     if key in erasure.customer_ids or any(entry[1] in gone for entry in history.get("tickets", []))]
    return ticket_keys, customer_keys
