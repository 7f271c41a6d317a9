"""The HTTP server each service runs inside its Faust worker (aiohttp).

Registered with `app.web_server(...)`, the Faust worker starts and stops it;
every service gets `/healthz`, `/readyz` (its hops hold their partitions too),
`/readyz/http` (it can take requests) and `/metrics`, and adds its own routes.
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

from aiohttp import web
from mode import Service

from deskstream.limits import IPNetwork, KeyedLimiter, client_address, client_key, retry_after
from deskstream.metrics import ServiceMetrics
from deskstream.pipeline import Pipeline

log = logging.getLogger(__name__)

RouteSetup = Callable[[web.Application], None]


def request_client(request: web.BaseRequest, trusted_proxies: Sequence[IPNetwork] = ()) -> str:
    """The client's limiting key (deskstream.limits.client_address, then client_key): the
    peer, or behind `trusted_proxies` the right-most untrusted X-Forwarded-For entry."""
    forwarded = request.headers.getall("X-Forwarded-For", []) if trusted_proxies else []
    return client_key(client_address(request.remote, forwarded, trusted_proxies))


def too_many_requests(limit: str, seconds: float) -> web.Response:
    """429 for a request over `limit` (named in the answer, so that an operator reading
    a client's report knows which setting it hit), with `Retry-After` in whole seconds."""
    wait = retry_after(seconds)
    return web.json_response({"error": f"too many requests: {limit}; retry after {wait} s", "limit": limit},
                             status=429, headers={"Retry-After": wait})


def over_limit(limiter: KeyedLimiter, key: str, limit: str, metrics: ServiceMetrics) -> web.Response | None:
    """The 429 for a request over `limiter`'s limit for `key` (counted in the metrics
    as `rate limited: <limit>`), or None when it may go on."""
    wait = limiter.take(key)
    if wait <= 0:
        return None
    metrics.failed(f"rate limited: {limit}")
    return too_many_requests(limit, wait)


def health_routes(pipeline: Pipeline) -> RouteSetup:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": pipeline.service})

    async def readyz(request: web.Request) -> web.Response:
        ready = pipeline.ready()
        return web.json_response(
            {"status": "ready" if ready else "not ready", "service": pipeline.service}, status=200 if ready else 503
        )

    async def serving(request: web.Request) -> web.Response:
        """Kubernetes' readiness probe: whether this worker can take HTTP requests now."""
        ok = pipeline.serving()
        return web.json_response(
            {"status": "serving" if ok else "not serving", "service": pipeline.service}, status=200 if ok else 503
        )

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=pipeline.metrics.exposition(), content_type="text/plain", charset="utf-8")

    def setup(application: web.Application) -> None:
        application.router.add_get("/healthz", healthz)
        application.router.add_get("/readyz", readyz)
        application.router.add_get("/readyz/http", serving)
        application.router.add_get("/metrics", metrics)

    return setup


class HttpService(Service):
    """An aiohttp server with an explicit start/stop lifecycle."""

    def __init__(self, host: str, port: int, *setups: RouteSetup, client_max_size: int = 64 * 1024, **kwargs) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.port = port
        self.application = web.Application(client_max_size=client_max_size)
        for setup in setups:
            setup(self.application)
        self._runner: web.AppRunner | None = None

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def on_start(self) -> None:
        self._runner = web.AppRunner(self.application, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("http listening", extra={"url": self.web_url})

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
