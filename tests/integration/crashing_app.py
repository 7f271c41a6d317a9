"""A worker whose agent crashes on its first record, run by deskstream's Worker.

Faust workers have been seen to hang on shutdown after an agent crash; the test that
runs this module checks ours stops within the deadline all the same.
"""
from __future__ import annotations

import os

from deskstream.faustapp import Worker, create_app
from deskstream.settings import ServiceSettings

settings = ServiceSettings.from_env("crashing", int(os.environ["CRASHING_HTTP_PORT"]))
app = create_app(settings)
source = app.topic(os.environ["CRASHING_TOPIC"], value_serializer="raw", partitions=settings.kafka.partitions)


@app.agent(source)
async def crash_on_first_record(stream):
    async for value in stream:
        print("CRASHING NOW", flush=True)
        raise RuntimeError("this agent crashes on purpose")


if __name__ == "__main__":
    Worker(app, loglevel="info").execute_from_commandline()
