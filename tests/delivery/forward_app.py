"""The smallest Faust service that shows what a restart does to delivery: it counts
records per key in a table and forwards each record to an output topic.

A plain Faust app with the settings deskstream's services ran with while they were
Faust agents (at-least-once, commit every 0.5 s, bounded rebalance waits), so the
reproduction is the one an upstream maintainer can run. `DELIVERY_TRANSPORT=safe_seek`
swaps in the consumer of tests/delivery/safe_seek.py (the fix). Prints
TABLE_TOTAL=<n> every second.
"""
from __future__ import annotations

import asyncio
import os

import faust

from deskstream.faustapp import Worker
from deskstream.settings import ServiceSettings
from deskstream.topics import app_id

settings = ServiceSettings.from_env(os.environ["DELIVERY_APP"], int(os.environ["DELIVERY_HTTP_PORT"]))
broker = settings.kafka.faust_broker
if os.environ.get("DELIVERY_TRANSPORT", "stock") == "safe_seek":
    from tests.delivery.safe_seek import broker_url

    broker = broker_url(broker)
app = faust.App(
    app_id(settings.name),
    broker=broker,
    store="memory://",
    datadir=str(settings.data_dir),
    processing_guarantee=os.environ.get("DELIVERY_GUARANTEE", "at_least_once"),
    topic_partitions=settings.kafka.partitions,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=10,
    broker_rebalance_timeout=10,
    broker_heartbeat_interval=2,
    broker_commit_interval=0.5,
    producer_acks=-1,
    stream_wait_empty=os.environ.get("DELIVERY_WAIT_EMPTY") == "1",
    web_enabled=False,
)
source = app.topic(os.environ["DELIVERY_IN"], key_serializer="raw", value_serializer="raw", partitions=settings.kafka.partitions)
sink = app.topic(os.environ["DELIVERY_OUT"], key_serializer="raw", value_serializer="raw", partitions=settings.kafka.partitions)
# key_type=bytes: the keys are raw bytes; without it the table's key serializer is
# json, so keys recovered from the changelog come back as int (b"27" -> 27) and
# the live b"27" starts again from 0, overwriting the count in the changelog.
counts = app.Table("counts", default=int, key_type=bytes, partitions=settings.kafka.partitions)
DELAY = float(os.environ.get("DELIVERY_DELAY", "0"))


@app.agent(source)
async def count_and_forward(stream):
    async for event in stream.events():
        counts[event.key] += 1
        await sink.send(key=event.key, value=event.value)
        if DELAY:
            await asyncio.sleep(DELAY)


@app.timer(1.0)
async def report_table_total() -> None:
    print(f"TABLE_TOTAL={sum(counts.values())}", flush=True)


if __name__ == "__main__":
    Worker(app, loglevel="warning").execute_from_commandline()
