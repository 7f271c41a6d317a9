"""The smallest Faust service that shows what a restart does to delivery: it counts
records per key in a table and forwards each record to an output topic.

Built with deskstream's own `create_app` and `Worker`, so it runs with the settings
the real services run with. Prints TABLE_TOTAL=<n> every second.
"""
from __future__ import annotations

import asyncio
import os

from deskstream.faustapp import Worker, create_app
from deskstream.settings import ServiceSettings

settings = ServiceSettings.from_env(os.environ["DELIVERY_APP"], int(os.environ["DELIVERY_HTTP_PORT"]))
overrides = {}
if os.environ.get("DELIVERY_SAFE_SEEK") == "1":
    # the fix under test: deskstream.faust_transport.py
    from deskstream.faust_transport import broker_url
    overrides["broker"] = broker_url(settings.kafka.faust_broker)
if os.environ.get("DELIVERY_WAIT_EMPTY") == "1":
    overrides["stream_wait_empty"] = True
app = create_app(settings, logging_config=None, **overrides)
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
