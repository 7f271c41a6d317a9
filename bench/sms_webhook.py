"""How fast intake takes Twilio's SMS webhooks: requests per second and latency
percentiles of signed `POST /webhooks/twilio/sms` (signature checked, contact
published and acknowledged by Kafka before the answer), against the ceiling, the same
server's `GET /healthz`, which answers without doing anything, in the same run, from
the same loopback load generator (aiohttp, a fixed number of requests in flight).

    PYTHONPATH=. .venv/bin/python -m bench.sms_webhook [--requests 3000] [--concurrency 32] [--rounds 3]

Rounds alternate ceiling and webhook so that both see the same machine load; the
medians are reported. Each webhook request is a new message from its own number (a
new ticket), signed beforehand so that the generator spends no time on HMACs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from twilio.request_validator import RequestValidator

from deskstream.localkafka import LocalKafka, free_port
from deskstream.settings import KafkaSettings
from deskstream.topics import ensure_topics
from tests.harness import ServiceProcess, service_env
from tests.twilio_api import AUTH_TOKEN, inbound_sms, sign

TEXTS = ("No tengo internet desde ayer.", "My invoice is wrong.", "La app se cierra al abrirla.", "Cannot log in.")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(session: aiohttp.ClientSession, requests: list[tuple[str, str, dict, dict]], concurrency: int) -> dict[str, float]:
    """Send every request with `concurrency` in flight; requests per second and latency in ms."""
    latencies: list[float] = []
    failures = 0
    queue = iter(requests)

    async def worker() -> None:
        nonlocal failures
        for method, url, data, headers in queue:
            started = time.perf_counter()
            async with session.request(method, url, data=data or None, headers=headers) as response:
                await response.read()
                failures += response.status != 200
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    took = time.perf_counter() - started
    return {"per_s": len(requests) / took, "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
            "failures": failures}


def signed_requests(url: str, count: int, run: int) -> list[tuple[str, str, dict, dict]]:
    out = []
    for n in range(count):
        form = inbound_sms(sender=f"+3460{run % 100:02d}{n:05d}", body=TEXTS[n % len(TEXTS)])
        out.append(("POST", url, form, {"X-Twilio-Signature": sign(url, form)}))
    return out


def validation_cost_us(url: str, repeat: int = 20000) -> float:
    """What `RequestValidator.validate` alone costs per webhook form, in microseconds."""
    form = inbound_sms(sender="+34600000000", body=TEXTS[0])
    signature = sign(url, form)
    validator = RequestValidator(AUTH_TOKEN)
    started = time.perf_counter()
    for _ in range(repeat):
        validator.validate(url, form, signature)
    return (time.perf_counter() - started) / repeat * 1e6


async def measure(work: Path, broker: LocalKafka, count: int, concurrency: int, rounds: int) -> dict[str, object]:
    await ensure_topics(KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}))
    env = service_env(broker.bootstrap, work, LOG_LEVEL="warning", TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['INTAKE_HTTP_PORT']}"
    intake = ServiceProcess("intake", env, work).start()
    try:
        await asyncio.to_thread(intake.wait_ready)
        webhook, ceiling = f"{intake.url}/webhooks/twilio/sms", f"{intake.url}/healthz"
        results: dict[str, list[dict[str, float]]] = {"ceiling": [], "webhook": []}
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await drive(session, signed_requests(webhook, 200, 99), concurrency)  # warm-up: connections, producer batches
            for run in range(rounds):
                results["ceiling"].append(await drive(session, [("GET", ceiling, {}, {})] * count, concurrency))
                results["webhook"].append(await drive(session, signed_requests(webhook, count, run), concurrency))
    finally:
        intake.stop()
    median = {kind: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for kind, runs in results.items()}
    return {
        "requests_per_round": count, "concurrency": concurrency, "rounds": rounds,
        "ceiling_healthz_per_s": round(median["ceiling"]["per_s"]),
        "ceiling_p50_ms": round(median["ceiling"]["p50_ms"], 2), "ceiling_p99_ms": round(median["ceiling"]["p99_ms"], 2),
        "webhook_per_s": round(median["webhook"]["per_s"]),
        "webhook_p50_ms": round(median["webhook"]["p50_ms"], 2), "webhook_p99_ms": round(median["webhook"]["p99_ms"], 2),
        "webhook_to_ceiling": round(median["webhook"]["per_s"] / median["ceiling"]["per_s"], 3),
        "webhook_failures": sum(r["failures"] for r in results["webhook"]),
        "signature_check_us": round(validation_cost_us(webhook), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deskstream-bench-sms-"))
    broker = LocalKafka(work / "kafka", port=free_port(), controller_port=free_port())
    try:
        broker.start()
        print(json.dumps(asyncio.run(measure(work, broker, args.requests, args.concurrency, args.rounds)), indent=2))
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
