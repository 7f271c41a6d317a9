"""A chat session's outbox: ordered, without duplicates, bounded."""
from services.intake import outbox


def message(n):
    return {"message_id": f"m{n}", "text": f"text {n}"}


def test_messages_get_increasing_sequence_numbers():
    box = outbox.append(None, message(1))
    box = outbox.append(box, message(2))
    assert [m["seq"] for m in box] == [1, 2]


def test_the_same_message_twice_is_kept_once():
    box = outbox.append(None, message(1))
    assert outbox.append(box, message(1)) is None


def test_a_page_gets_only_what_it_has_not_seen():
    box = None
    for n in range(1, 6):
        box = outbox.append(box, message(n))
    assert [m["message_id"] for m in outbox.unseen(box, 3)] == ["m4", "m5"]
    assert outbox.unseen(None, 0) == []


def test_the_outbox_is_bounded_and_keeps_counting():
    box = None
    for n in range(outbox.MAX_MESSAGES + 10):
        box = outbox.append(box, message(n))
    assert len(box) == outbox.MAX_MESSAGES
    assert box[-1]["seq"] == outbox.MAX_MESSAGES + 10
