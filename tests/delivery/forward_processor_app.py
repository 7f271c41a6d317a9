"""forward_app.py's count-and-forward as a deskstream hop (deskstream.processor), hosted
like the services are, so both can be measured on the same records. Prints
TABLE_TOTAL=<n> every second."""
from __future__ import annotations

import functools
import os
import time

from deskstream.contract import default_contract
from deskstream.events import Event
from deskstream.faustapp import Worker, create_app
from deskstream.metrics import ServiceMetrics
from deskstream.pipeline import deadletter_event
from deskstream.processor import Processor, Step
from deskstream.settings import ServiceSettings
from deskstream.topics import app_id

settings = ServiceSettings.from_env(os.environ["DELIVERY_APP"], int(os.environ["DELIVERY_HTTP_PORT"]))
app = create_app(settings, logging_config=None, web_enabled=False)
SINK = os.environ["DELIVERY_OUT"]
DELAY = float(os.environ.get("DELIVERY_DELAY", "0"))


class UncheckedContract:
    """For measuring the transactions alone: accepts every event without validating it."""

    def validate(self, envelope: dict) -> None:
        return None

    def check(self, event: Event) -> Event:
        return event


CONTRACT = UncheckedContract() if os.environ.get("DELIVERY_VALIDATE") == "0" else default_contract()


def count_and_forward(event: Event, step: Step) -> None:
    counts = step.table("counts")
    key = event.subject or ""
    counts[key] = counts.get(key, 0) + 1
    step.emit(SINK, key, event)
    if DELAY:
        time.sleep(DELAY)  # stands for a handler's own work (handlers are plain functions)


forward = Processor(
    name="forward", group_id=app_id(settings.name), service=settings.name, source=os.environ["DELIVERY_IN"],
    handler=count_and_forward, tables=("counts",), kafka=settings.kafka, contract=CONTRACT,  # type: ignore[arg-type]
    metrics=ServiceMetrics(settings.name), deadletter=functools.partial(deadletter_event, "deskstream/delivery"),
)
app.add_dependency(forward)


@app.timer(1.0)
async def report_table_total() -> None:
    print(f"TABLE_TOTAL={sum(forward.values('counts'))}", flush=True)


if __name__ == "__main__":
    Worker(app, loglevel="warning").execute_from_commandline()
