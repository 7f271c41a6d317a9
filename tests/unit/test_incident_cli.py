"""`deskstream incident ...`: the requests it sends, what it prints, how it fails; and
the same commands against the real incident routes (services/notifier/incidents_api.py)
with a pipeline that records what would go to Kafka."""
import asyncio
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from aiohttp import web

from deskstream import cli
from deskstream.contract import default_contract
from deskstream.events import Event
from deskstream.pipeline import NotStored
from deskstream.topics import INCIDENTS_EVENTS
from services.notifier.incidents_api import incident_routes, operator

TOKEN = "ops-token-for-tests-0123456789abcdef"


# The CLI against a stub that records each request and answers what a test set up

class Stub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.answer: Any = {"ok": True}
        self.url = ""


@pytest.fixture()
def stub(monkeypatch) -> Iterator[Stub]:
    recorded = Stub()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            recorded.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": json.loads(raw) if raw else None})
            payload = json.dumps(recorded.answer).encode()
            self.send_response(recorded.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    recorded.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("NOTIFIER_URL", recorded.url + "/")
    monkeypatch.setenv("NOTIFIER_OPS_TOKEN", TOKEN)
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_declare_posts_the_incident_with_the_ops_token_and_prints_the_answer(stub, capsys):
    stub.status, stub.answer = 201, {"incident_id": "INC-ABCDEFGH", "update_id": "u1"}
    cli.main(["incident", "declare", "--service", "fibre-madrid", "--region", "es", "--skill", "network",
              "--message", "Fibre is down.", "--message-es", "La fibra no funciona.", "--fix-at", "2026-05-04T18:00+02:00"])
    [sent] = stub.requests
    assert (sent["method"], sent["path"]) == ("POST", "/api/incidents")
    assert sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["body"] == {"service": "fibre-madrid", "region": "ES", "skill": "network",
                            "message": {"en": "Fibre is down.", "es": "La fibra no funciona."},
                            "expected_fix_at": "2026-05-04T18:00+02:00"}
    assert json.loads(capsys.readouterr().out) == {"incident_id": "INC-ABCDEFGH", "update_id": "u1"}


def test_declare_sends_only_what_was_given(stub):
    cli.main(["incident", "declare", "--service", "fibre-madrid", "--message", "Down."])
    assert stub.requests[0]["body"] == {"service": "fibre-madrid", "message": {"en": "Down."}}


@pytest.mark.parametrize("args, path, body", [
    (["update", "INC-ABCDEFGH", "--message", "Still down."], "/api/incidents/INC-ABCDEFGH/updates",
     {"message": {"en": "Still down."}}),
    (["update", "INC-ABCDEFGH", "--message", "Later.", "--fix-at", "2026-05-04T20:00Z"], "/api/incidents/INC-ABCDEFGH/updates",
     {"message": {"en": "Later."}, "expected_fix_at": "2026-05-04T20:00Z"}),
    (["update", "INC-ABCDEFGH", "--message", "No estimate.", "--no-fix-at"], "/api/incidents/INC-ABCDEFGH/updates",
     {"message": {"en": "No estimate."}, "expected_fix_at": None}),
    (["resolve", "INC-ABCDEFGH", "--message", "Fixed.", "--message-es", "Resuelto."], "/api/incidents/INC-ABCDEFGH/resolve",
     {"message": {"en": "Fixed.", "es": "Resuelto."}}),
    (["update", "../admin?x", "--message", "x"], "/api/incidents/..%2Fadmin%3Fx/updates", {"message": {"en": "x"}}),
])
def test_update_and_resolve_post_to_the_incident(stub, args, path, body):
    cli.main(["incident", *args])
    [sent] = stub.requests
    assert (sent["method"], sent["path"], sent["body"]) == ("POST", path, body)


def test_list_and_show_are_plain_gets(stub, capsys):
    stub.answer = {"incidents": []}
    cli.main(["incident", "list"])
    cli.main(["incident", "show", "INC-ABCDEFGH"])
    assert [(r["method"], r["path"], r["body"]) for r in stub.requests] == [
        ("GET", "/api/incidents", None), ("GET", "/api/incidents/INC-ABCDEFGH", None)]
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in stub.requests)


def test_a_refusal_exits_1_with_the_apis_error(stub, capsys):
    stub.status, stub.answer = 409, {"error": "incident INC-ABCDEFGH is resolved: it takes no more updates"}
    with pytest.raises(SystemExit) as exited:
        cli.main(["incident", "resolve", "INC-ABCDEFGH", "--message", "Fixed."])
    assert exited.value.code == 1
    output = capsys.readouterr()
    assert output.out == ""
    assert output.err.strip() == (
        "deskstream incident resolve: the notifier answered 409: incident INC-ABCDEFGH is resolved: it takes no more updates")


def test_without_a_token_nothing_is_sent(stub, monkeypatch, capsys):
    monkeypatch.delenv("NOTIFIER_OPS_TOKEN")
    with pytest.raises(SystemExit) as exited:
        cli.main(["incident", "list"])
    assert exited.value.code == 1 and stub.requests == []
    assert "NOTIFIER_OPS_TOKEN is not set" in capsys.readouterr().err


def test_an_unreachable_notifier_exits_1_and_names_the_url(monkeypatch, capsys):
    monkeypatch.setenv("NOTIFIER_OPS_TOKEN", TOKEN)
    monkeypatch.setenv("NOTIFIER_URL", "http://127.0.0.1:9")  # discard: nothing listens there
    with pytest.raises(SystemExit) as exited:
        cli.main(["incident", "list"])
    assert exited.value.code == 1
    assert "cannot reach the notifier at http://127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://notifier.example/", "notifier:8082"])
def test_the_ops_token_goes_only_to_an_http_url(monkeypatch, url):
    """urllib would open file: and ftp: URLs too (bandit B310); the token is never sent there."""
    opened: list[str] = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda request, timeout: opened.append(request.full_url))
    with pytest.raises(cli.NotifierError, match="NOTIFIER_URL must be an http"):
        cli.call_notifier("GET", "/api/incidents", env={"NOTIFIER_OPS_TOKEN": TOKEN, "NOTIFIER_URL": url})
    assert opened == []


def test_a_password_written_into_notifier_url_is_in_no_error(monkeypatch, capsys):
    monkeypatch.setenv("NOTIFIER_OPS_TOKEN", TOKEN)
    monkeypatch.setenv("NOTIFIER_URL", "http://ops:hunter2-in-the-url@127.0.0.1:9")  # discard: nothing listens
    with pytest.raises(SystemExit):
        cli.main(["incident", "list"])
    assert "cannot reach the notifier at http://***@127.0.0.1:9" in (err := capsys.readouterr().err)
    assert "hunter2" not in err
    with pytest.raises(cli.NotifierError) as refused:
        cli.call_notifier("GET", "/", env={"NOTIFIER_OPS_TOKEN": TOKEN, "NOTIFIER_URL": "ftp://ops:hunter2@notifier"})
    assert "hunter2" not in str(refused.value)


def test_the_default_url_is_the_notifiers_port(monkeypatch):
    opened: list[str] = []

    def urlopen(request: urllib.request.Request, timeout: float) -> Any:
        opened.append(request.full_url)
        raise urllib.error.URLError("refused")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(cli.NotifierError):
        cli.call_notifier("GET", "/api/incidents", env={"NOTIFIER_OPS_TOKEN": TOKEN})
    assert opened == ["http://127.0.0.1:8082/api/incidents"]


# The CLI (and plain HTTP) against the real routes

class RecordingPipeline:
    """What incident_routes needs of a Pipeline: events checked against the contract, as
    Pipeline.publish checks them, and kept instead of sent; `refuse` plays a Kafka
    that does not acknowledge."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str, Event]] = []
        self.refuse = False

    def event(self, event_type: str, event_id: str, data: dict[str, Any], subject: str | None = None) -> Event:
        return Event(type=event_type, source="deskstream/notifier", id=event_id, data=data, subject=subject)

    async def publish(self, topic: str, key: str, event: Event) -> None:
        default_contract().check(event)
        if self.refuse:
            raise NotStored(f"{topic}: KafkaTimeoutError")
        self.published.append((topic, key, event))


class Incidents(dict):
    """The incidents table replica: rows a test writes as the incidents hop would."""

    def values(self) -> list[Any]:  # TableReplica.values() is a list
        return list(super().values())


class Notifier:
    def __init__(self, url: str, pipeline: RecordingPipeline, incidents: Incidents) -> None:
        self.url, self.pipeline, self.incidents = url, pipeline, incidents

    def request(self, method: str, path: str, body: bytes | None = None, token: str | None = TOKEN) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url + path, body, headers, method=method), timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())


def serve(routes: Any) -> Iterator[str]:
    """The routes on loopback, in an aiohttp server on its own loop and thread, with the
    64 KB body limit the notifier's HttpService has."""
    loop = asyncio.new_event_loop()
    application = web.Application(client_max_size=64 * 1024)
    routes(application)
    runner = web.AppRunner(application)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.fixture()
def notifier(monkeypatch) -> Iterator[Notifier]:
    pipeline, incidents = RecordingPipeline(), Incidents()
    for url in serve(incident_routes(pipeline, incidents, frozenset({"another-ops-token-0123456789abcdef", TOKEN}))):
        monkeypatch.setenv("NOTIFIER_URL", url)
        monkeypatch.setenv("NOTIFIER_OPS_TOKEN", TOKEN)
        yield Notifier(url, pipeline, incidents)


def as_the_hop_records(incidents: Incidents, declared: Event, status: str = "active") -> None:
    data = declared.data
    incidents[data["incident_id"]] = {
        "incident_id": data["incident_id"], "status": status, "service": data["service"], "region": data["region"],
        "skill": data["skill"], "message": data["message"], "expected_fix_at": data["expected_fix_at"],
        "declared_at": data["at"], "updates": []}


def test_declare_update_and_resolve_publish_the_incident_events(notifier, capsys):
    cli.main(["incident", "declare", "--service", "fibre-madrid", "--region", "ES", "--message", "Fibre is down.",
              "--fix-at", "2099-01-01T18:00+01:00"])
    answer = json.loads(capsys.readouterr().out)
    [(topic, key, declared)] = notifier.pipeline.published
    incident_id = answer["incident_id"]
    assert (topic, key, declared.type, declared.id, declared.subject) == (
        INCIDENTS_EVENTS, incident_id, "incident.declared", f"{incident_id}.declared", incident_id)
    assert declared.data["update_id"] == answer["update_id"]
    assert declared.data["expected_fix_at"] == "2099-01-01T17:00:00.000Z"
    assert declared.data["by"] == operator(TOKEN) and TOKEN not in declared.encode().decode()

    as_the_hop_records(notifier.incidents, declared)
    cli.main(["incident", "update", incident_id, "--message", "Engineers on site.", "--message-es", "Técnicos en camino."])
    update_id = json.loads(capsys.readouterr().out)["update_id"]
    updated = notifier.pipeline.published[-1][2]
    assert (updated.type, updated.id, updated.data["expected_fix_at"]) == (
        "incident.updated", f"{incident_id}.{update_id}", "2099-01-01T17:00:00.000Z")

    cli.main(["incident", "resolve", incident_id, "--message", "Fixed."])
    resolved = notifier.pipeline.published[-1][2]
    assert (resolved.type, resolved.id, resolved.data["message"]) == ("incident.resolved", f"{incident_id}.resolved", {"en": "Fixed."})
    assert {key for _, key, _ in notifier.pipeline.published} == {incident_id}


def test_a_resolved_incident_answers_409_and_the_cli_exits_1(notifier, capsys):
    notifier.incidents["INC-ABCDEFGH"] = {"incident_id": "INC-ABCDEFGH", "status": "resolved", "declared_at": "2026-05-04T10:00:00.000Z"}
    with pytest.raises(SystemExit) as exited:
        cli.main(["incident", "update", "INC-ABCDEFGH", "--message", "Again."])
    assert exited.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "deskstream incident update: the notifier answered 409: incident INC-ABCDEFGH is resolved: it takes no more updates")
    assert notifier.pipeline.published == []


@pytest.mark.parametrize("path", ["/api/incidents/INC-ZZZZZZZZ/updates", "/api/incidents/not-an-id/resolve"])
def test_an_unknown_incident_is_404(notifier, path):
    status, answer = notifier.request("POST", path, b'{"message": {"en": "x"}}')
    assert (status, answer["error"]) == (404, "no such incident (a new one may take a second to show)")
    assert notifier.request("GET", "/api/incidents/INC-ZZZZZZZZ")[0] == 404


def test_list_shows_every_incident_newest_first_and_show_one_as_stored(notifier, capsys):
    older = {"incident_id": "INC-AAAAAAAA", "status": "resolved", "declared_at": "2026-05-01T10:00:00.000Z", "updates": [{"x": 1}]}
    newer = {"incident_id": "INC-BBBBBBBB", "status": "active", "declared_at": "2026-05-04T10:00:00.000Z", "updates": []}
    notifier.incidents.update({"INC-AAAAAAAA": older, "INC-BBBBBBBB": newer})
    cli.main(["incident", "list"])
    assert json.loads(capsys.readouterr().out) == {"incidents": [newer, older]}
    assert notifier.request("GET", "/api/incidents/INC-AAAAAAAA") == (200, older)


def test_the_api_wants_one_of_the_ops_tokens(notifier):
    assert notifier.request("GET", "/api/incidents", token=None) == (
        401, {"error": "an ops token is required (Authorization: Bearer ...)"})
    assert notifier.request("GET", "/api/incidents", token="guess") == (401, {"error": "the ops token is not valid"})
    assert notifier.request("GET", "/api/incidents", token="another-ops-token-0123456789abcdef")[0] == 200


def test_without_configured_tokens_every_route_answers_503():
    for url in serve(incident_routes(RecordingPipeline(), Incidents(), frozenset())):
        for method, path in [("GET", "/api/incidents"), ("POST", "/api/incidents"), ("DELETE", "/api/subscriptions")]:
            notifier = Notifier(url, RecordingPipeline(), Incidents())
            assert notifier.request(method, path, b"{}") == (503, {"error": "no NOTIFIER_OPS_TOKEN is configured"})


@pytest.mark.parametrize("body, status, error", [
    (b"{not json", 400, "the body must be JSON"),
    (b"", 400, "the body must be JSON"),
    (b'{"service": "fibre-madrid", "message": {"fr": "En panne"}}', 400, "message languages are en and es only"),
    (b'{"service": "fibre-madrid", "message": {"en": "' + b"x" * 70_000 + b'"}}', 413, "the body is larger than 65536 bytes"),
])
def test_bad_bodies_get_json_errors(notifier, body, status, error):
    assert notifier.request("POST", "/api/incidents", body) == (status, {"error": error})
    assert notifier.pipeline.published == []


def test_an_idempotency_key_makes_a_retried_declare_the_same_incident(notifier):
    body = b'{"service": "fibre-madrid", "message": {"en": "Down."}}'

    def declare(key: str) -> dict[str, Any]:
        request = urllib.request.Request(notifier.url + "/api/incidents", body, method="POST",
                                         headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    assert declare("retry-1") == declare("retry-1") != declare("retry-2")
    assert len({event.id for _, _, event in notifier.pipeline.published}) == 2


def test_kafka_not_acknowledging_is_503(notifier):
    notifier.pipeline.refuse = True
    status, answer = notifier.request("POST", "/api/incidents", b'{"service": "fibre-madrid", "message": {"en": "Down."}}')
    assert status == 503 and answer["error"].startswith("not stored; retry")


def test_subscriptions_take_bodies_past_the_servers_64_kb_limit_and_publish_one_event_each(notifier):
    subscribers = [{"service": "fibre-madrid", "recipient": {"channel": "email", "address": f"customer{n:05}@example.com"},
                    "language": "es"} for n in range(1200)]
    body = json.dumps({"subscriptions": subscribers}).encode()
    assert len(body) > 64 * 1024
    assert notifier.request("POST", "/api/subscriptions", body) == (202, {"count": 1200})
    published = notifier.pipeline.published
    assert len(published) == 1200 and {event.type for _, _, event in published} == {"subscription.added"}
    assert [key for _, key, _ in published][:2] == ["fibre-madrid|email:customer00000@example.com",
                                                   "fibre-madrid|email:customer00001@example.com"]
    assert len({event.id for _, _, event in published}) == 1200


def test_a_subscriptions_body_over_2_mb_is_413(notifier):
    body = b'{"subscriptions": [' + b" " * (2 * 1024 * 1024) + b"]}"
    assert notifier.request("POST", "/api/subscriptions", body) == (413, {"error": "the body is larger than 2097152 bytes"})


def test_unsubscribing_publishes_subscription_removed_on_the_subscriptions_key(notifier):
    body = b'{"service": "fibre-madrid", "recipient": {"channel": "sms", "address": "+34 600 11 22 33"}}'
    assert notifier.request("DELETE", "/api/subscriptions", body) == (202, {"count": 1})
    [(topic, key, event)] = notifier.pipeline.published
    assert (topic, key, event.type, event.subject) == (INCIDENTS_EVENTS, "fibre-madrid|sms:+34600112233", "subscription.removed", "fibre-madrid")
    assert event.id.startswith("subscription.removed.fibre-madrid.")
