"""The Faust worker each service runs in: lifecycle, signals, timers, HTTP server.

Faust hosts the service, and the service's hops run inside it as
`deskstream.processor.Processor`s (Kafka transactions) rather than Faust agents:
measured here, agents lose records when a worker restarts and double them after a
SIGKILL (README, "Reliability"). So Faust's own Kafka consumer and producer are
switched off with its documented boot-strategy switch, and nothing reads or writes
Kafka behind the processors' back.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import faust
from faust.app.base import BootStrategy

from deskstream.logs import logging_config
from deskstream.settings import ServiceSettings
from deskstream.topics import app_id

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 9.0


class HostBootStrategy(BootStrategy):
    """Start the worker's services, HTTP server and timers; no Faust consumer or producer."""

    enable_kafka = False


class ServiceApp(faust.App):
    BootStrategy = HostBootStrategy


def create_app(settings: ServiceSettings, **overrides: Any) -> faust.App:
    """A Faust app with deskstream's defaults; keyword arguments override them."""
    options: dict[str, Any] = dict(
        broker=settings.kafka.faust_broker,
        # Faust's own Kafka clients are off (HostBootStrategy), but should they ever be
        # on, they must not talk to the cluster less securely than the processors do.
        broker_credentials=settings.kafka.security.faust_credentials(),
        store="memory://",
        datadir=str(settings.data_dir),
        web_enabled=True,
        web_bind=settings.http_host,
        web_port=settings.http_port,
        logging_config=logging_config(settings.log_level, settings.name),
    )
    options.update(overrides)
    return ServiceApp(app_id(settings.name), **options)


class Worker(faust.Worker):
    """Faust's worker, with a hard stop deadline and no debugger on SIGUSR2.

    A worker that is asked to stop must be gone within 10 s (a stuck rebalance can
    otherwise hold it for minutes), so the first SIGTERM or SIGINT arms a watchdog
    that ends the process if the orderly stop has not finished in time.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        """No terminal spinner. Faust drives its spinner by setting the root logger to
        DEBUG (when LOG_LEVEL is warning or error), so every library then builds a record
        for every debug line only to drop it: 11% of the router's CPU under load (py-spy,
        bench.load), and the spinner's escapes went into the log files."""
        self.spinner = None

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        self.loop.remove_signal_handler(signal.SIGUSR2)
        self.loop.add_signal_handler(signal.SIGTERM, self._stop_within_deadline, signal.SIGTERM)
        self.loop.add_signal_handler(signal.SIGINT, self._stop_within_deadline, signal.SIGINT)

    def _stop_within_deadline(self, signum: signal.Signals) -> None:
        watchdog = threading.Timer(STOP_GRACE_SECONDS, _exit_now, args=(signum,))
        watchdog.daemon = True
        watchdog.start()
        self._schedule_shutdown(signum)


def _exit_now(signum: signal.Signals) -> None:
    log.error("orderly stop took longer than %.0f s; exiting", STOP_GRACE_SECONDS)
    logging.shutdown()
    os._exit(128 + int(signum))
