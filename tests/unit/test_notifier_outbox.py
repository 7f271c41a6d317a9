"""The notifier's outbox, on a processor that fails where we say: each message is
sent at most once, and everything not sent is sent, whatever the commits do."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from deskstream.contract import default_contract
from deskstream.events import Event
from deskstream.processor import Changes, Step, Store

from services.notifier import attempts
from services.notifier.attempts import RetryPolicy
from services.notifier.outbox import Outbox
from services.notifier.outcomes import Outcome
from services.notifier.rate_limit import RateLimits

SMS = {"channel": "sms", "address": "+34600111222"}


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry()


class Pipeline:
    def __init__(self) -> None:
        self.metrics = Metrics()

    def event(self, event_type: str, event_id: str, data: dict, subject: str | None = None) -> Event:
        return Event(type=event_type, source="deskstream/notifier", id=event_id, data=data, subject=subject)


class FlakyProcessor:
    """Partition 0 of the deliveries hop. `fail` makes the next commits fail: with
    `landed`, the transaction committed although the caller was told it failed (the
    answer was lost); either way the partition is taken again, as `_recover` does."""

    def __init__(self) -> None:
        self.contract = default_contract()
        self._stores = {0: Store(("deliveries", "consents"))}
        self.emitted: list[tuple[str, Event]] = []
        self.fail: list[bool] = []  # per coming commit: True = it landed anyway
        self._taken: list[Any] = []
        self._leaving: list[Any] = []

    def stores(self):
        return iter(self._stores.values())

    def owns(self, partition: int) -> bool:
        return partition in self._stores

    def committed(self, partition: int, table: str, key: str) -> Any:
        return self._stores[partition].tables[table].get(key)

    def on_partition_taken(self, hook: Any) -> None:
        self._taken.append(hook)

    def on_partition_leaving(self, hook: Any) -> None:
        self._leaving.append(hook)

    def take(self) -> None:
        for hook in self._taken:
            hook(0, self._stores[0])

    async def transact(self, partition: int, work: Any) -> bool:
        await asyncio.sleep(0)
        changes = Changes()
        work(Step(self, self._stores[partition], [changes], partition))
        failing = self.fail.pop(0) if self.fail else None
        if failing is None or failing:  # committed
            for (table, key), value in changes.writes.items():
                self._stores[partition].apply(table, key, value)
            self.emitted.extend((send.topic, send.event) for send in changes.sends)
        if failing is not None:
            self.take()
            return False
        return True


class Provider:
    """Twilio, as the outbox's Channels see it: what it was asked, and what it has."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.sends: list[str] = []
        self.has: set[str] = set()

    def pushed(self, request: dict, at: str) -> None:
        return None

    async def send(self, request: dict) -> Outcome:
        self.sends.append(request["request_id"])
        status = self.answers.pop(0) if self.answers else "sent"
        if status == "sent":
            self.has.add(request["request_id"])
        return Outcome(status, f"provider said {status}")

    async def find(self, request: dict, claimed_at: datetime) -> Outcome:
        if request["request_id"] in self.has:
            return Outcome("sent", "found")
        return Outcome("retry", "not there")

    def settle_delay(self, request: dict) -> float:
        return 0.0

    async def close(self) -> None:
        pass


def request(request_id: str = "T-AAAAAAAA.ack") -> dict:
    return {"request_id": request_id, "ticket_id": "T-AAAAAAAA", "reason": "acknowledgement", "recipient": SMS,
            "language": "es", "template": "acknowledgement", "params": {}}


async def outbox_with(processor: FlakyProcessor, provider: Provider) -> Outbox:
    outbox = Outbox(Pipeline(), processor, provider, RateLimits({}), RetryPolicy(3, 0.01, 0.05))  # type: ignore[arg-type]
    await outbox.start()
    processor.take()
    return outbox


def pending(processor: FlakyProcessor, outbox: Outbox, *requests: dict) -> None:
    for r in requests:
        processor._stores[0].apply("deliveries", r["request_id"], attempts.pending(r, None))
        outbox.accepted(0, r["request_id"], None)


async def settled(processor: FlakyProcessor, request_id: str, timeout: float = 5.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        record = processor.committed(0, "deliveries", request_id)
        if record and record["state"] in attempts.FINAL:
            await asyncio.sleep(0.05)
            return record
        await asyncio.sleep(0.01)
    raise AssertionError(f"not settled: {processor.committed(0, 'deliveries', request_id)}")


def receipts(processor: FlakyProcessor) -> list[str]:
    return [event.id for topic, event in processor.emitted if topic == "notify.receipts"]


@pytest.fixture
def processor() -> FlakyProcessor:
    return FlakyProcessor()


async def test_a_message_is_claimed_sent_and_settled_once(processor):
    provider = Provider()
    outbox = await outbox_with(processor, provider)
    pending(processor, outbox, request())
    assert (await settled(processor, "T-AAAAAAAA.ack"))["state"] == "sent"
    assert provider.sends == ["T-AAAAAAAA.ack"] and receipts(processor) == ["T-AAAAAAAA.ack.sent"]
    await outbox.stop()


async def test_a_claim_whose_commit_failed_is_not_sent_then_and_is_sent_once_later(processor):
    provider = Provider()
    outbox = await outbox_with(processor, provider)
    processor.fail = [True]  # the claim landed, but the outbox was told it failed: it must not send then
    pending(processor, outbox, request())
    assert (await settled(processor, "T-AAAAAAAA.ack"))["state"] == "sent"
    assert provider.sends == ["T-AAAAAAAA.ack"] and receipts(processor) == ["T-AAAAAAAA.ack.sent"]
    await outbox.stop()


async def test_an_outcome_whose_commit_failed_is_recorded_from_memory_without_sending_again(processor):
    provider = Provider()
    outbox = await outbox_with(processor, provider)
    processor.fail = [False, False]  # the claim commits; the outcome's commit is lost
    pending(processor, outbox, request())
    assert (await settled(processor, "T-AAAAAAAA.ack"))["state"] == "sent"
    assert provider.sends == ["T-AAAAAAAA.ack"] and receipts(processor) == ["T-AAAAAAAA.ack.sent"]
    await outbox.stop()


async def test_another_worker_s_claim_is_settled_by_asking_the_provider_not_by_an_old_memory(processor):
    provider = Provider()
    outbox = await outbox_with(processor, provider)
    r = request()
    outbox._unsent[r["request_id"]] = "an-older-claim"  # this worker once held back on another claim
    claimed_at = datetime.now(timezone.utc) - timedelta(seconds=30)
    processor._stores[0].apply("deliveries", r["request_id"], attempts.claimed(attempts.pending(r, None), claimed_at, "theirs"))
    provider.has.add(r["request_id"])  # the other worker sent it, then died before recording it
    processor.take()
    assert (await settled(processor, r["request_id"]))["state"] == "sent"
    assert provider.sends == [] and receipts(processor) == [f"{r['request_id']}.sent"]
    await outbox.stop()


async def test_a_temporary_failure_is_tried_again_and_sent_once(processor):
    provider = Provider("retry", "retry")
    outbox = await outbox_with(processor, provider)
    pending(processor, outbox, request())
    record = await settled(processor, "T-AAAAAAAA.ack")
    assert (record["state"], record["attempts"]) == ("sent", 3)
    assert len(provider.sends) == 3 and receipts(processor) == ["T-AAAAAAAA.ack.sent"]
    await outbox.stop()


async def test_an_opted_out_recipient_is_not_sent_to(processor):
    provider = Provider()
    outbox = await outbox_with(processor, provider)
    processor._stores[0].apply("consents", "sms:+34600111222", {"opted_out": True, "keyword": "STOP", "at": "2026-12-02T10:00:00Z"})
    pending(processor, outbox, request())
    assert (await settled(processor, "T-AAAAAAAA.ack"))["state"] == "failed"
    assert provider.sends == [] and receipts(processor) == ["T-AAAAAAAA.ack.failed"]
    await outbox.stop()
