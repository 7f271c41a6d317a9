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

from deskstream.events import Event, parse_timestamp, timestamp
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
CLOSE_WAIT_SECONDS = 2.0  # then the providers' connections get this long to say goodbye
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

            committed = False
            try:
                committed = await self.processor.transact(self.partition, together)
            finally:  # every caller hears back, whatever happened to the transaction
                for (_, future), error in itertools.zip_longest(group, errors):
                    if future.done():
                        continue
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
        # What this worker knows that the table may not say, per request: a claim whose
        # commit was not confirmed (it held back: nothing was sent), an outcome whose
        # commit was not confirmed. Each names its claim, and counts only for that claim.
        self._unsent: dict[str, str] = {}
        self._unrecorded: dict[str, tuple[str | None, Outcome]] = {}
        self._settling: dict[str, asyncio.Future[None]] = {}
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
        self._leaving.update(self._groups)
        for task in list(self._settling.values()):
            task.cancel()  # a claim left unsettled is settled by the next owner
        in_flight = [task for tasks in self._in_flight.values() for task in tasks]
        if in_flight:
            await asyncio.wait(in_flight, timeout=LEAVE_WAIT_SECONDS)
        try:
            await asyncio.wait_for(self.channels.close(), CLOSE_WAIT_SECONDS)
        except asyncio.TimeoutError:
            log.warning("provider connections not closed in time")

    # -- what the deliveries hop and the processor tell it ----------------------------------

    def accepted(self, partition: int, request_id: str, not_before: datetime | None) -> None:
        """A request was committed as pending: send it when it is due."""
        self._at((not_before or now()).timestamp(), partition, request_id)

    def _taken(self, partition: int, store: Store) -> None:
        self._leaving.discard(partition)
        self._groups[partition] = GroupCommit(self.processor, partition)
        for request_id, record in store.tables[DELIVERIES].items():
            if attempts.is_pending(record):
                when = attempts.not_before(record)
                self._at((when or now()).timestamp(), partition, request_id)
            elif attempts.is_claimed(record):
                self._settle_later(partition, request_id)

    async def _leave(self, partition: int) -> None:
        """Before the partition goes: no new sends, and the ones in flight record their
        outcome (when stopping, `on_stop` has waited for them already)."""
        self._leaving.add(partition)
        in_flight = self._in_flight.get(partition)
        if in_flight and not self.should_stop:
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
            if self.should_stop:
                slots.release()
                return
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
        if self.should_stop or not attempts.is_pending(record) or partition in self._leaving or group is None:
            return
        request = record["request"]
        moment = now()
        pushed = self.channels.pushed(request, timestamp(moment))
        if pushed is not None:
            await group.run(self._push(request_id, pushed, moment))
            return
        claim, won = attempts.new_claim(), _Won()
        self._unsent[request_id] = claim  # should this claim turn up after all, it was not sent
        if not await group.run(self._claim(request_id, moment, claim, won)):
            return
        del self._unsent[request_id]
        if not won.value:
            return
        try:
            outcome = await self.channels.send(request)
        except Exception as error:  # a bug, not the provider: settle it visibly rather than hold the claim
            log.exception("send failed unexpectedly", extra={"request_id": request_id})
            outcome = Outcome("failed", f"not sent: internal error {type(error).__name__}")
        await self._record(partition, request_id, claim, outcome)

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

    def _claim(self, request_id: str, moment: datetime, claim: str, won: "_Won") -> Work:
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
            deliveries[request_id] = attempts.claimed(record, moment, claim)
            won.value = True

        return work

    async def _record(self, partition: int, request_id: str, claim: str | None, outcome: Outcome) -> None:
        """Commit what the attempt under `claim` came to (nothing, if that claim is no
        longer the request's: someone settled it meanwhile)."""
        self._unrecorded[request_id] = (claim, outcome)  # until committed: a settle after a failure uses it
        group = self._groups.get(partition)
        if group is None:
            return
        moment = now()
        again: list[datetime] = []

        def work(step: Step) -> None:
            record = step.table(DELIVERIES).get(request_id)
            if attempts.is_claimed(record) and record.get("claim") == claim:
                later = self._settled(step, record, outcome, moment)
                if later is not None:
                    again.append(later)

        if await group.run(work):
            self._forget(request_id)
            if again:
                self._at(again[0].timestamp(), partition, request_id)

    def _settled(self, step: Step, record: dict[str, Any], outcome: Outcome, moment: datetime) -> datetime | None:
        """Write what an attempt came to and its receipt; the time of the next attempt, if any."""
        request = record["request"]
        if record["state"] == attempts.PENDING:  # pushed without a claim
            record = attempts.claimed(record, moment, None)
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
        data = delivery.receipt(request, status, detail, timestamp(moment), provider_message_id)
        event_type = "notify.sent" if status == attempts.SENT else "notify.failed"
        event = self.pipeline.event(event_type, f"{request['request_id']}.{status}", data, request.get("ticket_id"))
        step.emit(NOTIFY_RECEIPTS, recipient_key(request["recipient"]), event)
        self.notices.labels(request["recipient"]["channel"], request["reason"], status).inc()
        if request.get("incident_id"):
            self.incident_notices.labels(request["incident_id"], status).inc()

    # -- claims left by a crash ---------------------------------------------------------------

    def _settle_later(self, partition: int, request_id: str) -> None:
        if request_id in self._settling:
            return
        task = asyncio.ensure_future(self._settle(partition, request_id))
        self._settling[request_id] = task
        task.add_done_callback(lambda _: self._settling.pop(request_id, None))
        task.add_done_callback(_log_failure)

    async def _settle(self, partition: int, request_id: str) -> None:
        """A claim without an outcome: find out whether the message went out. Every step
        names the claim it settles, so a claim settled meanwhile is left alone."""
        while not self.should_stop and self.processor.owns(partition) and partition not in self._leaving:
            record = self.processor.committed(partition, DELIVERIES, request_id)
            if not attempts.is_claimed(record):
                self._forget(request_id)
                return
            claim, claimed_at = record.get("claim"), parse_timestamp(record["claimed_at"])
            mine = self._unrecorded.get(request_id)
            outcome: Outcome | None
            if claim is not None and self._unsent.get(request_id) == claim:  # its commit failed; this worker held back
                outcome = Outcome("retry", "the claim was not confirmed; nothing was sent")
            elif mine is not None and mine[0] == claim:  # this worker sent it; the outcome's commit failed
                outcome = mine[1]
            else:
                wait = (claimed_at + timedelta(seconds=self.channels.settle_delay(record["request"])) - now()).total_seconds()
                if wait > 0:  # a send by a worker that just died may still land: look again after it
                    await asyncio.sleep(min(wait, 1.0))
                    continue
                outcome = await self.channels.find(record["request"], claimed_at)
                if outcome is None:
                    await asyncio.sleep(RECONCILE_RETRY_SECONDS)
                    continue
            group = self._groups.get(partition)
            if group is None:
                return
            if outcome.status == "retry":  # certainly not sent: pending again, the attempt not counted
                if await group.run(self._unclaim(request_id, claim)):
                    self._forget(request_id)
                    self._at(time.time(), partition, request_id)
                return
            await self._record(partition, request_id, claim, outcome)
            return

    def _unclaim(self, request_id: str, claim: str | None) -> Work:
        def work(step: Step) -> None:
            deliveries = step.table(DELIVERIES)
            record = deliveries.get(request_id)
            if attempts.is_claimed(record) and record.get("claim") == claim:
                deliveries[request_id] = attempts.unclaimed(record)

        return work

    def _forget(self, request_id: str) -> None:
        self._unsent.pop(request_id, None)
        self._unrecorded.pop(request_id, None)


class _Won:
    value = False


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("outbox send failed", exc_info=task.exception())
