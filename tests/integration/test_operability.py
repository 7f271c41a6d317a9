"""What every service offers operators: health, readiness, metrics, JSON logs,
and an exit within 10 seconds after a hop crashed."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deskstream.localkafka import free_port
from deskstream.settings import PROJECT_ROOT
from tests.harness import SERVICES
from tests.integration.chat_client import ChatCustomer

pytestmark = pytest.mark.integration


async def test_every_service_answers_health_readiness_and_metrics(pipeline_services):
    async with aiohttp.ClientSession() as http:
        await ChatCustomer(http, pipeline_services["intake"].url).say("Metrics, please")
        await asyncio.sleep(2)
        for name in SERVICES:
            url = pipeline_services[name].url
            async with http.get(url + "/healthz") as response:
                assert (response.status, (await response.json())["service"]) == (200, name)
            async with http.get(url + "/readyz") as response:
                assert response.status == 200, await response.text()
            async with http.get(url + "/metrics") as response:
                metrics = await response.text()
            assert "deskstream_events_in_total" in metrics or name == "intake"
            assert f'deskstream_events_out_total{{service="{name}"' in metrics or name == "feedback", metrics[:2000]
            assert "deskstream_processing_seconds" in metrics


def test_logs_are_json_lines_without_customer_text(pipeline_services):
    secret_words = "Hola, mi internet no funciona"  # sent by the chat tests
    for name in SERVICES:
        lines = [line for line in pipeline_services[name].log_path.read_text().splitlines() if line.strip() and not line.startswith("---")]
        assert lines, name
        for line in lines:
            record = json.loads(line)
            assert {"ts", "level", "logger", "msg", "service"} <= set(record), line
        assert secret_words not in pipeline_services[name].log_path.read_text()


async def test_a_worker_whose_hop_crashed_exits_on_its_own_within_10_seconds(kafka, tmp_path):
    topic = f"crash-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        await admin.close()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "CRASHING_TOPIC": topic, "CRASHING_HTTP_PORT": str(free_port()),
        "DESKSTREAM_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "crashing.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "tests.integration.crashing_app"], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
        await producer.start()
        try:
            deadline = time.monotonic() + 60
            while "CRASHING NOW" not in log_path.read_text() and time.monotonic() < deadline:
                await producer.send_and_wait(topic, b"boom")
                await asyncio.sleep(1)
        finally:
            await producer.stop()
        assert "CRASHING NOW" in log_path.read_text(), log_path.read_text()[-3000:]
        start = time.monotonic()
        code = await asyncio.to_thread(worker.wait, 30)
        took = time.monotonic() - start
        assert code != 0, "a crashed worker must say so, for its supervisor to restart it"
        assert took < 10, f"exited {took:.1f} s after the crash"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
