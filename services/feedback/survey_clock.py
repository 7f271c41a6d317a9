"""The survey clock: a resolved ticket's survey goes out once its delay is over.

The facts hop records each resolution's survey as `scheduled` with its due time in
the `surveys` table; this service waits for the earliest one, and then, in a
transaction on the ticket's partition (`Processor.transact`), hands it on as due
unless the ticket was reopened meanwhile. A worker that takes a partition finds its
scheduled surveys in the restored table, so a restart delays a survey, never loses it.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import time
from typing import Any, Callable

from mode import Service

from deskstream.events import parse_timestamp
from deskstream.processor import Processor, Step, Store

log = logging.getLogger(__name__)

SURVEYS = "surveys"
RETRY_SECONDS = 30.0

Due = Callable[[Step, str], None]  # (step on the ticket's partition, ticket id): hand the survey on


def when(due_at: str) -> float:
    return parse_timestamp(due_at).timestamp()


class SurveyClock(Service):
    def __init__(self, processor: Processor, due: Due, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.processor = processor
        self.due = due
        self._heap: list[tuple[float, str, int]] = []
        self._wake = asyncio.Event()
        processor.on_partition_taken(self._taken)

    async def on_start(self) -> None:
        self.add_future(self._run())

    def scheduled(self, partition: int, ticket_id: str, due_at: str) -> None:
        heapq.heappush(self._heap, (when(due_at), ticket_id, partition))
        self._wake.set()

    def _taken(self, partition: int, store: Store) -> None:
        for ticket_id, survey in store.tables[SURVEYS].items():
            if survey.get("state") == "scheduled":
                self.scheduled(partition, ticket_id, survey["due_at"])

    async def _run(self) -> None:
        while not self.should_stop:
            delay = self._heap[0][0] - time.time() if self._heap else 60.0
            if delay > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 60.0))
                except asyncio.TimeoutError:
                    pass
                continue
            _, ticket_id, partition = heapq.heappop(self._heap)
            if not self.processor.owns(partition):
                continue  # its new owner has it from the table
            survey = self.processor.committed(partition, SURVEYS, ticket_id)
            if not survey or survey.get("state") != "scheduled":
                continue
            if when(survey["due_at"]) > time.time():  # an older resolution's entry: the survey is due later
                self.scheduled(partition, ticket_id, survey["due_at"])
                continue
            try:
                handed_on = await self.processor.transact(partition, lambda step, t=ticket_id: self.due(step, t))
            except Exception:  # a bug in one survey must not stop the others
                log.exception("survey not handed on; trying again later", extra={"ticket_id": ticket_id})
                handed_on = False
            if not handed_on:
                heapq.heappush(self._heap, (time.time() + RETRY_SECONDS, ticket_id, partition))
