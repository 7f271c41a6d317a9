"""A Faust Kafka transport whose consumer cannot lose records when it seeks.

The loss it prevents (faust-streaming 0.15.3, aiokafka driver):

After every partition assignment, table recovery makes the input partitions
active (``Consumer.resume_partitions``) and only then awaits
``Consumer.perform_seek()`` (faust/tables/recovery.py:649-655, and :316-321 in
``_resume_streams``).  Flow is already active from the changelog phase of
recovery, so while the seek's OffsetFetch is in flight the Fetcher can receive a
batch of input records and start handing them to the agents.  ``perform_seek``
then resets ``_read_offset``/``_committed_offset`` to the committed offset
(faust/transport/consumer.py:565-580) while ``_drain_messages`` is still walking
that stale batch: the next record it yields is far above the reset read offset,
so it is taken for a hole left by compaction/transaction markers and the whole
range is recorded as a gap (consumer.py:1209-1215 -> ``_add_gap``), and gaps are
counted as acked (``_new_offset``, consumer.py:1114-1128).  Right after the
seek, recovery calls ``app.flow_control.resume()`` (recovery.py:659, :328), which
always clears every stream buffer (mode/utils/queues.py FlowControlEvent.resume
-> clear), dropping the records of that range that were queued but not yet
processed.  The next commit moves past them: a contiguous run of one
partition's records is never processed.

The fix: ``perform_seek`` first stops the consumer's flow (so ``getmany`` stops
yielding the pre-seek batch and the fetcher returns nothing), waits until the
drain loop has finished with the record it is holding, and only then seeks and
resets the read offsets.  Faust itself resumes the flow right after
``perform_seek`` in both callers in recovery, after the stream buffers have
been cleared; the third caller (``getmany`` with flow stopped) already has it
stopped.  The records that were buffered and dropped are fetched again from
the committed offset (at-least-once: the ones already processed are processed
again).

Use it through the documented transport registry::

    from faust.transport.drivers import TRANSPORTS
    TRANSPORTS.aliases["dskafka"] = "tests.delivery.safe_seek:Transport"
    app = faust.App(..., broker="dskafka://127.0.0.1:9092")
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Optional, Tuple

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as _aiokafka
from faust.types import TP, Message

log = logging.getLogger(__name__)

SCHEME = "dskafka"


class Consumer(_aiokafka.Consumer):
    """aiokafka consumer whose seek to the committed offsets is not raced by the
    records of a batch fetched before it."""

    _drain_idle: Optional[asyncio.Event] = None

    def _idle(self) -> asyncio.Event:
        if self._drain_idle is None:
            self._drain_idle = asyncio.Event()
            self._drain_idle.set()
        return self._drain_idle

    async def getmany(self, timeout: float) -> AsyncIterator[Tuple[TP, Message]]:
        idle = self._idle()
        try:
            async for tp, message in super().getmany(timeout):
                # busy from the first record handed out until the drain loop
                # asks for the next one and the batch ends (or is cut short
                # because flow stopped).
                idle.clear()
                yield tp, message
        finally:
            idle.set()

    async def perform_seek(self) -> None:
        self.stop_flow()
        idle = self._idle()
        if not idle.is_set():
            try:
                await asyncio.wait_for(idle.wait(), timeout=self.app.conf.broker_request_timeout)
            except asyncio.TimeoutError:
                log.warning("perform_seek: drain loop still busy after %ss; seeking anyway",
                            self.app.conf.broker_request_timeout)
        await super().perform_seek()

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Faust treats a jump in offsets as records that will never come
        # (compaction, transaction markers) and commits past them.  On our
        # plain input topics a jump means records were skipped: make it loud.
        log.warning("offset gap on %s: %s..%s will be committed as processed", tp, offset_from, offset_to)
        await super()._add_gap(tp, offset_from, offset_to)


class Transport(_aiokafka.Transport):
    Consumer = Consumer


def register() -> str:
    """Register the transport under its URL scheme; returns the scheme."""
    TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
    return SCHEME


def broker_url(url: str) -> str:
    """`kafka://h:p;h2:p2` (deskstream's faust_broker) with this transport's scheme."""
    register()
    return SCHEME + "://" + url.split("://", 1)[-1]
