"""Fan-out: an incident update becomes one notice request per affected customer.

The incidents hop commits the update with `fanout: {update_id, done: false}`; this
service then reads who is affected (`incidents.audience`) and commits the requests in
chunks, each chunk with the audience rows that remember who was told, and finally
marks the fan-out done. A crash in between leaves `done: false`: whoever takes the
partition next runs it again, and the requests it repeats have the same ids, which
the deliveries hop drops. An update that arrives during a fan-out stops it: the
newer one reaches everyone, and replaces the older notices still waiting.

Open tickets and subscriptions live in other hops' tables; their replicas are first
read up to what was committed when the fan-out starts, so a ticket opened just before
the update is not missed (one opened after it finds the incident itself, see the
acknowledgements hop).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from mode import Service

from deskstream.pipeline import Pipeline
from deskstream.processor import Processor, Step, Store
from deskstream.recipients import recipient_key
from deskstream.replica import TableReplica
from deskstream.topics import NOTIFY_REQUESTS

from services.notifier import incidents as incident_data

log = logging.getLogger(__name__)

INCIDENTS, AUDIENCE = "incidents", "audience"
CHUNK = 500
RETRY_SECONDS = 5.0


class Fanout(Service):
    def __init__(self, pipeline: Pipeline, processor: Processor, contacts: TableReplica, subscriptions: TableReplica,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.processor = processor
        self.contacts = contacts
        self.subscriptions = subscriptions
        processor.on_partition_taken(self._taken)

    def updated(self, partition: int, incident_id: str) -> None:
        """An incident update was committed: tell its audience."""
        self.add_future(self._fan_out(partition, incident_id))

    def _taken(self, partition: int, store: Store) -> None:
        for incident_id, incident in store.tables[INCIDENTS].items():
            if not incident.get("fanout", {}).get("done", True):
                self.updated(partition, incident_id)

    async def _fan_out(self, partition: int, incident_id: str) -> None:
        incident = self.processor.committed(partition, INCIDENTS, incident_id)
        if incident is None or incident["fanout"]["done"]:
            return
        update_id = incident["fanout"]["update_id"]
        if not all(await asyncio.gather(self.contacts.synced(), self.subscriptions.synced())):
            log.warning("replicas behind; the fan-out waits", extra={"incident_id": incident_id})
            await asyncio.sleep(RETRY_SECONDS)
            if self.processor.owns(partition):
                self.updated(partition, incident_id)
            return
        told = [row for key, row in self.processor.rows(partition, AUDIENCE).items() if key.startswith(f"{incident_id}|")]
        everyone = incident_data.audience(incident, self.contacts.values(), self.subscriptions.values(), told)
        log.info("incident fan-out", extra={"incident_id": incident_id, "update_id": update_id, "audience": len(everyone)})
        for start in range(0, len(everyone), CHUNK):
            chunk = everyone[start:start + CHUNK]
            if not await self.processor.transact(partition, self._requests(incident_id, update_id, chunk)):
                return  # not the owner any more, or the commit failed: the next owner runs it again
        await self.processor.transact(partition, self._done(incident_id, update_id, len(everyone)))

    def _requests(self, incident_id: str, update_id: str, chunk: list[dict[str, Any]]) -> Any:
        def work(step: Step) -> None:
            incident = step.table(INCIDENTS).get(incident_id)
            if incident is None or incident["fanout"]["update_id"] != update_id:
                return  # a newer update took over
            self.tell(step, incident, chunk)

        return work

    def tell(self, step: Step, incident: dict[str, Any], audience: list[dict[str, Any]], *, remember: bool = True) -> None:
        """Request the incident's latest notice for each of `audience`, and remember them
        as told (`remember`: `step` writes the incident's own partition)."""
        told = step.table(AUDIENCE)
        update_id = incident_data.latest(incident)["update_id"]
        for who in audience:
            request = incident_data.notice(incident, who)
            step.emit(NOTIFY_REQUESTS, recipient_key(who["recipient"]),
                      self.pipeline.event("notify.requested", request["request_id"], request, request.get("ticket_id")))
            if remember:
                told[incident_data.audience_key(incident["incident_id"], who["recipient"])] = {**who, "told": update_id}

    def _done(self, incident_id: str, update_id: str, count: int) -> Any:
        def work(step: Step) -> None:
            incidents = step.table(INCIDENTS)
            incident = incidents.get(incident_id)
            if incident is not None and incident["fanout"]["update_id"] == update_id:
                incidents[incident_id] = {**incident, "fanout": {"update_id": update_id, "done": True, "audience": count}}

        return work
