"""A service whose hop crashes (a bug outside any handler) on its first record.

A handler's exception only dead-letters its record; an exception in the hop's own
loop is a bug, and the worker must then exit by itself, promptly, so that its
supervisor restarts it (the state is in Kafka): never hang half-alive.
"""
from __future__ import annotations

import os

from deskstream.faustapp import Worker, create_app
from deskstream.pipeline import Pipeline
from deskstream.processor import Processor
from deskstream.settings import ServiceSettings

settings = ServiceSettings.from_env("crashing", int(os.environ["CRASHING_HTTP_PORT"]))
app = create_app(settings)
pipeline = Pipeline(app, settings)


class CrashingProcessor(Processor):
    async def _process(self, tp, records) -> None:
        print("CRASHING NOW", flush=True)
        raise RuntimeError("this hop crashes on purpose")


processor = pipeline.processor("crash", source=os.environ["CRASHING_TOPIC"])(lambda event, step: None)
processor.__class__ = CrashingProcessor


if __name__ == "__main__":
    Worker(app, loglevel="info").execute_from_commandline()
