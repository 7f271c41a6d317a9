"""What a handler sees and leaves behind within one transaction (deskstream.processor),
without a broker: writes are visible to later records of the same batch, a failing
record's writes and sends vanish, and nothing touches the committed state until the
transaction commits."""
from __future__ import annotations

import orjson
import pytest

from deskstream.events import Event
from deskstream.processor import Changes, Step, Store, TableView
from tests.contract.golden import EXAMPLES, load


class FakeContract:
    def __init__(self) -> None:
        self.checked: list[str] = []

    def check(self, event: Event) -> Event:
        self.checked.append(event.id)
        return event


class FakeProcessor:
    name = "test"

    def __init__(self, *stores: Store) -> None:
        self.contract = FakeContract()
        self._stores = stores

    def stores(self):
        return iter(self._stores)


def event(event_id: str) -> Event:
    return Event(type="ticket.created", source="test", id=event_id, data={})


def created(event_id: str) -> Event:
    """A ticket.created the contract accepts."""
    return Event.decode(orjson.dumps({**load(EXAMPLES / "ticket.created" / "chat-es.json"), "id": event_id}))


def test_a_write_is_read_back_in_the_same_transaction_but_not_committed():
    store = Store(("threads",))
    store.apply("threads", "a", 1)
    batch, record = Changes(), Changes()
    view = TableView("threads", store, [batch, record], lambda: iter([store]))

    view["a"] = 2
    view["b"] = 3

    assert (view.get("a"), view.get("b")) == (2, 3)
    assert store.tables["threads"] == {"a": 1}
    assert record.writes == {("threads", "a"): 2, ("threads", "b"): 3}


def test_a_deleted_key_reads_as_missing_and_is_written_as_a_tombstone():
    store = Store(("threads",))
    store.apply("threads", "a", 1)
    record = Changes()
    view = TableView("threads", store, [Changes(), record], lambda: iter([store]))

    del view["a"]

    assert view.get("a", "gone") == "gone"
    assert record.writes == {("threads", "a"): None}
    assert view.values() == []


def test_values_span_the_partitions_the_worker_holds_with_pending_writes_on_top():
    mine, other = Store(("tickets",)), Store(("tickets",))
    other.apply("tickets", "T-2", {"n": 2})
    mine.apply("tickets", "T-1", {"n": 1})
    view = TableView("tickets", mine, [Changes()], lambda: iter([mine, other]))

    view["T-3"] = {"n": 3}

    assert sorted(v["n"] for v in view.values()) == [1, 2, 3]


def test_a_record_that_fails_leaves_no_trace_when_its_changes_are_not_absorbed():
    store = Store(("threads",))
    batch = Changes()
    first = Changes()
    Step(FakeProcessor(store), store, [batch, first]).table("threads")["a"] = 1
    batch.absorb(first)
    failing = Changes()
    step = Step(FakeProcessor(store), store, [batch, failing])
    step.table("threads")["a"] = 99
    step.emit("tickets.events", "T-1", event("e-1"))
    # the processor drops `failing` (and dead-letters the record) instead of absorbing it

    assert batch.writes == {("threads", "a"): 1}
    assert batch.sends == []


def test_emit_validates_at_once_and_after_commit_effects_wait():
    store = Store(())
    processor = FakeProcessor(store)
    record = Changes()
    ran: list[str] = []
    step = Step(processor, store, [Changes(), record])

    step.emit("tickets.events", "T-1", event("e-1"))
    step.after_commit(lambda: ran.append("pushed"))

    assert processor.contract.checked == ["e-1"]
    assert [(send.topic, send.key, send.event.id) for send in record.sends] == [("tickets.events", "T-1", "e-1")]
    assert ran == [] and len(record.effects) == 1


def test_a_table_the_hop_does_not_declare_is_refused():
    store = Store(("threads",))
    with pytest.raises(KeyError):
        Step(FakeProcessor(store), store, [Changes()]).table("tickets")


async def test_a_long_batch_of_synchronous_handling_lets_the_rest_of_the_worker_run():
    """A batch of slow synchronous handlers must not hold the event loop for the whole
    batch: the consumer's heartbeats run on it, and a worker that misses them for the
    session timeout is thrown out of its group (seen under load with 10,000 tickets)."""
    import asyncio
    import time

    from aiokafka.structs import ConsumerRecord, TopicPartition

    from deskstream.contract import default_contract
    from deskstream.metrics import ServiceMetrics
    from deskstream.processor import TURN_SECONDS, Processor

    def slow(event: Event, step: Step) -> None:
        time.sleep(TURN_SECONDS / 2)  # CPU-bound work, as the router's placements are

    processor = Processor(name="slow", group_id="g", service="test", source="s", handler=slow, tables=(),
                          kafka=None, contract=default_contract(), metrics=ServiceMetrics("test"),  # type: ignore[arg-type]
                          deadletter=None)  # type: ignore[arg-type]
    committed: list[int] = []

    async def commit(tp, next_offset, batch):
        committed.append(next_offset)

    processor._commit = commit  # type: ignore[method-assign]
    processor._stores[0], processor._next_offset[0] = Store(()), 0
    records = [ConsumerRecord("s", 0, n, 0, 0, b"k", created(f"e{n}").encode(), None, 0, 0, []) for n in range(20)]
    turns = 0

    async def heartbeat() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    beating = asyncio.ensure_future(heartbeat())
    await asyncio.sleep(0)
    before = turns
    await processor._process(TopicPartition("s", 0), records)
    beating.cancel()

    assert committed == [20]
    assert turns - before >= 20 * (TURN_SECONDS / 2) / TURN_SECONDS - 2  # a turn about every TURN_SECONDS


async def test_a_producer_never_granted_its_id_is_replaced_by_a_fresh_one(monkeypatch):
    """A client that bootstrapped while the broker was coming back can wait for its
    producer id forever (no broker in its metadata): after FENCE_SECONDS a fresh one."""
    import asyncio

    from aiokafka.structs import TopicPartition

    from deskstream import processor as module
    from deskstream.contract import default_contract
    from deskstream.metrics import ServiceMetrics

    class Producer:
        made: list["Producer"] = []

        def __init__(self) -> None:
            self.stopped = False
            self.stuck = not Producer.made  # the first one never gets its id
            Producer.made.append(self)

        async def start(self) -> None:
            if self.stuck:
                await asyncio.Event().wait()

        async def begin_transaction(self) -> None:
            pass

        async def abort_transaction(self) -> None:
            pass

        async def stop(self) -> None:
            self.stopped = True

    monkeypatch.setattr(module, "FENCE_SECONDS", 0.05)
    monkeypatch.setattr(module, "RETRY_BACKOFF_SECONDS", 0.0)
    hop = module.Processor(name="hop", group_id="g", service="test", source="s", handler=lambda e, s: None, tables=(),
                           kafka=None, contract=default_contract(), metrics=ServiceMetrics("test"),  # type: ignore[arg-type]
                           deadletter=None)  # type: ignore[arg-type]
    monkeypatch.setattr(hop, "_producer", lambda tp: Producer())

    fenced = await asyncio.wait_for(hop._fenced(TopicPartition("s", 0)), 5)

    first, second = Producer.made
    assert fenced is second and first.stopped and not second.stopped
