"""A ticket's conversation as the console shows it, folded from tickets.events."""
from services.router import conversations


def created(ticket_id: str, customer: dict, channel: str = "chat", at: str = "2026-12-02T10:00:00.000Z", text: str = "Hola") -> dict:
    return {"ticket_id": ticket_id, "channel": channel, "subject": text[:40], "customer": customer, "body_text": text,
            "received_at": at, "contact_id": "c", "thread_key": "t", "reply_to": {"channel": channel, "address": "a"}}


def fold(events: list[tuple[str, str, dict]]) -> dict | None:
    conversation = None
    for event_type, event_id, data in events:
        conversation = conversations.record(conversation, event_type, event_id, "2026-12-02T10:05:00.000Z", data) or conversation
    return conversation


MARTA = {"id": "cus-1", "name": "Marta", "email": "Marta@Example.es", "language": "es"}


def test_messages_replies_notes_and_changes_make_one_timeline_and_a_replay_changes_nothing():
    events = [
        ("ticket.created", "T-A.created", created("T-A", MARTA, text="<img src=x onerror=alert(1)> sin internet")),
        ("ticket.classified", "T-A.classified", {"ticket_id": "T-A", "skill": "network", "priority": "P3", "tier": "L1",
                                                 "signals": {"customer_hint": "upset", "repeat_count": 1}}),
        ("ticket.assigned", "T-A.assigned.1", {"ticket_id": "T-A", "agent_id": "lucia", "agent_name": "Lucía"}),
        ("ticket.note_added", "T-A.note.n1", {"ticket_id": "T-A", "agent_id": "lucia", "agent_name": "Lucía", "text": "avería zona",
                                              "added_at": "2026-12-02T10:06:00.000Z"}),
        ("ticket.reply_sent", "T-A.reply.r1", {"ticket_id": "T-A", "agent_id": "lucia", "agent_name": "Lucía", "text": "Reinicia",
                                               "sent_at": "2026-12-02T10:07:00.000Z"}),
        ("ticket.resolved", "T-A.resolved.x", {"ticket_id": "T-A", "resolved_by": "lucia"}),
    ]
    conversation = fold(events)
    assert [e["kind"] for e in conversation["entries"]] == ["customer", "event", "note", "reply", "event"]
    assert conversation["entries"][0]["text"] == "<img src=x onerror=alert(1)> sin internet"  # kept as the customer wrote it
    assert (conversation["hint"], conversation["priority"], conversation["status"]) == ("upset", "P3", "resolved")
    for event_type, event_id, data in events:
        assert conversations.record(conversation, event_type, event_id, "2026-12-02T11:00:00.000Z", data) is None


def test_an_event_for_a_ticket_never_seen_open_is_ignored():
    reply = {"ticket_id": "T-B", "agent_id": "a", "agent_name": "A", "text": "x", "sent_at": "2026-12-02T10:00:00.000Z"}
    assert conversations.record(None, "ticket.reply_sent", "T-B.reply.r", "2026-12-02T10:00:00.000Z", reply) is None


def test_a_long_thread_keeps_its_first_message_and_the_latest_ones():
    conversation = fold([("ticket.created", "T-A.created", created("T-A", MARTA))])
    for n in range(conversations.MAX_ENTRIES + 10):
        data = {**created("T-A", MARTA, at=f"2026-12-02T11:{n // 60:02d}:{n % 60:02d}.000Z", text=f"m{n}")}
        conversation = conversations.record(conversation, "ticket.message_received", f"T-A.m{n}", "", data)
    texts = [e["text"] for e in conversation["entries"]]
    assert len(texts) == conversations.MAX_ENTRIES and texts[0] == "Hola" and texts[-1] == f"m{conversations.MAX_ENTRIES + 9}"


def test_a_customer_who_wrote_by_email_and_then_by_sms_is_one_history():
    by_mail = fold([("ticket.created", "T-A.created", created("T-A", MARTA, channel="email"))])
    chat = fold([("ticket.created", "T-B.created", created("T-B", {"id": "cus-2", "email": "marta@example.es", "phone": "+34 612 34 56 78"},
                                                           at="2026-12-02T11:00:00.000Z"))])
    by_sms = fold([("ticket.created", "T-C.created", created("T-C", {"id": "cus-3", "phone": "+34612345678"}, channel="sms",
                                                             at="2026-12-02T12:00:00.000Z", text="sigo igual"))])
    stranger = fold([("ticket.created", "T-D.created", created("T-D", {"id": "cus-9", "email": "otro@example.es"}))])
    history = conversations.customer_tickets([by_mail, chat, by_sms, stranger, None], chat)
    assert [c["ticket_id"] for c in history] == ["T-A", "T-B", "T-C"]
    timeline = conversations.timeline(history)
    assert [(e["ticket_id"], e["channel"]) for e in timeline] == [("T-A", "email"), ("T-B", "chat"), ("T-C", "sms")]
