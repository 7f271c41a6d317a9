"""How fast an outage notice reaches its audience: notices per second from an
incident's declaration (the 201 of `POST /api/incidents`) until the far ends, a local
SMTP server (aiosmtpd) and the Twilio stand-in, hold one message per affected
customer, with the notifier's rate limits off (NOTIFIER_RATES="off"); and the time to the
first of them (the fan-out's latency). Against the ceiling, a bare loop in this
process that hands the same messages to the same senders (`SmtpPool.deliver`,
`TwilioSender.deliver`, the text composed per message as `Channels.send` does) with
the same number in flight per channel and no Kafka at all, in the same run.

    PYTHONPATH=. .venv/bin/python -m bench.notices [--customers 3000] [--rounds 3] [--concurrency 8]

One notifier worker (NOTIFIER_CONCURRENCY, default 8: sends in flight per channel
and SMTP connections) on a Kafka of its own, quiet hours off. Each round subscribes
a new audience to a new service (half e-mail, half SMS, both languages), waits until
the notifier's subscriptions table has every row (untimed), declares the incident and
polls the far ends' counts. Rounds alternate ceiling and notifier so that both see
the same machine load, after a warm-up of each; the medians are reported, as are the
CPU seconds the notifier, the broker and this process (the far ends live here) spent
in each timed window, and the notifier's memory after the run.

Every round is also checked address by address at the far ends: exactly one message
per recipient, none missing, none twice, none to anyone else. A failure is printed
loudly and listed in the JSON line.

Caveats: the far ends and the bare loop share this process (and its GIL), while the
notifier has a process of its own, so the ceiling is if anything an underestimate.
The bare loop's SMS carry a status-callback URL of the same form as the notifier's,
but to a closed port: the stand-in's callbacks fail at connect, where in the
notifier's rounds they are real requests the notifier answers (it records them).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer

from deskstream.localkafka import free_port
from deskstream.topics import changelog_topic
from services.notifier import delivery, incident_requests, incidents
from services.notifier.channels import text_of
from services.notifier.email import compose
from services.notifier.settings import NotifierSettings, SmtpSettings, TwilioSettings
from services.notifier.smtp import SmtpPool
from services.notifier.twilio_sms import TwilioSender
from tests.harness import ServiceProcess, own_kafka, service_env
from tests.mailserver import SmtpCapture
from tests.twilio_api import SUPPORT_NUMBER, TwilioApi

OPS_TOKEN = "bench-notices-ops-token-0123456789abcdef"  # nosec B105  # the bench's own throwaway notifier on loopback
SUPPORT = "soporte@deskstream.test"
MESSAGE = {"en": "A fibre cable was cut.", "es": "Se ha cortado un cable de fibra."}
POLL_SECONDS = 0.005
TICK = os.sysconf("SC_CLK_TCK")


# --- the audience --------------------------------------------------------------------------

def service_name(tag: int) -> str:
    return f"fibra-{tag:03d}"  # same length every round: the same text length


def audience(count: int, tag: int) -> list[dict[str, Any]]:
    """`count` subscribers, e-mail and SMS in turn, each language on both channels;
    addresses are new for each `tag` (each round), so every round is counted apart."""
    people = []
    for n in range(count):
        if n % 2 == 0:
            recipient = {"channel": "email", "address": f"c{tag:03d}-{n:05d}@example.test"}
        else:
            recipient = {"channel": "sms", "address": f"+346{tag:03d}{n:05d}"}
        people.append({"recipient": recipient, "language": ("es", "en")[(n // 2) % 2], "name": f"Cliente {n}"})
    return people


def far_end_counts(smtp_messages: list[Any], twilio_messages: list[Any]) -> Counter[str]:
    """Messages per address (e-mail recipients as the server got them, SMS numbers)."""
    counts: Counter[str] = Counter()
    for _, rcpts, _ in smtp_messages:
        counts.update(rcpts)
    counts.update(sent.to for sent in twilio_messages)
    return counts


def exactly_once(counts: Counter[str], people: list[dict[str, Any]]) -> dict[str, Any]:
    """What is wrong with `counts` as one message per person (empty: nothing)."""
    expected = {p["recipient"]["address"].lower() for p in people}
    missing = sorted(expected - set(counts))
    twice = {address: n for address, n in counts.items() if address in expected and n > 1}
    strangers = sorted(set(counts) - expected)
    problems: dict[str, Any] = {}
    if missing:
        problems["missing"] = {"count": len(missing), "first": missing[:5]}
    if twice:
        problems["more_than_once"] = {"count": len(twice), "messages": sum(twice.values()), "first": dict(list(twice.items())[:5])}
    if strangers:
        problems["to_others"] = {"count": len(strangers), "first": strangers[:5]}
    return problems


# --- processes' CPU and memory ---------------------------------------------------------------

def cpu_seconds(pid: int | None) -> float:
    """User and system CPU seconds of a process so far (0.0 if it cannot be read)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15 of stat)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = round(int(value.split()[0]) / 1024, 1)
    return found


class CpuWindow:
    """CPU seconds spent by the notifier, the broker and this process between start and stop."""

    def __init__(self, notifier_pid: int | None, broker_pid: int | None) -> None:
        self.pids = {"notifier": notifier_pid, "broker": broker_pid}
        self._started: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {**{name: cpu_seconds(pid) for name, pid in self.pids.items()}, "bench": own_cpu_seconds()}

    def start(self) -> None:
        self._started = self._now()

    def stop(self) -> None:
        now = self._now()
        self.spent = {name: round(now[name] - self._started[name], 2) for name in now}


async def quiet(pids: list[int | None], timeout: float = 30.0) -> None:
    """Wait until the processes use under a tenth of a core between them (the notifier
    recording outcomes and receipts, callbacks, the broker's flushes): each round starts
    on an idle machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(0.5)
        if sum(cpu_seconds(pid) for pid in pids) - before < 0.05:
            return


# --- the notifier --------------------------------------------------------------------------

class IncidentApi:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def call(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.session.post(f"{self.url}{path}", json=body,
                                     headers={"Authorization": f"Bearer {OPS_TOKEN}"}) as response:
            return response.status, await response.json(content_type=None)

    async def subscribe(self, service: str, people: list[dict[str, Any]]) -> None:
        for start in range(0, len(people), incident_requests.MAX_SUBSCRIPTIONS):
            chunk = [{"service": service, **p} for p in people[start:start + incident_requests.MAX_SUBSCRIPTIONS]]
            status, answer = await self.call("/api/subscriptions", {"subscriptions": chunk})
            if status != 202:
                raise RuntimeError(f"subscribing answered {status}: {answer}")


class SubscriptionRows:
    """Follows the notifier's subscriptions changelog (committed records), to start the
    clock only once the incidents hop has every subscriber of a round in its table."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(changelog_topic("notifier", "subscriptions"), bootstrap_servers=bootstrap,
                                         auto_offset_reset="earliest", enable_auto_commit=False,
                                         isolation_level="read_committed")
        self.keys: dict[str, set[bytes]] = {}

    async def wait(self, service: str, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.keys.get(service, ())) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.keys.get(service, ()))} of {count} subscriptions to {service} "
                                   f"in the notifier's table after {timeout:.0f} s")
            for records in (await self.consumer.getmany(timeout_ms=200, max_records=10000)).values():
                for record in records:
                    if record.value is not None:
                        self.keys.setdefault(orjson.loads(record.value)["service"], set()).add(record.key)


async def notifier_round(api: IncidentApi, rows: SubscriptionRows, smtp: SmtpCapture, twilio: TwilioApi,
                         cpu: CpuWindow, count: int, tag: int) -> dict[str, Any]:
    people, service = audience(count, tag), service_name(tag)
    await api.subscribe(service, people)
    await rows.wait(service, count)
    smtp_from, twilio_from = len(smtp.messages), len(twilio.messages)
    before = smtp_from + twilio_from
    cpu.start()
    status, answer = await api.call("/api/incidents", {"service": service, "message": MESSAGE})
    declared = time.perf_counter()
    if status != 201:
        raise RuntimeError(f"declaring answered {status}: {answer}")
    timeout = max(120.0, count / 20)
    first = last = None
    arrived, gap, progressed = 0, 0.0, declared
    while arrived < count and time.perf_counter() - declared < timeout:
        await asyncio.sleep(POLL_SECONDS)
        now, was = time.perf_counter(), arrived
        arrived = len(smtp.messages) + len(twilio.messages) - before
        if arrived and first is None:
            first = now
        if arrived > was:
            if first != now:
                gap = max(gap, now - progressed)  # the longest stall after the first notice
            progressed = now
    last = time.perf_counter()
    cpu.stop()
    await quiet([cpu.pids["notifier"], cpu.pids["broker"]])  # late duplicates, if any, arrive meanwhile
    counts = far_end_counts(smtp.messages[smtp_from:], twilio.messages[twilio_from:])
    seconds = last - declared
    return {"subject": "notifier", "messages": count, "arrived": arrived, "seconds": seconds,
            "per_s": arrived / seconds, "first_ms": None if first is None else (first - declared) * 1000,
            "longest_stall_s": round(gap, 2), "cpu_s": cpu.spent, "problems": exactly_once(counts, people), "timed_out": arrived < count}


# --- the ceiling: the same senders, no Kafka -----------------------------------------------

def declared_incident(service: str) -> dict[str, Any]:
    """An incident as the incidents hop folds a declaration, for the notices' text."""
    data = {"incident_id": incident_requests.new_incident_id(), "update_id": incident_requests.new_update_id(),
            "service": service, "region": None, "skill": None, "message": MESSAGE, "expected_fix_at": None,
            "by": "ops:bench000", "at": "2026-12-02T10:00:00.000Z"}
    incident = incidents.fold(None, "incident.declared", data)
    assert incident is not None
    return incident


class BareLoop:
    """`SmtpPool` and `TwilioSender` called directly, `concurrency` in flight per channel
    (a semaphore each, as the outbox's lanes have), each message composed as
    `Channels.send` composes it."""

    def __init__(self, smtp: SmtpSettings, twilio: TwilioSettings, concurrency: int) -> None:
        self.smtp_settings, self.twilio_settings = smtp, twilio
        self.concurrency = concurrency
        self.pool = SmtpPool(smtp, size=concurrency)
        self.sender = TwilioSender(twilio)

    async def __aenter__(self) -> "BareLoop":
        await self.sender.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pool.close()
        await self.sender.stop()

    async def _email(self, request: dict[str, Any]) -> str:
        s = self.smtp_settings
        message = compose(request, text_of(request), from_address=s.from_address, from_name=s.from_name,
                          domain=s.message_id_domain)
        return (await self.pool.deliver(message)).status

    async def _sms(self, request: dict[str, Any]) -> str:
        t = self.twilio_settings
        outcome = await self.sender.deliver("sms", request["recipient"]["address"],
                                            delivery.phone_text("sms", text_of(request), t.max_segments),
                                            delivery.status_callback_url(t.public_base_url, request))
        return outcome.status

    async def _lane(self, requests: list[dict[str, Any]], send: Any, done: list[float], statuses: Counter[str]) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        tasks = []

        def finished(task: asyncio.Future[str]) -> None:
            slots.release()
            done.append(time.perf_counter())
            statuses[task.result() if not task.cancelled() and task.exception() is None else "error"] += 1

        for request in requests:
            await slots.acquire()
            task = asyncio.ensure_future(send(request))
            task.add_done_callback(finished)
            tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def round(self, smtp: SmtpCapture, twilio: TwilioApi, cpu: CpuWindow, count: int, tag: int) -> dict[str, Any]:
        people = audience(count, tag)
        incident = declared_incident(service_name(tag))
        requests = [incidents.notice(incident, incidents.member(p["recipient"], p["language"], p["name"])) for p in people]
        emails = [r for r in requests if r["recipient"]["channel"] == "email"]
        texts = [r for r in requests if r["recipient"]["channel"] == "sms"]
        smtp_from, twilio_from = len(smtp.messages), len(twilio.messages)
        done: list[float] = []
        statuses: Counter[str] = Counter()
        cpu.start()
        started = time.perf_counter()
        await asyncio.gather(self._lane(emails, self._email, done, statuses), self._lane(texts, self._sms, done, statuses))
        last = time.perf_counter()
        cpu.stop()
        await quiet([cpu.pids["broker"]])
        counts = far_end_counts(smtp.messages[smtp_from:], twilio.messages[twilio_from:])
        problems = exactly_once(counts, people)
        if set(statuses) != {"sent"}:
            problems["outcomes"] = dict(statuses)
        arrived = sum(counts.values())
        seconds = last - started
        return {"subject": "bare", "messages": count, "arrived": arrived, "seconds": seconds, "per_s": count / seconds,
                "first_ms": (min(done) - started) * 1000 if done else None,
                "longest_stall_s": round(max((b - a for a, b in zip(sorted(done), sorted(done)[1:])), default=0.0), 2),
                "cpu_s": cpu.spent, "problems": problems,
                "timed_out": False}


# --- the run -------------------------------------------------------------------------------

async def measure(notifier: ServiceProcess, broker_pid: int | None, bootstrap: str, smtp: SmtpCapture, twilio: TwilioApi,
                  env: dict[str, str], count: int, rounds: int, concurrency: int) -> dict[str, Any]:
    assert notifier.process is not None
    cpu = CpuWindow(notifier.process.pid, broker_pid)
    bare_twilio = TwilioSettings.from_env({**env, "NOTIFIER_PUBLIC_BASE_URL": f"http://127.0.0.1:{free_port()}"})
    smtp_settings = SmtpSettings.from_env(env)
    assert bare_twilio is not None and smtp_settings is not None
    rows = SubscriptionRows(bootstrap)
    await rows.consumer.start()
    results: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession() as session, BareLoop(smtp_settings, bare_twilio, concurrency) as bare:
            api = IncidentApi(session, notifier.url)
            warm = min(200, count)  # connections, producers' batches, code paths
            warm_ups = [await bare.round(smtp, twilio, cpu, warm, 0), await notifier_round(api, rows, smtp, twilio, cpu, warm, 1)]
            for run in range(rounds):
                for result in (await bare.round(smtp, twilio, cpu, count, 200 + run),
                               await notifier_round(api, rows, smtp, twilio, cpu, count, 100 + run)):
                    results.append({"round": run + 1, **result})
                    print_row(results[-1])
            await quiet([cpu.pids["notifier"], cpu.pids["broker"]])
    finally:
        await rows.consumer.stop()
    # Once more over the whole run, after everything settled: a late or repeated send
    # shows up here even if it came after its round was counted.
    everything = far_end_counts(smtp.messages, twilio.messages)
    repeated = {address: n for address, n in everything.items() if n > 1}
    return {"results": results, "warm_ups": warm_ups, "repeated_over_run": repeated}


def print_row(r: dict[str, Any]) -> None:
    cpu = r["cpu_s"]
    first = f"{r['first_ms']:.0f}" if r["first_ms"] is not None else "-"
    check = "yes" if not r["problems"] else "NO"
    print(f"{r['round']:>5}  {r['subject']:<8}  {r['arrived']:>5}/{r['messages']:<5}  {r['seconds']:>7.2f}  {r['per_s']:>7.0f}  "
          f"{first:>8}  {r['longest_stall_s']:>8.2f}  {cpu['notifier']:>6.2f} {cpu['broker']:>6.2f} {cpu['bench']:>6.2f}  {check}",
          flush=True)
    if r["problems"]:
        print(f"       !!! {r['subject']} round {r['round']}: NOT exactly one message per recipient: "
              f"{json.dumps(r['problems'])}", flush=True)
    if r["timed_out"]:
        print(f"       !!! {r['subject']} round {r['round']}: only {r['arrived']} of {r['messages']} arrived in time", flush=True)


def summary(measured: dict[str, Any], memory: dict[str, float], args: argparse.Namespace) -> dict[str, Any]:
    by = {kind: [r for r in measured["results"] if r["subject"] == kind] for kind in ("bare", "notifier")}
    median = lambda kind, key: statistics.median(r[key] for r in by[kind] if r[key] is not None)  # noqa: E731
    cpu = lambda kind, name: statistics.median(r["cpu_s"][name] for r in by[kind])  # noqa: E731
    problems = [{"round": r.get("round", "warm-up"), "subject": r["subject"], **r["problems"]}
                for r in (*measured["warm_ups"], *measured["results"]) if r["problems"]]
    if measured["repeated_over_run"]:
        problems.append({"over_the_run": "more than one message", "count": len(measured["repeated_over_run"]),
                         "first": dict(list(measured["repeated_over_run"].items())[:5])})
    shortfalls = [r for r in measured["results"] if r["timed_out"]]
    return {
        "customers": args.customers, "concurrency": args.concurrency, "rounds": args.rounds,
        "bare_per_s": round(median("bare", "per_s")),
        "notifier_per_s": round(median("notifier", "per_s")),
        "notifier_to_bare": round(median("notifier", "per_s") / median("bare", "per_s"), 3),
        "notifier_first_ms": round(median("notifier", "first_ms"), 1),
        "notifier_longest_stall_s": max(r["longest_stall_s"] for r in by["notifier"]),
        "bare_first_ms": round(median("bare", "first_ms"), 1),
        "notifier_cpu_s_per_1000": round(cpu("notifier", "notifier") / args.customers * 1000, 2),
        "broker_cpu_s_per_1000": round(cpu("notifier", "broker") / args.customers * 1000, 2),
        "bare_cpu_s_per_1000": round(cpu("bare", "bench") / args.customers * 1000, 2),
        "notifier_rss_mb": memory.get("VmRSS"), "notifier_peak_rss_mb": memory.get("VmHWM"),
        "cpus": os.cpu_count(),
        "exactly_once": not problems and not shortfalls,
        "problems": problems + [{"round": r["round"], "subject": r["subject"], "arrived": r["arrived"]} for r in shortfalls],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if args.customers < 2 or args.customers > 99999 or args.rounds < 1 or args.concurrency < 1:
        parser.error("--customers 2 to 99999, --rounds and --concurrency at least 1")
    work = Path(tempfile.mkdtemp(prefix="deskstream-bench-notices-"))
    try:
        with own_kafka("bench-notices") as broker, SmtpCapture() as smtp, TwilioApi() as twilio:
            env = service_env(
                broker.bootstrap, work, LOG_LEVEL="warning",
                SMTP_HOST=smtp.host, SMTP_PORT=str(smtp.port), SMTP_STARTTLS="false", MAIL_FROM=SUPPORT,
                TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token, TWILIO_SMS_FROM=SUPPORT_NUMBER,
                TWILIO_API_URL=twilio.url, NOTIFIER_RATES="off", NOTIFIER_QUIET_HOURS="off", NOTIFIER_OPS_TOKEN=OPS_TOKEN,
                NOTIFIER_CONCURRENCY=str(args.concurrency),
            )
            env["NOTIFIER_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['NOTIFIER_HTTP_PORT']}"
            if NotifierSettings.from_env(env).rates:  # what "no limits" is spelt has changed once already
                raise SystemExit(f"the notifier would run with rate limits {NotifierSettings.from_env(env).rates}: not this benchmark")
            notifier = ServiceProcess("notifier", env, work).start()
            try:
                notifier.wait_ready()
                assert notifier.process is not None
                log_from = notifier.log_path.stat().st_size  # start-up's complaints (no broker leader yet) are not the run's
                broker_process = getattr(broker, "_process", None)
                print(f"notifier pid {notifier.process.pid}, log {notifier.log_path}; {args.customers} customers a round, "
                      f"concurrency {args.concurrency}, {os.cpu_count()} CPUs", file=sys.stderr, flush=True)
                print("round  subject   arrived      seconds    per_s  first_ms  stall_s  cpu_s: notifier broker bench  exactly_once")
                measured = asyncio.run(measure(notifier, broker_process.pid if broker_process else None, broker.bootstrap,
                                               smtp, twilio, env, args.customers, args.rounds, args.concurrency))
                memory = memory_mb(notifier.process.pid)
                if notifier.process.poll() is not None:
                    raise RuntimeError(f"the notifier exited during the run:\n{notifier.log_tail()}")
            finally:
                notifier.stop()
            result = summary(measured, memory, args)
            print(f"median: bare {result['bare_per_s']}/s, notifier {result['notifier_per_s']}/s "
                  f"(ratio {result['notifier_to_bare']}), first notice after {result['notifier_first_ms']} ms; "
                  f"notifier RSS {memory.get('VmRSS')} MB (peak {memory.get('VmHWM')} MB)")
            if not result["exactly_once"]:
                print("!!! NOT EVERY RECIPIENT GOT EXACTLY ONE MESSAGE: see problems", flush=True)
            with open(notifier.log_path, "rb") as log:
                log.seek(log_from)
                logged = log.read().decode(errors="replace")
            complaints = [line for line in logged.splitlines()
                          if any(f'"level":"{level}"' in line for level in ("warning", "error", "critical")) or "Traceback" in line]
            if complaints:
                print(f"the notifier logged {len(complaints)} warnings or errors during the run; the last ones:",
                      *complaints[-8:], sep="\n  ")
            print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
