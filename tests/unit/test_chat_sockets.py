"""A chat page's pushes, from whatever this worker's copy of the outboxes holds: in seq
order, none twice, whatever the order of the wake-ups and how far the copy trails."""
from __future__ import annotations

import asyncio
from typing import Any

from deskstream.replica import TableReplica
from deskstream.settings import KafkaSettings
from services.intake import outbox
from services.intake.web import ChatSockets, relay


def box(count: int) -> list[dict[str, Any]] | None:
    kept = None
    for n in range(1, count + 1):
        kept = outbox.append(kept, {"message_id": f"m{n}", "text": f"text {n}"})
    return kept


class Page:
    """A relay to one page, with the outbox as the replica would show it."""

    def __init__(self, after: int = 0, shown: int = 0) -> None:
        self.shown: list[dict[str, Any]] | None = box(shown)
        self.sent: list[int] = []
        self.wake = asyncio.Event()
        self.task = asyncio.create_task(relay(lambda: self.shown, self.wake, self.send, after))

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message["seq"])
        await asyncio.sleep(0)

    async def show(self, count: int) -> None:
        """The replica has read the outbox with `count` messages, and wakes the page."""
        self.shown = box(count)
        self.wake.set()
        await settle()

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.wait([self.task])


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_page_gets_what_it_missed_then_each_new_message_once_in_order():
    page = Page(after=2, shown=4)
    await settle()
    assert page.sent == [3, 4]
    await page.show(5)
    await page.show(7)
    assert page.sent == [3, 4, 5, 6, 7]
    await page.close()


async def test_a_wake_up_without_anything_new_sends_nothing():
    page = Page(after=0, shown=2)
    await settle()
    page.wake.set()  # another key of the same batch, or a change already sent
    await settle()
    await page.show(2)
    assert page.sent == [1, 2]
    await page.close()


async def test_a_copy_behind_the_page_sends_nothing_until_it_has_newer_messages():
    # The page saw seq 5 on another worker and reconnects here, where the copy trails.
    page = Page(after=5, shown=3)
    await settle()
    assert page.sent == []
    await page.show(4)
    assert page.sent == []
    await page.show(6)
    assert page.sent == [6]
    await page.close()


async def test_a_change_during_a_send_brings_another_look():
    sent: list[int] = []
    shown = {"box": box(1)}
    wake = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["seq"])
        if message["seq"] == 1:  # the replica reads two more while the first is on its way
            shown["box"] = box(3)
            wake.set()
        await asyncio.sleep(0)

    task = asyncio.create_task(relay(lambda: shown["box"], wake, send, 0))
    await settle()
    assert sent == [1, 2, 3]
    task.cancel()
    await asyncio.wait([task])


async def test_a_bounded_outbox_keeps_counting_for_the_page():
    page = Page(after=outbox.MAX_MESSAGES + 3, shown=outbox.MAX_MESSAGES + 3)
    await settle()
    await page.show(outbox.MAX_MESSAGES + 5)
    assert page.sent == [outbox.MAX_MESSAGES + 4, outbox.MAX_MESSAGES + 5]
    await page.close()


async def test_only_the_pages_of_a_changed_session_are_woken():
    sockets = ChatSockets(TableReplica(KafkaSettings.from_env({}), "intake", "chat_outboxes"))
    first, second = sockets.open("session-a"), sockets.open("session-a")
    other = sockets.open("session-b")
    sockets.changed({"session-a", "session-without-a-page"})
    assert first.is_set() and second.is_set() and not other.is_set()
    sockets.close("session-a", first)
    sockets.close("session-a", second)
    sockets.close("session-b", other)
    sockets.changed({"session-a", "session-b"})  # closed pages are forgotten
    assert not other.is_set()
    assert sockets._wakes == {}
