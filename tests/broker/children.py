"""Kafka clients the broker contract tests run as child processes, so that a test can
kill them with a real SIGKILL, as a crash or an OOM kill would.

    python children.py member BOOTSTRAP TOPIC GROUP SESSION_TIMEOUT_MS
        A consumer-group member. Prints `ASSIGNED p,p,...` on every assignment and
        `GOT partition offset value` for every record, and commits after each batch.

    python children.py txn BOOTSTRAP TOPIC TRANSACTIONAL_ID PARTITIONS COUNT
        A transactional producer. Begins a transaction, sends COUNT records
        (`doomed-p-i`) to each partition, flushes them to the broker, prints `READY`
        and then sleeps inside the open transaction until it is killed.

Everything is printed with flush=True: the test reads stdout line by line.
This file imports only aiokafka, so it runs with the project's interpreter from any
directory.
"""
from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener


def say(*words: object) -> None:
    print(*words, flush=True)


class PrintAssignments(ConsumerRebalanceListener):
    async def on_partitions_revoked(self, revoked) -> None:
        say("REVOKED", ",".join(str(tp.partition) for tp in sorted(revoked)))

    async def on_partitions_assigned(self, assigned) -> None:
        say("ASSIGNED", ",".join(str(tp.partition) for tp in sorted(assigned)))


async def member(bootstrap: str, topic: str, group: str, session_timeout_ms: str) -> None:
    session = int(session_timeout_ms)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, client_id="contract-member-child",
        session_timeout_ms=session, heartbeat_interval_ms=max(session // 6, 100),
        rebalance_timeout_ms=session, max_poll_interval_ms=2 * session,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    consumer.subscribe([topic], listener=PrintAssignments())
    await consumer.start()
    say("STARTED")
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    say("GOT", tp.partition, record.offset, record.value.decode())
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()


async def txn(bootstrap: str, topic: str, transactional_id: str, partitions: str, count: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=transactional_id,
        # The broker's own abort (after this timeout) must not be what ends the
        # transaction: the test wants the next producer with this id to end it.
        transaction_timeout_ms=60000,
    )
    await producer.start()
    await producer.begin_transaction()
    for partition in range(int(partitions)):
        for i in range(int(count)):
            await producer.send(topic, f"doomed-{partition}-{i}".encode(), partition=partition)
    await producer.flush()
    say("READY")
    await asyncio.sleep(600)


if __name__ == "__main__":
    role, *arguments = sys.argv[1:]
    asyncio.run({"member": member, "txn": txn}[role](*arguments))
