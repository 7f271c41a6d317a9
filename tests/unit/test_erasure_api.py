"""The erasure API (services/notifier/erasure_api.py) on loopback with a pipeline that
records what it would publish, and `deskstream erase-customer` against it: the token,
the refusals, the broadcast to every partition, and no address or number on any event."""
from __future__ import annotations

import asyncio
import io
import json
import threading
import urllib.error
import urllib.request
from typing import Any, Iterator

import pytest
from aiohttp import web

from deskstream import cli
from deskstream.contract import default_contract
from deskstream.events import Event
from deskstream.pipeline import NotStored
from deskstream.topics import INTAKE_RAW, TICKETS_EVENTS
from services.notifier.erasure_api import erasure_routes

TOKEN = "erasure-api-token-0123456789abcdef"
PARTITIONS = 3
EMAIL, PHONE = "Ana.Garcia@example.es", "+34600112233"


class Kafka:
    partitions = PARTITIONS


class RecordingPipeline:
    """What the routes need of a Pipeline: events checked against the contract and kept
    with their partition; `refuse` plays a Kafka that does not acknowledge."""

    kafka = Kafka()

    def __init__(self) -> None:
        self.published: list[tuple[str, str, int | None, Event]] = []
        self.refuse = False

    def event(self, event_type: str, event_id: str, data: dict[str, Any], subject: str | None = None) -> Event:
        return Event(type=event_type, source="deskstream/notifier", id=event_id, data=data, subject=subject)

    async def publish(self, topic: str, key: str, event: Event, *, partition: int | None = None) -> None:
        default_contract().check(event)
        if self.refuse:
            raise NotStored(f"{topic}: KafkaTimeoutError")
        self.published.append((topic, key, partition, event))


@pytest.fixture()
def api(monkeypatch) -> Iterator[tuple[str, RecordingPipeline]]:
    pipeline = RecordingPipeline()
    loop = asyncio.new_event_loop()
    application = web.Application()
    erasure_routes(pipeline, frozenset({TOKEN}), "ES")(application)  # type: ignore[arg-type]
    runner = web.AppRunner(application)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NOTIFIER_URL", url)
    monkeypatch.setenv("NOTIFIER_OPS_TOKEN", TOKEN)
    try:
        yield url, pipeline
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


def post(url: str, body: Any, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url + "/api/erasures", json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_an_erasure_goes_to_every_partition_of_intake_raw_and_its_notice_to_tickets_events(api):
    url, pipeline = api
    status, answer = post(url, {"email": EMAIL, "phone": "600 11 22 33"})
    assert status == 202 and answer["erasure_id"].startswith("erasure-")
    requested = [(p, e) for topic, _, p, e in pipeline.published if topic == INTAKE_RAW]
    assert sorted(p for p, _ in requested) == list(range(PARTITIONS))
    assert {e.type for _, e in requested} == {"erasure.requested"} and len({e.id for _, e in requested}) == PARTITIONS
    [(topic, key, partition, notice)] = [r for r in pipeline.published if r[0] == TICKETS_EVENTS]
    assert (notice.type, key, partition) == ("customer.erased", answer["erasure_id"], None)
    assert sorted(notice.data["customer_ids"]) == answer["customer_ids"]
    published = json.dumps([e.to_dict() for *_, e in pipeline.published]).lower()
    assert "ana.garcia" not in published and "600112233" not in published and "600 11 22 33" not in published


@pytest.mark.parametrize("token, body, status", [
    (None, {"email": EMAIL}, 401),
    ("a-wrong-token-0123456789abcdef0123", {"email": EMAIL}, 401),
    (TOKEN, {"name": "Ana"}, 400),
    (TOKEN, {}, 400),
    (TOKEN, {"phone": "not a number"}, 400),
    (TOKEN, ["x"], 400),
])
def test_a_request_without_the_token_or_naming_nobody_publishes_nothing(api, token, body, status):
    url, pipeline = api
    assert post(url, body, token)[0] == status
    assert pipeline.published == []


def test_kafka_away_is_503_and_asking_again_is_harmless(api):
    url, pipeline = api
    pipeline.refuse = True
    assert post(url, {"email": EMAIL})[0] == 503
    pipeline.refuse = False
    assert post(url, {"email": EMAIL})[0] == 202


def test_the_cli_reads_an_identity_from_stdin_and_prints_the_erasure(api, monkeypatch, capsys):
    url, pipeline = api
    monkeypatch.setattr("sys.stdin", io.StringIO(EMAIL + "\n"))
    cli.main(["erase-customer", "--email", "-", "--phone", PHONE])
    answer = json.loads(capsys.readouterr().out)
    [notice] = [e for topic, *_, e in pipeline.published if topic == TICKETS_EVENTS]
    assert notice.data["erasure_id"] == answer["erasure_id"] and len(answer["customer_ids"]) == 2


def test_the_cli_names_nobody_without_an_identity(api, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["erase-customer"])
    assert exited.value.code == 1 and "name the customer" in capsys.readouterr().err
