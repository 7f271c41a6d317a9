"""While Kafka is down, Twilio's webhook gets a 5xx (so that Twilio tries again), and
the retry that gets through, with the same MessageSid, makes exactly one ticket.

On a broker of its own, which the test stops and starts again."""
from __future__ import annotations

import asyncio
import time

import pytest

from deskstream.topics import TICKETS_EVENTS
from tests.harness import ServiceProcess, own_kafka, read_topic, running, service_env, wait_for_events
from tests.twilio_api import AUTH_TOKEN, inbound_sms, post_signed

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_and_intake(tmp_path):
    with own_kafka("outage") as broker:
        env = service_env(broker.bootstrap, tmp_path, TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_WEBHOOK_PUBLISH_TIMEOUT_SECONDS="3")
        env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['INTAKE_HTTP_PORT']}"
        with running(ServiceProcess("intake", env, tmp_path)) as (intake,):
            yield broker, intake


async def test_an_sms_taken_while_kafka_is_down_is_retried_by_twilio_into_one_ticket(broker_and_intake):
    broker, intake = broker_and_intake
    url = f"{intake.url}/webhooks/twilio/sms"
    form = inbound_sms(sender="+34655443322", body="Se ha caído la línea de la oficina")

    await asyncio.to_thread(broker.stop)
    status, _ = await post_signed(url, form)
    assert status == 503

    await asyncio.to_thread(broker.start)
    deadline = time.monotonic() + 90
    while (status := (await post_signed(url, form))[0]) != 200 and time.monotonic() < deadline:
        await asyncio.sleep(2)  # as Twilio would, until the answer is a success
    assert status == 200

    # A later message from the number follows, on the same partition, anything the
    # first attempt left in the producer's buffer: once it is in, all is in.
    marker = inbound_sms(sender="+34655443322", body="¿Alguna novedad?")
    assert (await post_signed(url, marker))[0] == 200
    await wait_for_events(broker.bootstrap, TICKETS_EVENTS,
                          lambda e: (e.data.get("sms") or {}).get("message_sid") == marker["MessageSid"], 1, 90)
    events = [e for e in await read_topic(broker.bootstrap, TICKETS_EVENTS)
              if (e.data.get("sms") or {}).get("message_sid") == form["MessageSid"]]
    assert [e.type for e in events] == ["ticket.created"]
