"""A customer's erasure, as every service sees it: who it is about and how a row is
matched to it, without the customer's address or phone number on any topic.

An erasure names the customer by their customer ids (`cus-` and a hash of the e-mail
address or phone number, as intake derives them: deskstream/customers.py), which
ticket events already carry, never by the address or number themselves. A service
matches a row by the customer id it holds, or by the id it derives from the address or
number it holds; rows that hold neither (a chat session's outbox, a ticket's notifier
contact) are matched by the ticket ids and chat sessions that the erasure gathers on its
way (intake knows each thread's ticket; notifier each ticket's chat session).

How it travels (each step in the hop's transaction, so it survives a restart and a
repeat changes nothing):

    ops API / `deskstream erase-customer` ──> intake.raw, every partition (erasure.requested)
                                         ──> tickets.events (customer.erased, the announcement)
    intake: threads of the customer deleted, attachments removed ──> tickets.events
            (customer.erased, one per ticket, keyed by it, with the ticket ids)
    tickets.events ──> router: conversations deleted ──> router.dispatch (dispatch.customer_erased)
                   ──> notifier: contacts deleted ──> notify.requests and incidents.events, every
                       partition (notify.erasure_requested, incident.erasure_requested);
                       chat.outbound, per chat session (chat.erased)
                   ──> feedback: ticket facts scrubbed, surveys deleted ──> feedback.surveys, per
                       customer id (survey.customer_erased): when each was last surveyed
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from deskstream.customers import customer_id
from deskstream.events import stable_id
from deskstream.phones import InvalidPhoneNumber, e164

# Every event of an erasure carries the same data (schemas/cloudevent.json#/$defs/erasure).
ERASURE_TYPES = (
    "erasure.requested",  # intake.raw: find the customer's threads
    "customer.erased",  # tickets.events: the public notice, and the tickets found
    "dispatch.customer_erased",  # router.dispatch
    "notify.erasure_requested",  # notify.requests
    "incident.erasure_requested",  # incidents.events
    "chat.erased",  # chat.outbound
    "survey.customer_erased",  # feedback.surveys
)
MAX_CUSTOMER_IDS = 20
MAX_TICKET_IDS = 1000


class InvalidErasure(ValueError):
    """An erasure request that names nobody, or names them in a way that is no identity."""


@dataclass(frozen=True, slots=True)
class Erasure:
    """Whom an erasure is about: customer ids, and the tickets and chat sessions found."""

    erasure_id: str
    customer_ids: frozenset[str]
    requested_at: str
    ticket_ids: frozenset[str] = frozenset()
    chat_sessions: frozenset[str] = frozenset()
    phone_region: str | None = None  # how a number kept as typed ("600 11 22 33") is read

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Erasure":
        return cls(data["erasure_id"], frozenset(data["customer_ids"]), data["requested_at"],
                   frozenset(data.get("ticket_ids", ())), frozenset(data.get("chat_sessions", ())), data.get("phone_region"))

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"erasure_id": self.erasure_id, "customer_ids": sorted(self.customer_ids),
                                "ticket_ids": sorted(self.ticket_ids), "requested_at": self.requested_at}
        if self.chat_sessions:
            data["chat_sessions"] = sorted(self.chat_sessions)
        if self.phone_region:
            data["phone_region"] = self.phone_region
        return data

    def with_found(self, ticket_ids: Iterable[str] = (), chat_sessions: Iterable[str] = (),
                   customer_ids: Iterable[str] = ()) -> "Erasure":
        return Erasure(self.erasure_id, self.customer_ids | frozenset(customer_ids), self.requested_at,
                       self.ticket_ids | frozenset(ticket_ids), self.chat_sessions | frozenset(chat_sessions), self.phone_region)

    def covers_customer(self, customer: Mapping[str, Any] | None) -> bool:
        """Whether a customer record (`{"id", "email", "phone", ...}`) is this customer."""
        if not customer:
            return False
        found = identity_ids(customer.get("id"), customer.get("email"), customer.get("phone"), self.phone_region)
        return bool(found & self.customer_ids)

    def covers_recipient(self, recipient: Mapping[str, Any] | None) -> bool:
        """Whether a recipient (`{"channel", "address"}`) is this customer: a chat session
        found on the way, or an address or number whose customer id is erased."""
        if not recipient:
            return False
        channel, address = recipient.get("channel"), str(recipient.get("address") or "")
        if channel == "chat":
            return address in self.chat_sessions
        if channel == "email":
            return bool(identity_ids(email=address) & self.customer_ids)
        return bool(identity_ids(phone=address, region=self.phone_region) & self.customer_ids)

    def covers_recipient_key(self, key: str) -> bool:
        """`covers_recipient` for a `<channel>:<address>` key (deskstream.recipients)."""
        channel, _, address = key.partition(":")
        return self.covers_recipient({"channel": channel, "address": address})


def identity_ids(customer: str | None = None, email: str | None = None, phone: str | None = None,
                 region: str | None = None) -> set[str]:
    """Every customer id these identities stand for: the id itself, the id of the
    e-mail address, and the ids of the phone number as written and in E.164 (a chat
    customer's number is kept as typed, an SMS sender's in E.164; one typed without
    its country code is read as a number of `region`)."""
    found = {customer} if customer else set()
    if email and email.strip():
        found.add(customer_id(email=email, fallback=""))
    if phone and phone.strip():
        found.add(customer_id(phone=phone, fallback=""))
        try:
            found.add(customer_id(phone=e164(phone, region), fallback=""))
        except InvalidPhoneNumber:
            pass
    return found


def requested(*, emails: Iterable[str] = (), phones: Iterable[str] = (), customer_ids: Iterable[str] = (),
              requested_at: str, default_region: str | None = None) -> Erasure:
    """The erasure an operator asks for. Its id derives from whom and when, so a request
    retried after a lost answer is the same erasure."""
    ids: set[str] = set()
    for email in emails:
        if "@" not in email or len(email) > 254:
            raise InvalidErasure("not an e-mail address")
        ids |= identity_ids(email=email)
    for phone in phones:
        try:
            ids |= identity_ids(phone=e164(phone, default_region))
        except InvalidPhoneNumber as error:
            raise InvalidErasure(str(error)) from None
        ids |= identity_ids(phone=phone)
    for given in customer_ids:
        if not given.startswith("cus-") or len(given) > 64:
            raise InvalidErasure("a customer id starts with cus-")
        ids.add(given)
    if not ids:
        raise InvalidErasure("name the customer by e-mail address, phone number or customer id")
    if len(ids) > MAX_CUSTOMER_IDS:
        raise InvalidErasure(f"at most {MAX_CUSTOMER_IDS} identities per erasure")
    return Erasure("erasure-" + stable_id("erasure", *sorted(ids), requested_at, length=20), frozenset(ids), requested_at,
                   phone_region=default_region)


def event_id(erasure: Erasure, event_type: str, *where: str) -> str:
    """The id of one event of an erasure: the same erasure handled again (a replay, a
    second request with the same id) emits the same ids, which consumers drop."""
    return f"{erasure.erasure_id}.{event_type}." + stable_id(*where, length=12) if where else f"{erasure.erasure_id}.{event_type}"
