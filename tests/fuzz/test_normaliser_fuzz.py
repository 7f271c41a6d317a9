"""The normaliser on any contact the contract accepts: every `contact.received` that
passes its schema becomes ticket events (or a survey answer) that pass theirs, whatever
the thread already holds: nothing yet, an open ticket, a survey awaiting its answer,
or this very contact (a replay, which yields nothing).

The contacts are built from the schema's fields by hand: hypothesis-jsonschema (0.23.1,
its newest release) fails on hypothesis 6.170 with "AttributeError: 'many' object has
no attribute 'more'" before generating anything. So that this strategy does not drift
from the schema, every contact it builds is first checked against the schema itself.
"""
from __future__ import annotations

import string
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from deskstream.events import Event
from services.intake.normaliser import Thread, normalise, survey_opened
from tests.fuzz.support import publishable, scaled, ticket_events_publishable

CHANNELS = ["email", "sms", "whatsapp", "chat"]
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)  # JSON carries no lone surrogates


def bounded(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Strings of the schema's lengths: mostly short, sometimes at the limit."""
    return st.one_of(st.text(st.characters(exclude_categories=("Cs",)), min_size=min_size, max_size=min(max_size, 60)),
                     st.integers(max(min_size, max_size - 3), max_size).map(lambda n: "ñ" * n))


@st.composite
def timestamps(draw: st.DrawFn, moment: datetime | None = None) -> str:
    """RFC 3339 times in every form the schema's pattern takes: Z or an offset, no
    fraction or one of any length. Real times only, of the years intake's clock can
    stamp: the pattern refuses month 13 or hour 24, but lets through "2026-02-30" and
    "9999-12-31T23:55Z", on which a survey's answer window raises (ValueError,
    OverflowError) and the hop dead-letters the contact; no producer writes such times."""
    moment = moment or draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)))
    fraction = draw(st.sampled_from(["", ".0", ".123", ".123456", ".123456789"]))
    offset = draw(st.sampled_from(["Z", "+00:00", "+01:00", "-05:30", "+14:00", "-12:00"]))
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}{offset}"


customers = st.fixed_dictionaries(
    {"id": bounded(1, 100)},
    optional={"name": bounded(0, 200), "email": bounded(0, 254), "phone": bounded(0, 32),
              "language": st.sampled_from(["es", "en", "es-MX", "EN_gb", "fr", ""]) | bounded(0, 16)},
)
addresses = st.fixed_dictionaries({"channel": st.sampled_from(CHANNELS), "address": bounded(1, 254)})
emails = st.fixed_dictionaries({
    "message_id": st.none() | bounded(0, 998) | st.just("T-ABCDEFGH.x@deskstream.example"),
    "in_reply_to": st.none() | bounded(0, 998) | st.just("<T-ABCDEFGH.abc@deskstream.example>"),
    "references": st.lists(bounded(0, 998), max_size=5) | st.lists(st.just("r@x"), min_size=100, max_size=100),
    "full_text": bounded(0, 65536),
    "attachments": st.lists(st.fixed_dictionaries({
        "filename": st.none() | bounded(0, 255), "content_type": bounded(0, 255), "size": st.integers(0, 2**53),
        "sha256": st.text(st.sampled_from("0123456789abcdef"), min_size=64, max_size=64)}), max_size=3),
})
sms_fields = st.fixed_dictionaries({
    "message_sid": st.builds(lambda prefix, digits: prefix + digits, st.text(st.sampled_from(string.ascii_uppercase), min_size=2,
                                                                             max_size=2), st.text(st.sampled_from(string.hexdigits), min_size=32, max_size=32)),
    "to": bounded(0, 64),
    "media": st.lists(st.fixed_dictionaries({"url": bounded(0, 992).map("https://".__add__), "content_type": bounded(0, 255)}),
                      max_size=10),
})
survey_replies = st.sampled_from(["5", "cinco", "⭐⭐⭐", "muy bien, gracias", "4 - rápido", "mal", "5 días sin internet", "STOP", "?"])


@st.composite
def contacts(draw: st.DrawFn) -> dict[str, Any]:
    """The data of a `contact.received`, field by field as its schema allows."""
    channel = draw(st.sampled_from(CHANNELS))
    contact: dict[str, Any] = {
        "contact_id": draw(bounded(1, 100)),
        "channel": channel,
        "thread_key": draw(bounded(1, 300)),
        "received_at": draw(timestamps()),
        "customer": draw(customers),
        "subject": draw(st.none() | bounded(0, 998) | st.just("Re: factura [#T-ABCDEFGH]")),
        "body_text": draw(bounded(1, 16384) | survey_replies),
        "reply_to": draw(addresses),
    }
    if draw(st.booleans()):
        contact["email"] = draw(emails)
    if draw(st.booleans()):
        contact["sms"] = draw(sms_fields)
    return contact


@st.composite
def threads(draw: st.DrawFn, contact: dict[str, Any]) -> Thread:
    """What the thread may hold when the contact arrives, as the threads table keeps it."""
    thread = Thread()
    if draw(st.booleans()):
        thread.ticket_id = draw(st.sampled_from(["T-ABCDEFGH", "T-22222222"]))
        thread.customer = draw(customers)
    if draw(st.booleans()):
        received = datetime.fromisoformat(contact["received_at"].replace("Z", "+00:00")).astimezone(timezone.utc)
        expires = received + draw(st.sampled_from([timedelta(days=-1), timedelta(seconds=1), timedelta(minutes=5), timedelta(days=3)]))
        survey_opened({"survey_id": "S-abcdefghijkl", "ticket_id": thread.ticket_id or "T-ABCDEFGH",
                       "thread_key": contact["thread_key"], "expires_at": draw(timestamps(expires))}, thread)
    if draw(st.integers(0, 4)) == 0:
        thread.recent_contacts = [contact["contact_id"]]
    return Thread.from_dict(thread.to_dict())


contacts_and_threads = contacts().flatmap(lambda contact: st.tuples(st.just(contact), threads(contact)))
EARLY = {"contact_id": "c-1", "channel": "whatsapp", "thread_key": "whatsapp:+34600112233",
         "received_at": "2026-12-02T10:00:00.000Z", "customer": {"id": "cus-1"}, "subject": None, "body_text": "5",
         "reply_to": {"channel": "whatsapp", "address": "+34600112233"}}


@settings(max_examples=scaled(1))
@given(contacts_and_threads)
@example((EARLY, Thread(ticket_id="T-ABCDEFGH", survey={"survey_id": "S-abcdefghijkl", "ticket_id": "T-ABCDEFGH",
                                                       "expires_at": "2026-12-05T10:00:00+01:00"})))
def test_any_contact_the_contract_accepts_becomes_events_the_contract_accepts(contact_and_thread: tuple[dict[str, Any], Thread]) -> None:
    contact, thread = contact_and_thread
    publishable(Event("contact.received", "deskstream/intake", contact["contact_id"][:100], contact))  # the strategy keeps to the schema
    replayed = contact["contact_id"] in thread.recent_contacts
    events = normalise(contact, thread)
    assert len(events) == (0 if replayed else 1)
    ticket_events_publishable(events)
    assert contact["contact_id"] in thread.recent_contacts
    if events and events[0].type != "survey.answered":
        assert thread.ticket_id == events[0].ticket_id
