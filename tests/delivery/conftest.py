"""The delivery tests run the services with their real consumer groups and tables, so
they get a cluster of their own (unless KAFKA_BOOTSTRAP_SERVERS names one): what they
leave behind (thousands of assigned tickets) must not become the other tests' state."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from deskstream.localkafka import LocalKafka, free_port


@pytest.fixture(scope="module")
def delivery_kafka() -> Iterator[str]:
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    data_dir = Path(tempfile.mkdtemp(prefix="deskstream-delivery-kafka-"))
    broker = LocalKafka(data_dir, port=free_port(), controller_port=free_port())
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
