"""Fixtures shared by the whole suite.

`kafka` is the cluster the integration tests use: the one named by
KAFKA_BOOTSTRAP_SERVERS, or else a local Apache Kafka started once per run on free
ports and stopped (with its data removed) when the run ends.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from deskstream.localkafka import LocalKafka, free_port


class KafkaCluster:
    """What a test needs to know about the cluster, and (locally) how to crash it."""

    def __init__(self, bootstrap: str, local: LocalKafka | None) -> None:
        self.bootstrap = bootstrap
        self.local = local


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaCluster]:
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield KafkaCluster(given, None)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="deskstream-kafka-"))
    broker = LocalKafka(data_dir, port=free_port(), controller_port=free_port())
    broker.start()
    try:
        yield KafkaCluster(broker.bootstrap, broker)
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
