"""The outbox: sends what the deliveries hop accepted, each message at most once.

The deliveries hop only records each request as pending (`attempts.py`); sending
happens here, outside the hop's transactions, so that a slow provider, a retry
backoff, quiet hours or a rate limit never hold up the stream of requests:

1. a pending message is due (its quiet hours are over, its backoff has passed);
2. its channel's rate limit lets it go (`rate_limit.py`);
3. its claim (`sending`, attempt n) is committed to the `deliveries` table;
4. the provider is called once;
5. the outcome is committed with its receipt (or it is pending again, later).

Chat needs no claim: a chat message is a record on `chat.outbound`, produced in the
same transaction that records it as sent.

A worker that takes a partition finds the claims its previous owner left without an
outcome, and settles each by asking the provider (`Channels.find`): Twilio can be
asked whether it has the message; an SMTP server cannot, so such an e-mail stays
`in_doubt` and is not sent again. Claims and outcomes of one partition are committed
in groups (`GroupCommit`), so a storm of notices costs a transaction per group, not
two per message.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Protocol

from mode import Service
from prometheus_client import Counter, Gauge

from deskstream.events import Event
from deskstream.pipeline import Pipeline
from deskstream.processor import Processor, Step, Store, Work
from deskstream.recipients import recipient_key
from deskstream.topics import CHAT_OUTBOUND, NOTIFY_RECEIPTS

from services.notifier import attempts, delivery
from services.notifier.attempts import RetryPolicy
from services.notifier.outcomes import Outcome
from services.notifier.rate_limit import RateLimits

log = logging.getLogger(__name__)

DELIVERIES = "deliveries"
CONSENTS = "consents"
LEAVE_WAIT_SECONDS = 3.0  # a partition given up waits this long for its sends in flight
RECONCILE_RETRY_SECONDS = 5.0


class Channels(Protocol):
    """How messages reach customers, one attempt at a time."""

    def pushed(self, request: dict[str, Any], at: str) -> tuple[str, Event] | None:
        """The key and event on `chat.outbound` that deliver `request` (chat), or None
        when it needs a provider."""

    async def send(self, request: dict[str, Any]) -> Outcome:
        """One attempt at the provider."""

    async def find(self, request: dict[str, Any], claimed_at: datetime) -> Outcome | None:
        """After a crash: `sent` if the provider has the message, `retry` if it certainly
        has not, `in_doubt` if nobody can tell; None if the provider cannot be asked now."""

    def settle_delay(self, request: dict[str, Any]) -> float:
        """How long after a claim a send by a crashed worker may still land."""

    async def close(self) -> None:
        """Let go of the providers' connections."""


Recorded = Callable[[Step, dict[str, Any], Outcome], None]


def now() -> datetime:
    return datetime.now(timezone.utc)


class GroupCommit:
    """Commits the small pieces of work of one partition together: whatever arrives
    while a transaction is committing goes into the next one."""

    def __init__(self, processor: Processor, partition: int) -> None:
        self.processor = processor
        self.partition = partition
        self._waiting: list[tuple[Work, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def run(self, work: Work) -> bool:
        """True once `work`'s writes are committed; False if they are not known to be."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            errors: list[Exception | None] = []

            def together(step: Step) -> None:
                errors.extend(step.attempt(work) for work, _ in group)

            committed = await self.processor.transact(self.partition, together)
            for (_, future), error in itertools.zip_longest(group, errors):
                if error is not None:  # a bug in that piece of work: it alone is left out
                    log.error("outbox work failed", exc_info=error, extra={"partition": self.partition})
                    future.set_exception(error)
                else:
                    future.set_result(committed)


class Outbox(Service):
    """Sends the pending messages of the partitions this worker owns."""

    def __init__(self, pipeline: Pipeline, processor: Processor, channels: Channels, limits: RateLimits,
                 policy: RetryPolicy, *, concurrency: int = 8, recorded: Recorded | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.processor = processor
        self.channels = channels
        self.limits = limits
        self.policy = policy
        self.concurrency = concurrency
        self.recorded = recorded
        self._order = itertools.count()
        self._due: list[tuple[float, int, int, str]] = []  # (when, order, partition, request id)
        self._scheduled: set[str] = set()
        self._wake = asyncio.Event()
        self._lanes: dict[str, asyncio.Queue[tuple[int, str]]] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._in_flight: dict[int, set[asyncio.Future[Any]]] = defaultdict(set)
        self._groups: dict[int, GroupCommit] = {}
        self._leaving: set[int] = set()
        self._unsent: set[str] = set()  # claims not known to be committed: never sent
        self._unrecorded: dict[str, Outcome] = {}  # outcomes whose commit was not confirmed
        registry = pipeline.metrics.registry
        self.notices = Counter("deskstream_notifier_messages", "Messages settled by the outbox",
                               ["channel", "reason", "status"], registry=registry)
        self.incident_notices = Counter("deskstream_notifier_incident_notices", "Incident notices settled, per incident",
                                        ["incident_id", "status"], registry=registry)
        self.waiting = Gauge("deskstream_notifier_waiting", "Messages pending in this worker's outbox", registry=registry)
        self.waiting.set_function(lambda: len(self._due) + sum(lane.qsize() for lane in self._lanes.values()))
        processor.on_partition_taken(self._taken)
        processor.on_partition_leaving(self._leave)

    async def on_start(self) -> None:
        self.add_future(self._schedule())

    async def on_stop(self) -> None:
        """No new sends; the ones in flight record their outcome (the partitions are still
        this worker's: the hops stop after the outbox); then the providers' connections close."""
        self._leaving.update(self._in_flight)
        in_flight = [task for tasks in self._in_flight.values() for task in tasks]
        if in_flight:
            await asyncio.wait(in_flight, timeout=LEAVE_WAIT_SECONDS)
        await self.channels.close()

    # -- what the deliveries hop and the processor tell it ----------------------------------

    def accepted(self, partition: int, request_id: str, not_before: datetime | None) -> None:
        """A request was committed as pending: send it when it is due."""
        self._leaving.discard(partition)
        self._at((not_before or now()).timestamp(), partition, request_id)

    def _taken(self, partition: int, store: Store) -> None:
        self._leaving.discard(partition)
        self._groups[partition] = GroupCommit(self.processor, partition)
        for request_id, record in store.tables[DELIVERIES].items():
            if attempts.is_pending(record):
                when = attempts.not_before(record)
                self._at((when or now()).timestamp(), partition, request_id)
            elif attempts.is_claimed(record):
                self._track(partition, self._settle(partition, request_id))

    async def _leave(self, partition: int) -> None:
        """Before the partition goes: no new sends, and the ones in flight record their outcome."""
        self._leaving.add(partition)
        in_flight = self._in_flight.get(partition)
        if in_flight:
            await asyncio.wait(list(in_flight), timeout=LEAVE_WAIT_SECONDS)
        self._groups.pop(partition, None)

    # -- scheduling ---------------------------------------------------------------------------

    def _at(self, when: float, partition: int, request_id: str) -> None:
        if request_id in self._scheduled:
            return
        self._scheduled.add(request_id)
        heapq.heappush(self._due, (when, next(self._order), partition, request_id))
        self._wake.set()

    async def _schedule(self) -> None:
        """Move each message, once due, to its channel's lane."""
        while not self.should_stop:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
                continue
            when = self._due[0][0]
            delay = when - time.time()
            if delay > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 1.0))
                except asyncio.TimeoutError:
                    pass
                continue
            _, _, partition, request_id = heapq.heappop(self._due)
            self._scheduled.discard(request_id)  # a second send is refused by its claim, not here
            record = self.processor.committed(partition, DELIVERIES, request_id)
            if not attempts.is_pending(record) or partition in self._leaving:
                continue
            await self._lane(record["request"]["recipient"]["channel"]).put((partition, request_id))

    def _lane(self, channel: str) -> asyncio.Queue[tuple[int, str]]:
        lane = self._lanes.get(channel)
        if lane is None:
            lane = self._lanes[channel] = asyncio.Queue()  # unbounded: a slow channel holds up no other
            self._slots[channel] = asyncio.Semaphore(self.concurrency)
            self.add_future(self._drive(channel, lane))
        return lane

    async def _drive(self, channel: str, lane: asyncio.Queue[tuple[int, str]]) -> None:
        """One channel's sends: at its rate, at most `concurrency` at a time."""
        slots = self._slots[channel]
        while not self.should_stop:
            partition, request_id = await lane.get()
            await self.limits.acquire(channel)
            await slots.acquire()
            task = self._track(partition, self._deliver(partition, request_id))
            task.add_done_callback(lambda _: slots.release())

    def _track(self, partition: int, work: Awaitable[None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(work)
        self._in_flight[partition].add(task)
        task.add_done_callback(self._in_flight[partition].discard)
        task.add_done_callback(_log_failure)
        return task

    # -- one message --------------------------------------------------------------------------

    async def _deliver(self, partition: int, request_id: str) -> None:
        record = self.processor.committed(partition, DELIVERIES, request_id)
        group = self._groups.get(partition)
        if not attempts.is_pending(record) or partition in self._leaving or group is None:
            return
        request = record["request"]
        moment = now()
        pushed = self.channels.pushed(request, attempts.iso(moment))
        if pushed is not None:
            await group.run(self._push(request_id, pushed, moment))
            return
        claim = _Claim()
        if not await group.run(self._claim(request_id, moment, claim)):
            self._unsent.add(request_id)
            return
        if claim.won:
            try:
                outcome = await self.channels.send(request)
            except Exception as error:  # a bug, not the provider: settle it visibly rather than hold the claim
                log.exception("send failed unexpectedly", extra={"request_id": request_id})
                outcome = Outcome("failed", f"not sent: internal error {type(error).__name__}")
            await self._record(partition, request_id, outcome)

    def _push(self, request_id: str, pushed: tuple[str, Event], moment: datetime) -> Work:
        def work(step: Step) -> None:
            deliveries = step.table(DELIVERIES)
            record = deliveries.get(request_id)
            if not attempts.is_pending(record):
                return
            key, event = pushed
            step.emit(CHAT_OUTBOUND, key, event)
            self._settled(step, record, Outcome("sent", "queued for the chat session"), moment)

        return work

    def _claim(self, request_id: str, moment: datetime, claim: "_Claim") -> Work:
        """Claim the request, unless it went meanwhile or its recipient opted out."""
        def work(step: Step) -> None:
            deliveries = step.table(DELIVERIES)
            record = deliveries.get(request_id)
            if not attempts.is_pending(record):
                return
            consent = step.table(CONSENTS).get(recipient_key(record["request"]["recipient"]))
            if delivery.opted_out(consent):
                deliveries[request_id] = attempts.final(attempts.FAILED, moment, record["attempts"])
                self.receipt(step, record["request"], attempts.FAILED, f"not sent: the recipient opted out ({consent['keyword']})", moment)
                return
            deliveries[request_id] = attempts.claimed(record, moment)
            claim.won = True

        return work

    async def _record(self, partition: int, request_id: str, outcome: Outcome) -> None:
        group = self._groups.get(partition)
        if group is None:
            return
        moment = now()
        again: list[datetime] = []

        def work(step: Step) -> None:
            record = step.table(DELIVERIES).get(request_id)
            if attempts.is_claimed(record):
                later = self._settled(step, record, outcome, moment)
                if later is not None:
                    again.append(later)

        if not await group.run(work):
            self._unrecorded[request_id] = outcome  # settled again from this when the partition is back
        elif again:
            self._at(again[0].timestamp(), partition, request_id)

    def _settled(self, step: Step, record: dict[str, Any], outcome: Outcome, moment: datetime) -> datetime | None:
        """Write what an attempt came to and its receipt; the time of the next attempt, if any."""
        request = record["request"]
        if record["state"] == attempts.PENDING:  # pushed without a claim, or refused before one
            record = attempts.claimed(record, moment)
        after, status, detail = attempts.finished(record, outcome, moment, self.policy)
        step.table(DELIVERIES)[request["request_id"]] = after
        if self.recorded is not None:
            self.recorded(step, request, outcome)
        if status is None:
            return attempts.not_before(after)
        self.receipt(step, request, status, detail, moment, outcome.provider_message_id)
        return None

    def receipt(self, step: Step, request: dict[str, Any], status: str, detail: str, moment: datetime,
                provider_message_id: str | None = None) -> None:
        """Emit the receipt of a settled request, and count it."""
        data = delivery.receipt(request, status, detail, attempts.iso(moment), provider_message_id)
        event_type = "notify.sent" if status == attempts.SENT else "notify.failed"
        event = self.pipeline.event(event_type, f"{request['request_id']}.{status}", data, request.get("ticket_id"))
        step.emit(NOTIFY_RECEIPTS, recipient_key(request["recipient"]), event)
        self.notices.labels(request["recipient"]["channel"], request["reason"], status).inc()
        if request.get("incident_id"):
            self.incident_notices.labels(request["incident_id"], status).inc()

    # -- claims left by a crash ---------------------------------------------------------------

    async def _settle(self, partition: int, request_id: str) -> None:
        """A claim without an outcome: find out whether the message went out."""
        while not self.should_stop and self.processor.owns(partition) and partition not in self._leaving:
            record = self.processor.committed(partition, DELIVERIES, request_id)
            if not attempts.is_claimed(record):
                return
            claimed_at = attempts.parse(record["claimed_at"])
            if request_id not in self._unsent and request_id not in self._unrecorded:
                wait = (claimed_at + timedelta(seconds=self.channels.settle_delay(record["request"])) - now()).total_seconds()
                if wait > 0:
                    await asyncio.sleep(wait)
            outcome: Outcome | None
            if request_id in self._unsent:  # this worker held back when the claim's commit failed
                outcome = Outcome("retry", "the claim was not confirmed; nothing was sent")
            elif request_id in self._unrecorded:  # this worker sent it; the outcome's commit failed
                outcome = self._unrecorded.pop(request_id)
            else:
                outcome = await self.channels.find(record["request"], claimed_at)
            if outcome is None:
                await asyncio.sleep(RECONCILE_RETRY_SECONDS)
                continue
            if outcome.status == "retry":  # certainly not sent: pending again, the attempt not counted
                group = self._groups.get(partition)
                if group is not None and await group.run(self._unclaim(request_id)):
                    self._unsent.discard(request_id)
                    self._at(time.time(), partition, request_id)
                return
            await self._record(partition, request_id, outcome)
            return

    def _unclaim(self, request_id: str) -> Work:
        def work(step: Step) -> None:
            deliveries = step.table(DELIVERIES)
            record = deliveries.get(request_id)
            if attempts.is_claimed(record):
                deliveries[request_id] = attempts.unclaimed(record)

        return work


class _Claim:
    won = False


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("outbox send failed", exc_info=task.exception())
