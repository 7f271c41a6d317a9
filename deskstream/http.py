"""The HTTP server each service runs inside its Faust worker (aiohttp).

Registered with `app.web_server(...)`, the Faust worker starts and stops it;
every service gets `/healthz`, `/readyz` (its hops hold their partitions too),
`/readyz/http` (it can take requests) and `/metrics`, and adds its own routes.
"""
from __future__ import annotations

import logging
from typing import Callable

from aiohttp import web
from mode import Service

from deskstream.pipeline import Pipeline

log = logging.getLogger(__name__)

RouteSetup = Callable[[web.Application], None]


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
