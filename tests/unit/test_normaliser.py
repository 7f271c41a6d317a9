"""How contacts become ticket events."""
from services.intake.language import detect_language, normalise_language
from services.intake.normaliser import Thread, normalise, subject_from, ticket_id_for


def contact(contact_id="chat-1", text="Hola, mi internet no funciona", **customer):
    return {
        "contact_id": contact_id,
        "channel": "chat",
        "thread_key": "chat:s1",
        "received_at": "2026-11-22T10:00:00.000Z",
        "customer": {"id": "cus-1", **customer},
        "subject": None,
        "body_text": text,
        "reply_to": {"channel": "chat", "address": "s1"},
    }


def test_the_first_contact_of_a_thread_opens_a_ticket():
    thread = Thread()
    [event] = normalise(contact(name="Marta"), thread)
    assert event.type == "ticket.created"
    assert event.ticket_id == thread.ticket_id == ticket_id_for("chat-1")
    assert event.data["subject"] == "Hola, mi internet no funciona"
    assert event.data["customer"] == {"id": "cus-1", "name": "Marta", "language": "es"}


def test_a_later_contact_joins_the_open_ticket():
    thread = Thread()
    [created] = normalise(contact(), thread)
    [joined] = normalise(contact("chat-2", "sigo sin conexión"), thread)
    assert joined.type == "ticket.message_received"
    assert joined.ticket_id == created.ticket_id
    assert joined.id != created.id


def test_the_same_contact_twice_produces_nothing_the_second_time():
    thread = Thread()
    assert normalise(contact(), thread)
    assert normalise(contact(), thread) == []


def test_a_replay_from_scratch_produces_the_same_events():
    first = normalise(contact(), Thread())
    again = normalise(contact(), Thread())
    assert [(e.id, e.ticket_id) for e in first] == [(e.id, e.ticket_id) for e in again]


def test_thread_state_round_trips_through_a_table():
    thread = Thread()
    normalise(contact(name="Marta"), thread)
    assert Thread.from_dict(thread.to_dict()) == thread
    assert Thread.from_dict(None) == Thread()


def test_the_customer_language_is_kept_or_guessed():
    assert normalise(contact(text="My internet is down", language="es-MX"), Thread())[0].data["customer"]["language"] == "es"
    assert normalise(contact(text="My internet has been down since this morning"), Thread())[0].data["customer"]["language"] == "en"
    assert normalise(contact(text="¿Por qué no puedo entrar a mi cuenta?"), Thread())[0].data["customer"]["language"] == "es"


def test_language_helpers():
    assert normalise_language("EN_us") == "en"
    assert normalise_language("fr") is None
    assert normalise_language(None) is None
    assert detect_language("gracias por la ayuda") == "es"
    assert detect_language("thanks for the help") == "en"
    assert detect_language("12345", default="es") == "es"


def test_subjects_are_the_first_line_shortened():
    assert subject_from("\n  first line \nsecond") == "first line"
    assert len(subject_from("x" * 500)) == 80
