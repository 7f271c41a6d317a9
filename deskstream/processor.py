"""Exactly-once consume-process-produce for one hop: Kafka transactions, state included.

Why not Faust agents: measured here (README, "Reliability"), Faust's at-least-once
doubles records after every SIGKILL, and its exactly-once sends to topics the app
does not consume outside the transaction (faust-streaming/faust#177). A Kafka
transaction does what a hop needs in one atomic step: the records it produces, the
changes to its state (written to the state's compacted changelog) and the input
offsets it has consumed are committed together or not at all. A restart, even after
SIGKILL, resumes from the last committed transaction with exactly the state that
transaction left, so nothing is lost and nothing is produced twice for readers with
`isolation_level=read_committed`.

One transactional producer per input partition, with the transactional id
``<group>-<topic>-<partition>``: whoever is given the partition next initialises the
same id, which fences the previous owner (even one that is still running) and aborts
its unfinished transaction (KIP-98's zombie fencing; aiokafka has no KIP-447 group
metadata, so a single producer per worker could not be fenced).

State lives per input partition, written to the same partition number of each
table's changelog: whoever owns input partition p owns its state, and restores it
from changelog partition p before processing a record of p.

A handler is a plain function ``handle(event, step)``: it reads and writes tables and
emits events through `Step`; everything it does becomes visible only when the
transaction commits. A hop whose work is a call to the outside world (sending an
e-mail) may be a coroutine function instead: a crash after the call and before the
commit repeats the call on restart, so such calls must carry an idempotency key
(an e-mail's Message-ID). A handler that raises has its record dead-lettered (with the
reason) in the same transaction, and its partial writes are dropped.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator, NamedTuple

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import ConsumerStoppedError, KafkaError
from mode import Service

from deskstream.contract import Contract, SchemaViolation
from deskstream.events import Event, EventDecodeError
from deskstream.metrics import ServiceMetrics
from deskstream.settings import KafkaSettings
from deskstream.topics import DEADLETTER, changelog_topic

log = logging.getLogger(__name__)

# How long a transaction left open by a dead worker can hold back read_committed
# readers of the topics it wrote, if nobody takes its partitions over (a restart
# takes them over at once and aborts it).
TRANSACTION_TIMEOUT_MS = 15_000
MAX_RECORDS_PER_TRANSACTION = 500
RETRY_BACKOFF_SECONDS = 1.0
TURN_SECONDS = 0.05  # the longest a batch holds the event loop between records
FENCE_SECONDS = 30.0  # a producer not granted its id by then is replaced
# Within the 9 s a worker has to stop (deskstream.faustapp.Worker).
CONSUMER_STOP_SECONDS = 2.0

Handler = Callable[[Event, "Step"], None | Awaitable[None]]
DeadLetter = Callable[[str, str, bytes, bytes | None], Event]
Work = Callable[["Step"], None]
# Told when this worker has taken a partition (its state restored): schedule, never block.
TakenHook = Callable[[int, "Store"], None]
# Awaited before this worker gives a partition up (rebalance, stop), while it still owns it.
LeavingHook = Callable[[int], Awaitable[None]]


class Store:
    """The committed state of one input partition: table name -> key -> value."""

    def __init__(self, tables: tuple[str, ...]) -> None:
        self.tables: dict[str, dict[str, Any]] = {name: {} for name in tables}

    def apply(self, table: str, key: str, value: Any) -> None:
        if value is None:
            self.tables[table].pop(key, None)
        else:
            self.tables[table][key] = value


class Send(NamedTuple):
    """A record to produce in the transaction: to the partition of `key`, or to
    `partition` where given (a broadcast to every partition of a topic, an erasure,
    cannot go by key)."""

    topic: str
    key: str
    event: Event
    partition: int | None = None


@dataclass
class Changes:
    """What handling some records did, not yet committed: table writes (last value
    per key wins, None deletes), records to produce, effects to run after commit."""

    writes: dict[tuple[str, str], Any] = field(default_factory=dict)
    sends: list[Send] = field(default_factory=list)
    effects: list[Callable[[], None]] = field(default_factory=list)

    def absorb(self, other: "Changes") -> None:
        self.writes.update(other.writes)
        self.sends.extend(other.sends)
        self.effects.extend(other.effects)


class TableView:
    """One table as a handler sees it: the committed state of the partition, with
    this transaction's writes on top; `everywhere` adds the other partitions this
    worker holds (read-only, committed), for decisions that need all of them."""

    def __init__(self, name: str, store: Store, pending: list[Changes], everywhere: Callable[[], Iterator[Store]]) -> None:
        self.name = name
        self._store = store
        self._pending = pending  # outermost first; the last one takes this record's writes
        self._everywhere = everywhere

    def get(self, key: str, default: Any = None) -> Any:
        for changes in reversed(self._pending):
            if (self.name, key) in changes.writes:
                value = changes.writes[(self.name, key)]
                return default if value is None else value
        return self._store.tables[self.name].get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self._pending[-1].writes[(self.name, key)] = value

    def __delitem__(self, key: str) -> None:
        self._pending[-1].writes[(self.name, key)] = None

    def values(self) -> list[Any]:
        """Every value this worker holds, with this transaction's writes applied."""
        merged: dict[str, Any] = {}
        for store in self._everywhere():
            if store is not self._store:
                merged.update(store.tables[self.name])
        merged.update(self._store.tables[self.name])
        for changes in self._pending:
            for (table, key), value in changes.writes.items():
                if table == self.name:
                    merged[key] = value
        return [value for value in merged.values() if value is not None]

    def items(self) -> list[tuple[str, Any]]:
        """This partition's rows (key, value), with this transaction's writes applied:
        what a hop scans when it must find rows by their content (an erasure)."""
        merged = dict(self._store.tables[self.name])
        for changes in self._pending:
            for (table, key), value in changes.writes.items():
                if table == self.name:
                    merged[key] = value
        return [(key, value) for key, value in merged.items() if value is not None]


class Step:
    """What a handler may do while handling one record."""

    def __init__(self, processor: "Processor", store: Store, pending: list[Changes], partition: int = 0) -> None:
        self._processor = processor
        self._store = store
        self._pending = pending
        self.partition = partition  # the input partition whose state this step reads and writes

    def table(self, name: str) -> TableView:
        if name not in self._store.tables:
            raise KeyError(f"{self._processor.name} has no table {name!r}")
        return TableView(name, self._store, self._pending, self._processor.stores)

    def emit(self, topic: str, key: str, event: Event, partition: int | None = None) -> None:
        """Produce `event` in this transaction (validated against the contract now), to
        the partition of `key`, or to `partition` if given."""
        self._processor.contract.check(event)
        self._pending[-1].sends.append(Send(topic, key, event, partition))

    def attempt(self, work: Work) -> Exception | None:
        """Run `work` on its own: what it writes and emits is kept if it returns, and
        dropped if it raises (the error is returned), so one bad piece of a group of
        work does not sink the others."""
        mine = Changes()
        try:
            work(Step(self._processor, self._store, [*self._pending, mine], self.partition))
        except Exception as error:
            return error
        self._pending[-1].absorb(mine)
        return None

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Run `effect` once the transaction has committed (never if it aborts)."""
        self._pending[-1].effects.append(effect)


class Processor(Service):
    """One hop: `source` topic in, `handler` applied to each event in transactions."""

    def __init__(
        self,
        *,
        name: str,
        group_id: str,
        service: str,
        source: str,
        handler: Handler,
        tables: tuple[str, ...],
        kafka: KafkaSettings,
        contract: Contract,
        metrics: ServiceMetrics,
        deadletter: DeadLetter,
        max_batch: int = MAX_RECORDS_PER_TRANSACTION,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.group_id = group_id
        self.service = service
        self.source = source
        self.handler = handler
        self.table_names = tables
        self.kafka = kafka
        self.contract = contract
        self.metrics = metrics
        self.deadletter_event = deadletter
        self.max_batch = max_batch
        self._stores: dict[int, Store] = {}
        self._producers: dict[int, AIOKafkaProducer] = {}
        self._next_offset: dict[int, int] = {}
        self._lock = asyncio.Lock()  # held while a batch is handled and while partitions move
        self._consumer: AIOKafkaConsumer | None = None
        self._rebalancing = True
        self._stopping = False
        self._taken_hooks: list[TakenHook] = []
        self._leaving_hooks: list[LeavingHook] = []

    # -- what the rest of the service reads -------------------------------------------------

    def stores(self) -> Iterator[Store]:
        return iter(list(self._stores.values()))

    def committed(self, partition: int, table: str, key: str) -> Any:
        """The committed value of `key` in `table` of one partition this worker owns."""
        store = self._stores.get(partition)
        return None if store is None else store.tables[table].get(key)

    def rows(self, partition: int, table: str) -> dict[str, Any]:
        """The committed rows of `table` in one partition this worker owns (do not change them)."""
        store = self._stores.get(partition)
        return {} if store is None else store.tables[table]

    def values(self, table: str) -> list[Any]:
        return [value for store in self.stores() for value in store.tables[table].values()]

    def owns(self, partition: int) -> bool:
        return partition in self._producers and not self._stopping

    def on_partition_taken(self, hook: TakenHook) -> None:
        self._taken_hooks.append(hook)

    def on_partition_leaving(self, hook: LeavingHook) -> None:
        self._leaving_hooks.append(hook)

    async def transact(self, partition: int, work: Work) -> bool:
        """Commit what `work` writes and emits for `partition` in a transaction of its
        own, beside the stream of input records (no input offset moves): for work that
        starts from a hop's state rather than from a record, such as recording that a
        message is about to be sent, and then what became of it.

        False when nothing is known to have committed: this worker does not own the
        partition (any more), or the transaction failed (then the partition is taken
        again from what the cluster says, as after a failed batch).
        """
        async with self._lock:
            if not self.owns(partition):
                return False
            store = self._stores[partition]
            changes = Changes()
            work(Step(self, store, [changes], partition))
            tp = TopicPartition(self.source, partition)
            try:
                await self._commit(tp, None, changes)
            except KafkaError as error:
                log.warning("transaction failed; partition restarts from its last commit",
                            extra={"processor": self.name, "partition": partition, "error": repr(error)})
                try:
                    await self._recover(tp)
                except Exception as failure:  # as when a batch's recovery fails: the worker exits and restarts
                    log.error("partition not taken again; the worker stops", extra={"processor": self.name, "error": repr(failure)})
                    await self.crash(failure)
                return False
            self._applied(store, changes)
            return True

    async def _leaving(self, partitions: list[int]) -> None:
        """Every hook for every partition at once: their waits overlap rather than add up
        (a rebalance must finish within the rebalance timeout, a stop within the grace)."""
        calls = [(partition, hook(partition)) for partition in partitions for hook in self._leaving_hooks]
        outcomes = await asyncio.gather(*(call for _, call in calls), return_exceptions=True)
        for (partition, _), outcome in zip(calls, outcomes):
            if isinstance(outcome, Exception):
                log.error("partition-leaving hook failed", exc_info=outcome, extra={"processor": self.name, "partition": partition})

    def ready(self) -> bool:
        """Joined, assigned, and every assigned partition's state restored."""
        if self._rebalancing or self._consumer is None:
            return False
        assigned = {tp.partition for tp in self._consumer.assignment()}
        return bool(assigned) and assigned <= set(self._producers)

    # -- lifecycle ----------------------------------------------------------------------------

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.kafka.bootstrap,
            **self.kafka.client_options(),
            group_id=self.group_id,
            client_id=f"{self.group_id}",
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            rebalance_timeout_ms=10_000,
            max_poll_interval_ms=60_000,
        )
        await self._consumer.start()
        self._consumer.subscribe([self.source], listener=_Listener(self))
        self.add_future(self._consume())

    async def on_stop(self) -> None:
        await self._leaving(sorted(self._producers))  # while this worker still owns them
        self._stopping = True
        async with self._lock:
            pass  # the batch in hand finishes (commits or aborts) first
        # Not under the lock: leaving the group may wait for a rebalance callback,
        # and the callbacks take the lock (they return at once while stopping).
        if self._consumer is not None:
            stopping = asyncio.ensure_future(self._consumer.stop())
            try:
                await asyncio.wait_for(asyncio.shield(stopping), CONSUMER_STOP_SECONDS)
            except asyncio.TimeoutError:
                # aiokafka lets a JoinGroup in flight finish before it leaves, and a
                # join waits for the members of a crashed worker to time out (up to
                # the session timeout). A joining consumer holds no partitions and
                # every offset is in a committed transaction: nothing to hand back.
                log.warning("consumer still joining its group; leaving without waiting",
                            extra={"processor": self.name, "after_s": CONSUMER_STOP_SECONDS})
        async with self._lock:
            for partition in list(self._producers):
                await self._release(partition)

    # -- partitions moving --------------------------------------------------------------------

    async def _revoked(self, revoked: list[TopicPartition]) -> None:
        self._rebalancing = True
        if not self._stopping:
            await self._leaving([tp.partition for tp in revoked if tp.partition in self._producers])
        async with self._lock:
            for tp in revoked:
                await self._release(tp.partition)

    async def _assigned(self, assigned: list[TopicPartition]) -> None:
        if self._stopping:
            return
        try:
            async with self._lock:
                await self._take([tp for tp in assigned if tp.partition not in self._producers])
        except Exception as error:
            # aiokafka would log a failed callback and carry on with the partitions
            # assigned but never processed: better that the worker exits and restarts.
            log.error("partitions not taken; the worker stops", extra={"processor": self.name, "error": repr(error)})
            await self.crash(error)
            return
        self._rebalancing = False

    async def _take(self, tps: list[TopicPartition]) -> None:
        """Own partitions `tps`: fence their previous owner, restore their state, and
        start from the offsets their last committed transaction recorded."""
        if not tps:
            return
        fenced = await asyncio.gather(*(self._fenced(tp) for tp in tps))
        producers = {tp.partition: producer for tp, producer in zip(tps, fenced)}
        self._producers.update(producers)
        self._stores.update(await self._restore([tp.partition for tp in tps]))
        assert self._consumer is not None
        for tp in tps:
            # read after fencing: the previous owner's last transaction is settled
            committed = await self._consumer.committed(tp)
            self._next_offset[tp.partition] = -1 if committed is None else committed
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)
        log.info("partitions taken", extra={"processor": self.name, "partitions": sorted(producers),
                                            "offsets": {str(p): o for p, o in sorted(self._next_offset.items())}})
        for partition in sorted(producers):
            for hook in self._taken_hooks:
                hook(partition, self._stores[partition])

    def _producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.kafka.bootstrap,
            **self.kafka.client_options(),
            client_id=f"{self.group_id}-{tp.partition}",
            transactional_id=f"{self.group_id}-{tp.topic}-{tp.partition}",
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        )

    async def _fenced(self, tp: TopicPartition) -> AIOKafkaProducer:
        """A started producer for `tp`, its previous owners fenced. One that is not
        granted its producer id within FENCE_SECONDS is dropped and a fresh one tried: a
        client that bootstraps while the broker is coming back can be left with no broker
        in its metadata, and aiokafka then never asks again (a notifier waited forever
        after a broker restart in the chaos run)."""
        while True:
            producer = self._producer(tp)
            try:
                await asyncio.wait_for(self._fence(producer), FENCE_SECONDS)
                return producer
            except (asyncio.TimeoutError, KafkaError) as error:
                await producer.stop()
                if self.should_stop:
                    raise
                log.warning("fencing timed out or failed; trying a fresh producer",
                            extra={"processor": self.name, "partition": tp.partition, "error": repr(error)})
                await self.sleep(RETRY_BACKOFF_SECONDS)

    @staticmethod
    async def _fence(producer: AIOKafkaProducer) -> None:
        """Start `producer`; its producer id is granted only once the coordinator has
        fenced every older producer with the same transactional id and settled (aborted
        or completed) the transaction it left open."""
        await producer.start()
        await producer.begin_transaction()
        await producer.abort_transaction()

    async def _release(self, partition: int) -> None:
        producer = self._producers.pop(partition, None)
        self._stores.pop(partition, None)
        self._next_offset.pop(partition, None)
        if producer is not None:
            await producer.stop()

    async def _restore(self, partitions: list[int]) -> dict[int, Store]:
        """Rebuild these partitions' state from their changelogs, committed records only."""
        stores = {partition: Store(self.table_names) for partition in partitions}
        if not self.table_names:
            return stores
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.kafka.bootstrap,
            **self.kafka.client_options(),
            enable_auto_commit=False,
            isolation_level="read_committed",
            client_id=f"{self.group_id}-restore",
        )
        await reader.start()
        try:
            tables = {changelog_topic(self.service, table): table for table in self.table_names}
            tps = [TopicPartition(topic, partition) for topic in tables for partition in partitions]
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            ends = await reader.end_offsets(tps)
            while [tp for tp in tps if await reader.position(tp) < ends[tp]]:
                batch = await reader.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batch.items():
                    for record in records:
                        value = None if record.value is None else orjson.loads(record.value)
                        stores[tp.partition].apply(tables[tp.topic], record.key.decode(), value)
        finally:
            await reader.stop()
        return stores

    # -- the loop ----------------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self._consumer is not None
        while not self.should_stop:
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=self.max_batch)
            except ConsumerStoppedError:
                break
            except KafkaError as error:
                log.warning("fetch failed; retrying", extra={"processor": self.name, "error": repr(error)})
                await self.sleep(RETRY_BACKOFF_SECONDS)
                continue
            if not batch:
                continue
            async with self._lock:
                # Partition after partition: a handler that reads the other partitions
                # (TableView.values) sees their committed state, never a pending one.
                for tp, records in batch.items():
                    if tp.partition in self._producers and not self.should_stop:
                        await self._process(tp, records)

    async def _process(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        records = [r for r in records if r.offset >= self._next_offset[tp.partition]]
        if not records:
            return
        store = self._stores[tp.partition]
        batch = Changes()
        turn = time.monotonic()
        for record in records:
            await self._handle(record, store, batch)
            if time.monotonic() - turn > TURN_SECONDS:
                # A long batch of synchronous handlers would hold the event loop: the
                # consumer's heartbeats (its group membership), the HTTP server and the
                # other hops get their turn. Nothing is applied before the commit, so
                # whoever runs meanwhile sees the committed state only.
                await asyncio.sleep(0)
                turn = time.monotonic()
        try:
            await self._commit(tp, records[-1].offset + 1, batch)
        except KafkaError as error:
            log.warning("transaction failed; partition restarts from its last commit",
                        extra={"processor": self.name, "partition": tp.partition, "error": repr(error)})
            await self._recover(tp)
            return
        self._next_offset[tp.partition] = records[-1].offset + 1
        self._applied(store, batch)

    def _applied(self, store: Store, changes: Changes) -> None:
        """After a commit: the store takes the writes, and the effects run."""
        for (table, key), value in changes.writes.items():
            store.apply(table, key, value)
        for send in changes.sends:
            self.metrics.produced(send.topic, send.event.type)
        for effect in changes.effects:
            try:
                effect()
            except Exception:
                log.exception("after-commit effect failed", extra={"processor": self.name})

    async def _handle(self, record: ConsumerRecord, store: Store, batch: Changes) -> None:
        start = time.perf_counter()
        raw: bytes = record.value or b""
        mine = Changes()
        try:
            event = Event.decode(raw)
            self.contract.validate(event.to_dict())
        except (EventDecodeError, SchemaViolation) as error:
            self._dead_letter(batch, str(error), raw, record.key)
            return
        self.metrics.consumed(self.source, event.type)
        try:
            outcome = self.handler(event, Step(self, store, [batch, mine], record.partition))
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as error:
            log.error("event handling failed", exc_info=True, extra={"event_id": event.id, "type": event.type})
            self._dead_letter(batch, f"processing failed: {type(error).__name__}: {error}", raw, record.key)
        else:
            batch.absorb(mine)
        finally:
            self.metrics.processing.labels(self.service, self.source).observe(time.perf_counter() - start)

    def _dead_letter(self, batch: Changes, reason: str, raw: bytes, key: bytes | None) -> None:
        event = self.deadletter_event(self.source, reason, raw, key)
        self.metrics.failed(reason.split(":", 1)[0][:60])
        log.warning("dead-lettered input", extra={"origin": self.source, "reason": reason[:200], "dl_id": event.id})
        batch.sends.append(Send(DEADLETTER, self.source, event))

    async def _commit(self, tp: TopicPartition, next_offset: int | None, batch: Changes) -> None:
        producer = self._producers[tp.partition]
        async with producer.transaction():
            sent = [await producer.send(send.topic, key=send.key.encode(), value=send.event.encode(), partition=send.partition)
                    for send in batch.sends]
            for (table, key), value in batch.writes.items():
                sent.append(await producer.send(
                    changelog_topic(self.service, table), key=key.encode(),
                    value=None if value is None else orjson.dumps(value), partition=tp.partition,
                ))
            # aiokafka commits a transaction even if one of its batches was refused
            # (the failure is only on that record's future): look, and abort if so.
            await asyncio.gather(*sent)
            if next_offset is not None:
                await producer.send_offsets_to_transaction({tp: next_offset}, self.group_id)

    async def _recover(self, tp: TopicPartition) -> None:
        """After a failed transaction nobody knows for sure whether it committed: take the
        partition again from what the cluster says (fresh producer, state and offset).
        If another worker fenced this one (ProducerFenced), the group has given it the
        partition, and the revocation that follows leaves nothing to take back."""
        await self._release(tp.partition)
        await self.sleep(RETRY_BACKOFF_SECONDS)
        assert self._consumer is not None
        if tp in self._consumer.assignment():
            await self._take([tp])


class _Listener(ConsumerRebalanceListener):
    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.processor._revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.processor._assigned(list(assigned))
