"""The worker leaves the log level where LOG_LEVEL put it."""
from __future__ import annotations

import logging
from types import SimpleNamespace

from deskstream.faustapp import Worker


def test_the_worker_installs_no_spinner_and_keeps_the_root_level() -> None:
    root = logging.getLogger()
    before = root.level, list(root.handlers)
    worker = SimpleNamespace(spinner=object())
    try:
        root.setLevel(logging.WARNING)
        Worker.on_setup_root_logger(worker, root, logging.WARNING)  # type: ignore[arg-type]
        assert worker.spinner is None
        assert root.level == logging.WARNING, "Faust's spinner would have set DEBUG"
        assert not logging.getLogger("aiokafka.producer.sender").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(before[0])
        root.handlers[:] = before[1]
