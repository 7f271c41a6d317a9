"""The Kafka semantics deskstream relies on, checked against the running broker with
bare aiokafka clients, so that a broker or client upgrade that changes them fails
here, by name, rather than somewhere in the pipeline.

Every test creates its own uniquely named topics (the broker never auto-creates
them) and every wait is bounded. The broker-restart tests restart the session's
shared broker: they come last in this file and leave it running.
"""
from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.broker.helpers import Child, create_topic, produce, read_partitions, unique, until

pytestmark = pytest.mark.integration

SESSION_TIMEOUT_MS = 6000
RECOVERY_BOUND_S = 30.0


def group_member(bootstrap: str, group: str, **options) -> AIOKafkaConsumer:
    """A consumer-group member with the small timeouts the failover tests need."""
    settings = dict(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=SESSION_TIMEOUT_MS // 6,
        rebalance_timeout_ms=SESSION_TIMEOUT_MS, max_poll_interval_ms=2 * SESSION_TIMEOUT_MS,
    )
    settings.update(options)
    return AIOKafkaConsumer(**settings)


async def keep_polling(consumer: AIOKafkaConsumer, into: list) -> None:
    """Poll as a worker would (a member that stops polling is evicted), keeping records."""
    while True:
        for records in (await consumer.getmany(timeout_ms=100)).values():
            into.extend(records)


def partitions_of(consumer: AIOKafkaConsumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


def child_partitions(child: Child) -> set[int]:
    line = child.last("ASSIGNED")
    return {int(p) for p in line.split(" ", 1)[1].split(",") if p} if line and " " in line else set()


async def test_consumer_group_members_split_the_partitions_between_them(kafka):
    """Running two replicas of a worker doubles throughput only if the group gives each
    a disjoint share of the partitions: no partition twice (double processing), none
    left out (stalled tickets)."""
    topic = await create_topic(kafka.bootstrap, "split", 4)
    group = unique("split-group")
    members = [group_member(kafka.bootstrap, group) for _ in range(2)]
    polls: list[asyncio.Task] = []
    try:
        for member in members:
            member.subscribe([topic])
            await member.start()
            polls.append(asyncio.create_task(keep_polling(member, [])))

        def split() -> bool:
            first, second = (partitions_of(m) for m in members)
            return bool(first) and bool(second) and not first & second and first | second == {0, 1, 2, 3}

        await until(split, 20, f"a disjoint split of 4 partitions, got {[partitions_of(m) for m in members]}")
        first, second = (partitions_of(m) for m in members)
        assert first and second and not first & second and first | second == {0, 1, 2, 3}
    finally:
        for poll in polls:
            poll.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        for member in members:
            await member.stop()


async def test_a_group_takes_over_the_partitions_of_a_killed_member_within_its_session_timeout(kafka):
    """A worker killed by SIGKILL (OOM killer, node loss) sends no LeaveGroup: its
    partitions are stuck until the coordinator notices the missing heartbeats. Tickets
    on them must flow again, through a surviving replica, within the session timeout
    plus a rebalance, not after minutes."""
    topic = await create_topic(kafka.bootstrap, "failover", 4)
    group = unique("failover-group")
    survivor = group_member(kafka.bootstrap, group)
    received: list = []
    poll: asyncio.Task | None = None
    with Child("member", kafka.bootstrap, topic, group, str(SESSION_TIMEOUT_MS)) as child:
        try:
            await child.wait_for(lambda line: line.startswith("ASSIGNED ") and line != "ASSIGNED ", 30, "the child has partitions")
            survivor.subscribe([topic])
            await survivor.start()
            poll = asyncio.create_task(keep_polling(survivor, received))
            await until(
                lambda: partitions_of(survivor) and child_partitions(child)
                and partitions_of(survivor) | child_partitions(child) == {0, 1, 2, 3}
                and not partitions_of(survivor) & child_partitions(child),
                20, "the child and the survivor share the partitions",
            )
            doomed_share = child_partitions(child)

            # The child really is a working member: it consumes its own share.
            await produce(kafka.bootstrap, topic, {p: [f"before-{p}"] for p in range(4)})
            for p in doomed_share:
                await child.wait_for(lambda line, p=p: line.startswith(f"GOT {p} ") and line.endswith(f"before-{p}"), 10, f"the child reads before-{p}")

            child.kill()
            killed_at = time.monotonic()
            after = {p: [f"after-{p}"] for p in range(4)}
            await produce(kafka.bootstrap, topic, after)

            def everything_after_read() -> bool:
                return {r.value.decode() for r in received} >= {v for vs in after.values() for v in vs}

            try:
                await until(everything_after_read, RECOVERY_BOUND_S, "the survivor reads every partition")
            finally:
                elapsed = time.monotonic() - killed_at
            seen_by_partition = {r.partition for r in received if r.value.decode().startswith("after-")}
            assert seen_by_partition == {0, 1, 2, 3}, f"after {elapsed:.1f} s the survivor read from {seen_by_partition}"
            assert partitions_of(survivor) == {0, 1, 2, 3}
            assert elapsed < RECOVERY_BOUND_S, (
                f"the survivor took over partitions {sorted(doomed_share)} {elapsed:.1f} s after the kill "
                f"(session timeout {SESSION_TIMEOUT_MS / 1000:.0f} s)"
            )
            print(f"failover: partitions {sorted(doomed_share)} taken over {elapsed:.1f} s after SIGKILL")
        finally:
            if poll is not None:
                poll.cancel()
                await asyncio.gather(poll, return_exceptions=True)
            await survivor.stop()


async def test_committed_offsets_survive_a_consumer_restart(kafka):
    """A worker restarted (deploy, crash after commit) must resume right after the last
    offset it committed, per partition: nothing processed twice, nothing skipped."""
    topic = await create_topic(kafka.bootstrap, "resume", 2)
    group = unique("resume-group")
    sent = {p: [f"p{p}-r{i}" for i in range(10)] for p in range(2)}
    await produce(kafka.bootstrap, topic, sent, acks="all")
    process = {0: 3, 1: 6}  # how many records of each partition the first run handles

    first = group_member(kafka.bootstrap, group)
    first.subscribe([topic])
    handled: dict[int, list[str]] = {0: [], 1: []}
    last_offset: dict[int, int] = {}
    try:
        await first.start()
        deadline = time.monotonic() + 20
        while any(len(handled[p]) < n for p, n in process.items()) and time.monotonic() < deadline:
            for tp, records in (await first.getmany(timeout_ms=200)).items():
                for record in records:
                    if len(handled[tp.partition]) < process[tp.partition]:
                        handled[tp.partition].append(record.value.decode())
                        last_offset[tp.partition] = record.offset
        assert handled == {p: sent[p][:n] for p, n in process.items()}
        await first.commit({TopicPartition(topic, p): offset + 1 for p, offset in last_offset.items()})
    finally:
        await first.stop()

    second = group_member(kafka.bootstrap, group)
    second.subscribe([topic])
    resumed: dict[int, list[str]] = {0: [], 1: []}
    try:
        await second.start()
        for p, n in process.items():
            assert await second.committed(TopicPartition(topic, p)) == n
        expected = {p: sent[p][n:] for p, n in process.items()}
        deadline = time.monotonic() + 20
        settle_until: float | None = None
        while time.monotonic() < deadline:
            for tp, records in (await second.getmany(timeout_ms=200)).items():
                resumed[tp.partition] += [r.value.decode() for r in records]
            if all(len(resumed[p]) >= len(expected[p]) for p in expected):
                settle_until = settle_until or time.monotonic() + 1.0
                if time.monotonic() >= settle_until:
                    break
        assert resumed == expected
    finally:
        await second.stop()


async def test_end_offsets_match_what_batched_produces_wrote(kafka):
    """Lag, replay and reconciliation read end offsets: after batched, concurrent sends
    they must equal exactly what was acknowledged per partition, and reading back must
    return exactly the values sent, in send order."""
    partitions, per_partition = 3, 200
    topic = await create_topic(kafka.bootstrap, "ends", partitions)
    sent = {p: [f"p{p}-n{i}" for i in range(per_partition)] for p in range(partitions)}
    acked = await produce(kafka.bootstrap, topic, sent, acks="all", linger_ms=20, max_batch_size=4096)
    assert acked == {p: list(range(per_partition)) for p in range(partitions)}

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        await consumer.start()
        assert await consumer.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert await consumer.end_offsets(tps) == {tp: per_partition for tp in tps}
    finally:
        await consumer.stop()
    assert await read_partitions(kafka.bootstrap, topic, partitions, partitions * per_partition) == sent


async def test_a_killed_transactional_producer_is_fenced_and_its_records_stay_invisible(kafka):
    """Exactly-once hops write through transactions. When such a writer dies mid-
    transaction, its replacement (same transactional id) must fence it and abort what
    it left open: read_committed consumers then never see the dead writer's records,
    and are not held back until the transaction timeout (60 s) aborts it."""
    partitions, count = 2, 5
    topic = await create_topic(kafka.bootstrap, "txn", partitions)
    transactional_id = unique("txn-id")
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    doomed = {f"doomed-{p}-{i}" for p in range(partitions) for i in range(count)}

    with Child("txn", kafka.bootstrap, topic, transactional_id, str(partitions), str(count)) as child:
        await child.wait_for(lambda line: line == "READY", 30, "the child's transaction is open and flushed")
        child.kill()

    committed_reader = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, isolation_level="read_committed")
    uncommitted_reader = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, isolation_level="read_uncommitted")
    try:
        await committed_reader.start()
        await uncommitted_reader.start()
        # The open transaction is in the log, but holds the last stable offset back.
        assert await uncommitted_reader.end_offsets(tps) == {tp: count for tp in tps}
        assert await committed_reader.end_offsets(tps) == {tp: 0 for tp in tps}

        replacement = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, transactional_id=transactional_id)
        fresh = {p: [f"committed-{p}-{i}" for i in range(count)] for p in range(partitions)}
        try:
            started = time.monotonic()
            await replacement.start()  # InitProducerId: bumps the epoch, aborts the dead one's transaction
            async with replacement.transaction():
                for p, values in fresh.items():
                    for value in values:
                        await replacement.send(topic, value.encode(), partition=p)
            took = time.monotonic() - started
        finally:
            await replacement.stop()
        assert took < 30, f"fencing and committing took {took:.1f} s: was the old transaction left to time out?"

        stable = await committed_reader.end_offsets(tps)
        assert all(offset > count for offset in stable.values()), f"read_committed is still held back: {stable}"
    finally:
        await committed_reader.stop()
        await uncommitted_reader.stop()

    seen = await read_partitions(kafka.bootstrap, topic, partitions, partitions * count, isolation_level="read_committed")
    assert seen == fresh, "read_committed must see the replacement's records and none of the killed producer's"
    raw = await read_partitions(kafka.bootstrap, topic, partitions, 2 * partitions * count)
    assert {v for vs in raw.values() for v in vs} >= doomed, "the aborted records are in the log, just never committed"


# --- These restart the session's broker: keep them last in the file. -------------


@pytest.mark.parametrize("how", ["stop", "kill"], ids=["sigterm", "sigkill"])
def test_acknowledged_records_survive_a_broker_restart(kafka, how):
    """A record the broker acknowledged with acks=all is never lost to a broker
    restart, clean (SIGTERM, as a deploy does) or a process crash (SIGKILL: the
    written log is in the OS page cache, which a process crash does not lose)."""
    if kafka.local is None:
        pytest.skip("restarts the broker: only done to the local broker the suite starts itself, "
                    "not to the external cluster KAFKA_BOOTSTRAP_SERVERS names")
    partitions = 2
    sent = {p: [f"{how}-p{p}-{i}" for i in range(50)] for p in range(partitions)}

    async def write() -> None:
        topic = await create_topic(kafka.bootstrap, f"restart-{how}", partitions)
        await produce(kafka.bootstrap, topic, sent, acks="all", enable_idempotence=True, linger_ms=5)
        written.append(topic)

    async def back_and_read() -> dict[int, list[str]]:
        # Answering metadata is not being back: the restarted broker stays fenced for
        # a while (after SIGKILL, until its old registration's session expires). Hand
        # the rest of the session a broker that can create and lead a topic again.
        await create_topic(kafka.bootstrap, f"after-{how}", 1, timeout=30)
        return await read_partitions(kafka.bootstrap, topic, partitions, partitions * 50, timeout=30)

    # A plain test, not a coroutine: the broker must be restarted from the main thread
    # (LocalKafka.start() runs asyncio.run() inside, and its child gets SIGTERM when
    # the *thread* that started it ends: PR_SET_PDEATHSIG, so never asyncio.to_thread).
    written: list[str] = []
    asyncio.run(write())
    [topic] = written
    try:
        getattr(kafka.local, how)()
        kafka.local.start()
    finally:
        if not kafka.local.running:
            kafka.local.start()
    assert asyncio.run(back_and_read()) == sent
