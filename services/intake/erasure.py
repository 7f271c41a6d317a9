"""Intake's part of a customer's erasure (deskstream/erasure.py): the customer's threads
go, with the e-mail attachments stored for them, and what was found (their tickets)
goes on to tickets.events so that every service holding those tickets forgets them;
a chat session's outbox goes when the notifier names the session.

The matching is plain functions of the rows; the hops in services/intake/app.py call
`erase_threads_in` and `erase_outbox_in`, which read and write the partition's table.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from deskstream.erasure import Erasure, event_id
from deskstream.topics import TICKETS_EVENTS

from services.intake.attachments import AttachmentStore

if TYPE_CHECKING:  # the shells' types; the matching needs no Kafka
    from deskstream.pipeline import Pipeline
    from deskstream.processor import Step

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Found:
    """The rows of one partition's threads table that belong to the erased customer."""

    thread_keys: list[str] = field(default_factory=list)
    ticket_ids: set[str] = field(default_factory=set)
    customer_ids: set[str] = field(default_factory=set)
    attachments: set[str] = field(default_factory=set)  # to delete: no other thread here holds them


def thread_is_theirs(key: str, thread: dict[str, Any], erasure: Erasure) -> bool:
    """A thread is the customer's if its customer is (id, e-mail address, phone number),
    or if it is one of the tickets or chat sessions the erasure has found."""
    return (erasure.covers_customer(thread.get("customer"))
            or thread.get("ticket_id") in erasure.ticket_ids
            or key in erasure.chat_sessions)


def find_threads(rows: Iterable[tuple[str, dict[str, Any]]], erasure: Erasure) -> Found:
    found = Found()
    kept_attachments: set[str] = set()
    mine: set[str] = set()
    for key, thread in rows:
        if not thread_is_theirs(key, thread, erasure):
            kept_attachments.update(thread.get("attachments", ()))
            continue
        found.thread_keys.append(key)
        if thread.get("ticket_id"):
            found.ticket_ids.add(thread["ticket_id"])
        if (thread.get("customer") or {}).get("id"):
            found.customer_ids.add(thread["customer"]["id"])
        mine.update(thread.get("attachments", ()))
    # The store is content-addressed: a file another customer sent too stays (as far as
    # this partition knows; README, "Erasure and retention").
    found.attachments = mine - kept_attachments
    return found


def outbox_is_theirs(session_id: str, outbox: list[dict[str, Any]] | None, erasure: Erasure) -> bool:
    """A chat outbox is the customer's if the erasure names its session, or if a message
    in it is about one of the customer's tickets."""
    return session_id in erasure.chat_sessions or any(m.get("ticket_id") in erasure.ticket_ids for m in outbox or [])


def erase_threads_in(step: "Step", pipeline: "Pipeline", attachments: AttachmentStore, erasure: Erasure) -> Found:
    """The hop's work for `erasure.requested`: delete the customer's threads (tombstones
    in the changelog, in this transaction), their attachments' bytes, and tell
    tickets.events which tickets were theirs. The files go before the transaction
    commits: if it aborts the threads are still there and the erasure, handled again,
    deletes nothing twice; the other order could leave files nobody can find."""
    threads = step.table("threads")
    found = find_threads(threads.items(), erasure)
    for key in found.thread_keys:
        del threads[key]
    for sha256 in sorted(found.attachments):
        attachments.delete(sha256)
    if found.ticket_ids:
        told = erasure.with_found(ticket_ids=found.ticket_ids, customer_ids=found.customer_ids)
        for ticket_id in sorted(found.ticket_ids):
            step.emit(TICKETS_EVENTS, ticket_id, pipeline.event(
                "customer.erased", event_id(erasure, "erased", ticket_id), told.to_data(), ticket_id))
    log.info("erasure: threads deleted", extra={"erasure_id": erasure.erasure_id, "partition": step.partition,
                                                "threads": len(found.thread_keys), "attachments": len(found.attachments)})
    return found


def erase_outbox_in(step: "Step", erasure: Erasure) -> list[str]:
    """The hop's work for `chat.erased`: delete the outboxes of the named sessions."""
    outboxes = step.table("chat_outboxes")
    gone = [key for key, outbox in outboxes.items() if outbox_is_theirs(key, outbox, erasure)]
    for key in gone:
        del outboxes[key]
    return gone
