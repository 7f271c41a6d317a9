"""A customer's erasure without a broker: who it names (deskstream.erasure), how each
service finds the customer's rows (services/*/erasure.py), the API's reading of a
request, and what a hop's step does with an erasure's deletes and broadcasts."""
from __future__ import annotations

from pathlib import Path

import pytest

from deskstream.erasure import Erasure, InvalidErasure, identity_ids, requested
from deskstream.events import Event
from deskstream.processor import Changes, Send, Step, Store, TableView
from services.feedback import erasure as feedback
from services.intake import erasure as intake
from services.intake.attachments import AttachmentStore
from deskstream.customers import customer_id
from services.intake.normaliser import Thread, normalise
from services.notifier import erasure as notifier
from services.notifier.erasure_api import erasure_from
from services.router import erasure as router

AT = "2026-12-02T18:00:00.000Z"
ANA_EMAIL, ANA_PHONE = "Ana.Garcia@Example.es", "+34600112233"
ANA = requested(emails=[ANA_EMAIL], phones=[ANA_PHONE], requested_at=AT, default_region="ES")
ANA_BY_EMAIL = customer_id(email=ANA_EMAIL, fallback="")
BEA = {"id": customer_id(email="bea@example.com", fallback=""), "name": "Bea", "email": "bea@example.com"}
SHA_A, SHA_B, SHA_SHARED = "a" * 64, "b" * 64, "c" * 64


# -- whom an erasure names ----------------------------------------------------------------

def test_an_erasure_carries_customer_ids_never_the_address_or_number():
    data = ANA.to_data()
    assert ANA_BY_EMAIL in data["customer_ids"]
    assert customer_id(phone=ANA_PHONE, fallback="") in data["customer_ids"]
    assert "ana" not in repr(data).lower() and "600112233" not in repr(data)
    assert Erasure.from_data(data) == ANA


def test_a_number_written_locally_or_spaced_is_the_same_customer():
    local = requested(phones=["600 11 22 33"], requested_at=AT, default_region="ES")
    assert customer_id(phone=ANA_PHONE, fallback="") in local.customer_ids
    assert local.covers_customer({"id": "cus-other", "phone": "+34 600 11 22 33"})
    assert ANA.covers_customer({"id": "cus-chat", "phone": "600 11 22 33"})  # kept as typed on the chat page
    assert not requested(emails=["x@example.org"], requested_at=AT).covers_customer({"id": "cus-chat", "phone": "600 11 22 33"})
    assert Erasure.from_data(ANA.to_data()).phone_region == "ES"


def test_an_address_matches_whatever_its_case_and_spaces():
    assert ANA.covers_customer({"id": "cus-chat", "email": " ana.garcia@example.ES "})
    assert ANA.covers_recipient({"channel": "email", "address": "ana.garcia@example.es"})
    assert ANA.covers_recipient({"channel": "sms", "address": ANA_PHONE})
    assert ANA.covers_recipient_key(f"whatsapp:{ANA_PHONE}")


def test_somebody_else_is_not_covered():
    assert not ANA.covers_customer(BEA)
    assert not ANA.covers_customer({"id": "cus-x", "phone": "+34600112234"})
    assert not ANA.covers_recipient({"channel": "email", "address": "bea@example.com"})
    assert not ANA.covers_recipient({"channel": "chat", "address": "s" * 24})  # a session only once found
    assert ANA.with_found(chat_sessions=["s" * 24]).covers_recipient({"channel": "chat", "address": "s" * 24})
    assert not ANA.covers_customer(None) and not ANA.covers_recipient(None)


def test_a_chat_only_customer_is_named_by_their_customer_id():
    chat_id = customer_id(fallback="session-1234567890")
    erasure = requested(customer_ids=[chat_id], requested_at=AT)
    assert erasure.covers_customer({"id": chat_id, "name": "Ana"})
    assert identity_ids(chat_id) == {chat_id}


@pytest.mark.parametrize("kwargs", [{}, {"emails": ["not an address"]}, {"phones": ["call me"]}, {"customer_ids": ["T-ABCDEFGH"]}])
def test_a_request_that_names_nobody_is_refused(kwargs):
    with pytest.raises(InvalidErasure):
        requested(requested_at=AT, **kwargs)


def test_the_same_request_is_the_same_erasure_and_a_later_one_another():
    assert requested(emails=[ANA_EMAIL], requested_at=AT).erasure_id == requested(emails=[ANA_EMAIL.lower()], requested_at=AT).erasure_id
    assert requested(emails=[ANA_EMAIL], requested_at=AT).erasure_id != requested(emails=[ANA_EMAIL], requested_at="2026-12-03T00:00:00.000Z").erasure_id


@pytest.mark.parametrize("body", [None, [], {"name": "Ana"}, {"email": 5}, {"email": [""]}, {"phone": ["+34600112233"] * 11}, {}])
def test_the_api_refuses_a_body_that_names_nobody_clearly(body):
    with pytest.raises(InvalidErasure):
        erasure_from(body, AT, "ES")


def test_the_api_reads_one_identity_or_a_list():
    assert erasure_from({"email": ANA_EMAIL, "phone": [ANA_PHONE]}, AT, "ES").customer_ids == ANA.customer_ids


# -- intake -------------------------------------------------------------------------------

def thread(customer: dict, ticket_id: str, attachments: list[str] = ()) -> dict:
    return {"ticket_id": ticket_id, "customer": customer, "recent_contacts": ["c-1"], "attachments": list(attachments)}


def test_intake_finds_every_thread_of_the_customer_and_only_theirs():
    rows = [
        ("chat:session-ana-1234567890", thread({"id": "cus-chatana", "name": "Ana", "email": ANA_EMAIL}, "T-AAAAAAAA")),
        (f"sms:{ANA_PHONE}", thread({"id": customer_id(phone=ANA_PHONE, fallback=""), "phone": ANA_PHONE}, "T-BBBBBBBB")),
        ("email:<m1@example.es>", thread({"id": ANA_BY_EMAIL, "email": ANA_EMAIL.lower()}, "T-CCCCCCCC", [SHA_A, SHA_SHARED])),
        ("email:<m2@example.com>", thread(BEA, "T-DDDDDDDD", [SHA_B, SHA_SHARED])),
    ]
    found = intake.find_threads(rows, ANA)
    assert sorted(found.thread_keys) == sorted(key for key, _ in rows[:3])
    assert found.ticket_ids == {"T-AAAAAAAA", "T-BBBBBBBB", "T-CCCCCCCC"}
    assert "cus-chatana" in found.customer_ids
    assert found.attachments == {SHA_A}  # the file Bea sent too stays


def test_a_thread_remembers_the_attachments_of_its_mails():
    contact = {"contact_id": "c-1", "channel": "email", "thread_key": "email:<m1@x>", "customer": {"id": ANA_BY_EMAIL, "email": ANA_EMAIL},
               "body_text": "hola", "received_at": AT, "reply_to": {"channel": "email", "address": ANA_EMAIL}, "subject": "Factura",
               "email": {"message_id": "<m1@x>", "in_reply_to": None, "references": [], "full_text": "hola",
                         "attachments": [{"filename": "f.pdf", "content_type": "application/pdf", "size": 3, "sha256": SHA_A}]}}
    state = Thread()
    normalise(contact, state)
    assert Thread.from_dict(state.to_dict()).attachments == [SHA_A]


def test_an_outbox_is_the_customers_by_its_session_or_its_tickets():
    erasure = ANA.with_found(ticket_ids=["T-AAAAAAAA"], chat_sessions=["s" * 24])
    assert intake.outbox_is_theirs("s" * 24, [], erasure)
    assert intake.outbox_is_theirs("t" * 24, [{"ticket_id": "T-AAAAAAAA", "text": "Hola Ana"}], erasure)
    assert not intake.outbox_is_theirs("u" * 24, [{"ticket_id": "T-DDDDDDDD", "text": "Hola Bea"}], erasure)


def test_deleting_an_attachment_twice_is_no_error(tmp_path: Path):
    store = AttachmentStore(tmp_path)
    store.put(SHA_A, b"bytes")
    assert store.delete(SHA_A) is True
    assert store.get(SHA_A) is None
    assert store.delete(SHA_A) is False


# -- router -------------------------------------------------------------------------------

def test_the_router_deletes_the_customers_conversations_and_dispatcher_rows():
    conversations = [("T-AAAAAAAA", {"customer": {"id": "cus-chatana", "email": ANA_EMAIL}}),
                     ("T-EEEEEEEE", {"customer": {"id": "cus-x"}}),  # found by intake as Ana's
                     ("T-DDDDDDDD", {"customer": BEA})]
    erasure = ANA.with_found(ticket_ids=["T-EEEEEEEE"])
    assert router.conversations_to_delete(conversations, erasure) == ["T-AAAAAAAA", "T-EEEEEEEE"]
    tickets = [("T-AAAAAAAA", {"customer_id": ANA_BY_EMAIL}), ("T-EEEEEEEE", {"customer_id": "cus-x"}),
               ("T-DDDDDDDD", {"customer_id": BEA["id"]})]
    customers = [(ANA_BY_EMAIL, {"tickets": [[AT, "T-AAAAAAAA"]]}), ("cus-x", {"tickets": [[AT, "T-EEEEEEEE"]]}),
                 (BEA["id"], {"tickets": [[AT, "T-DDDDDDDD"]]})]
    assert router.dispatcher_rows_to_delete(tickets, customers, erasure) == (["T-AAAAAAAA", "T-EEEEEEEE"], [ANA_BY_EMAIL, "cus-x"])


# -- notifier -----------------------------------------------------------------------------

def test_the_notifier_finds_contacts_by_ticket_or_address_and_learns_their_chat_sessions():
    rows = [("T-AAAAAAAA", {"reply_to": {"channel": "chat", "address": "s" * 24}, "name": "Ana"}),
            ("T-CCCCCCCC", {"reply_to": {"channel": "email", "address": ANA_EMAIL}, "name": "Ana"}),
            ("T-DDDDDDDD", {"reply_to": {"channel": "email", "address": BEA["email"]}, "name": "Bea"})]
    found = notifier.contacts_to_delete(rows, ANA.with_found(ticket_ids=["T-AAAAAAAA"]))
    assert found.ticket_ids == ["T-AAAAAAAA", "T-CCCCCCCC"] and found.chat_sessions == {"s" * 24}


def test_the_notifier_drops_pending_messages_and_consents_but_keeps_what_says_nothing_personal():
    erasure = ANA.with_found(ticket_ids=["T-AAAAAAAA"], chat_sessions=["s" * 24])
    rows = [("T-AAAAAAAA.ack", {"state": "pending", "request": {"ticket_id": "T-AAAAAAAA", "recipient": {"channel": "chat", "address": "s" * 24}}}),
            ("inc-1.u1.sms", {"state": "pending", "request": {"recipient": {"channel": "sms", "address": ANA_PHONE}}}),
            ("slot:inc-1|x", {"request_id": "inc-1.u1.sms"}),
            ("T-AAAAAAAA.reply.1", {"state": "sent", "at": AT, "attempts": 1}),
            ("T-DDDDDDDD.ack", {"state": "pending", "request": {"ticket_id": "T-DDDDDDDD", "recipient": {"channel": "email", "address": BEA["email"]}}})]
    assert notifier.deliveries_to_delete(rows, erasure) == ["T-AAAAAAAA.ack", "inc-1.u1.sms", "slot:inc-1|x"]
    assert notifier.consents_to_delete([f"sms:{ANA_PHONE}", "sms:+34999999999"], erasure) == [f"sms:{ANA_PHONE}"]
    listeners = [("inc-1|h1", {"recipient": {"channel": "chat", "address": "q" * 24}, "ticket_id": "T-AAAAAAAA", "name": "Ana"}),
                 ("network|email:ana", {"recipient": {"channel": "email", "address": ANA_EMAIL}, "name": "Ana"}),
                 ("network|email:bea", {"recipient": {"channel": "email", "address": BEA["email"]}, "name": "Bea"})]
    assert notifier.listeners_to_delete(listeners, erasure) == ["inc-1|h1", "network|email:ana"]


# -- feedback -----------------------------------------------------------------------------

def test_feedback_deletes_the_customers_surveys_and_keeps_the_figures_without_their_words():
    surveys = [("T-AAAAAAAA", {"contact": {"customer_id": "cus-chatana", "recipient": {"channel": "chat", "address": "s" * 24}}}),
               ("T-CCCCCCCC", {"contact": {"customer_id": ANA_BY_EMAIL, "recipient": {"channel": "email", "address": ANA_EMAIL}}}),
               ("T-DDDDDDDD", {"contact": {"customer_id": BEA["id"], "recipient": {"channel": "email", "address": BEA["email"]}}})]
    erasure = ANA.with_found(ticket_ids=["T-AAAAAAAA"])
    assert feedback.surveys_to_delete(surveys, erasure) == ["T-AAAAAAAA", "T-CCCCCCCC"]
    facts = [("T-AAAAAAAA", {"ticket_id": "T-AAAAAAAA", "survey": {"score": 2, "comment": "Ana: fatal"}}),
             ("T-CCCCCCCC", {"ticket_id": "T-CCCCCCCC"}),
             ("T-DDDDDDDD", {"ticket_id": "T-DDDDDDDD", "survey": {"score": 5, "comment": "Bea: genial"}})]
    assert feedback.facts_to_scrub(facts, ["T-AAAAAAAA", "T-CCCCCCCC"]) == {
        "T-AAAAAAAA": {"ticket_id": "T-AAAAAAAA", "survey": {"score": 2, "comment": None}}}


# -- what a hop's step does with it ---------------------------------------------------------

class Contract:
    def check(self, event: Event) -> Event:
        return event


class Processor:
    name = "test"
    contract = Contract()

    def __init__(self, store: Store) -> None:
        self._store = store

    def stores(self):
        return iter([self._store])


def test_items_are_this_partitions_rows_with_pending_writes_and_deletes():
    store = Store(("threads",))
    store.apply("threads", "a", 1)
    store.apply("threads", "b", 2)
    view = TableView("threads", store, [Changes()], lambda: iter([store]))
    del view["a"]
    view["c"] = 3
    assert sorted(view.items()) == [("b", 2), ("c", 3)]


def test_an_emit_to_an_explicit_partition_keeps_it_through_absorb():
    store = Store(())
    batch, record = Changes(), Changes()
    batch.sends.append(Send("deadletter", "x", Event(type="deadletter.recorded", source="t", id="d", data={})))
    step = Step(Processor(store), store, [batch, record])
    ping = Event(type="notify.erasure_requested", source="t", id="e", data={})
    step.emit("notify.requests", "erasure-x", ping, partition=0)
    step.emit("notify.requests", "erasure-x", ping, partition=3)
    step.emit("chat.outbound", "session", ping)
    batch.absorb(record)
    assert [(send.topic, send.partition) for send in batch.sends] == [
        ("deadletter", None), ("notify.requests", 0), ("notify.requests", 3), ("chat.outbound", None)]


# -- retention ------------------------------------------------------------------------------

def test_retention_comes_from_the_environment_and_bounds_how_long_a_changelog_keeps_an_erased_value():
    from deskstream.settings import KafkaSettings, SettingsError
    from deskstream.topics import CHANGELOGS, DEADLETTER, TOPICS, topic_configs

    default = KafkaSettings.from_env({})
    assert all(topic_configs(spec, default)["retention.ms"] == spec.configs["retention.ms"] for spec in TOPICS)
    short = KafkaSettings.from_env({"KAFKA_EVENT_RETENTION_DAYS": "7", "KAFKA_DEADLETTER_RETENTION_DAYS": "14",
                                    "KAFKA_CHANGELOG_COMPACTION_HOURS": "0.5"})
    by_name = {spec.name: topic_configs(spec, short) for spec in TOPICS + CHANGELOGS}
    assert by_name["tickets.events"]["retention.ms"] == str(7 * 24 * 3600 * 1000)
    assert by_name[DEADLETTER]["retention.ms"] == str(14 * 24 * 3600 * 1000)
    changelog = by_name[CHANGELOGS[0].name]
    assert changelog == {"cleanup.policy": "compact", "max.compaction.lag.ms": "1800000", "delete.retention.ms": "1800000"}
    with pytest.raises(SettingsError):
        KafkaSettings.from_env({"KAFKA_EVENT_RETENTION_DAYS": "0"})


def test_feedback_forgets_when_it_last_surveyed_the_customer_under_any_of_their_ids():
    surveys = [("T-AAAAAAAA", {"contact": {"customer_id": "cus-chatana"}}), ("T-DDDDDDDD", {"contact": {"customer_id": BEA["id"]}}),
               ("T-EEEEEEEE", {"contact": {"customer_id": "chat:s-no-id"}})]
    assert feedback.customer_ids_of(surveys, ["T-AAAAAAAA", "T-EEEEEEEE"]) == {"cus-chatana"}
    customers = [(ANA_BY_EMAIL, {"last_surveyed_at": AT}), ("cus-chatana", {"last_surveyed_at": AT}), (BEA["id"], {"last_surveyed_at": AT})]
    assert feedback.customers_to_delete(customers, ANA.with_found(customer_ids=["cus-chatana"])) == [ANA_BY_EMAIL, "cus-chatana"]
