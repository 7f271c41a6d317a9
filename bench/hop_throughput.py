"""How fast one hop forwards records: a Faust agent (at_least_once) against the same
work as a deskstream hop (one Kafka transaction per partition and batch), with its
contract validation of every input and output (as the services run) and without it
(the transactions alone; the Faust forwarder validates nothing).

Both count per key in a table and forward each record (tests/delivery/forward_app.py,
tests/delivery/forward_processor_app.py), each in its own worker process, on the same
pre-filled records, alternating, several rounds. The figure is records per second
from the first forwarded record to the last, read as a read_committed consumer sees
them; the ratio compares the two within the same run (these machines are shared).

    PYTHONPATH=. .venv/bin/python -m bench.hop_throughput [--records 20000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from deskstream.localkafka import LocalKafka, free_port
from tests.delivery.restarts import prepare


async def forwarded(bootstrap: str, sink: str, want: int, timeout: float) -> tuple[float, float, int]:
    """(first arrival, last arrival, records) on `sink`, by the wall clock of the reader."""
    consumer = AIOKafkaConsumer(sink, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    first = last = 0.0
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while seen < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            count = sum(len(records) for records in batch.values())
            if count:
                last = time.monotonic()
                first = first or last
                seen += count
    finally:
        await consumer.stop()
    return first, last, seen


# variant: (forwarder, environment)
VARIANTS = {
    "faust": ("faust", {}),
    "processor": ("processor", {}),
    "processor_unvalidated": ("processor", {"DELIVERY_VALIDATE": "0"}),
}


async def one_round(bootstrap: str, work: Path, variant: str, records: int) -> dict[str, float]:
    app, env = VARIANTS[variant]
    worker, _, sink = await prepare(bootstrap, work, records, extra_env=env, app=app)
    started = time.monotonic()
    worker.start()
    try:
        first, last, seen = await forwarded(bootstrap, sink, records, timeout=300)
    finally:
        await asyncio.to_thread(worker.signal, signal.SIGTERM)
    if seen < records:
        raise RuntimeError(f"{variant}: {seen} of {records} records forwarded; see {worker.log_path}")
    return {"records_per_s": records / max(last - first, 1e-3), "first_record_after_s": first - started}


async def run(bootstrap: str, work: Path, records: int, rounds: int) -> dict[str, object]:
    results: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
    for n in range(rounds):
        order = list(VARIANTS) if n % 2 == 0 else list(reversed(VARIANTS))
        for variant in order:
            folder = work / f"{variant}-{n}"
            folder.mkdir(parents=True, exist_ok=True)
            results[variant].append(await one_round(bootstrap, folder, variant, records))
    median = {app: statistics.median(r["records_per_s"] for r in rows) for app, rows in results.items()}
    return {
        "records": records, "rounds": rounds,
        "records_per_s": {app: [round(r["records_per_s"]) for r in rows] for app, rows in results.items()},
        "median_records_per_s": {app: round(v) for app, v in median.items()},
        "processor_to_faust": round(median["processor"] / median["faust"], 2),
        "processor_unvalidated_to_faust": round(median["processor_unvalidated"] / median["faust"], 2),
        "first_record_after_s": {app: [round(r["first_record_after_s"], 1) for r in rows] for app, rows in results.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap", help="an existing cluster (default: a local one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deskstream-bench-"))
    broker = None
    bootstrap = args.bootstrap
    if not bootstrap:
        broker = LocalKafka(work / "kafka", port=free_port(), controller_port=free_port())
        broker.start()
        bootstrap = broker.bootstrap
    try:
        print(json.dumps(asyncio.run(run(bootstrap, work, args.records, args.rounds)), indent=2))
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
