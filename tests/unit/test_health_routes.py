"""/readyz says the whole worker is ready; /readyz/http only that it can take requests,
which is what a load balancer needs during a rebalance."""
from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from deskstream.http import health_routes


@dataclass
class StubPipeline:
    service: str = "intake"
    hops_ready: bool = True
    can_serve: bool = True

    def ready(self) -> bool:
        return self.can_serve and self.hops_ready

    def serving(self) -> bool:
        return self.can_serve


async def statuses(pipeline: StubPipeline) -> tuple[int, int, int]:
    application = web.Application()
    health_routes(pipeline)(application)  # type: ignore[arg-type]
    async with TestClient(TestServer(application)) as client:
        return tuple([(await client.get(path)).status for path in ("/healthz", "/readyz", "/readyz/http")])  # type: ignore[return-value]


async def test_a_worker_restoring_its_tables_is_alive_and_serving_but_not_ready() -> None:
    assert await statuses(StubPipeline(hops_ready=False)) == (200, 503, 200)


async def test_a_worker_without_kafka_or_with_replicas_behind_serves_nothing() -> None:
    assert await statuses(StubPipeline(can_serve=False)) == (200, 503, 503)


async def test_a_worker_with_everything_in_place_is_ready() -> None:
    assert await statuses(StubPipeline()) == (200, 200, 200)
