"""`deskstream`: start one service, the local Kafka, or everything.

    deskstream up                 local Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set),
                                  topics, and the four services; Ctrl-C stops it all
    deskstream run SERVICE        one service's Faust worker (intake, router, notifier, feedback)
    deskstream kafka              only the local Kafka, until Ctrl-C
    deskstream topics             create the topics on the configured cluster
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from deskstream.localkafka import LocalKafka, die_with_parent
from deskstream.settings import PROJECT_ROOT, KafkaSettings, env_int
from deskstream.topics import ensure_topics

SERVICES = ("intake", "router", "notifier", "feedback")
DEFAULT_PORTS = {"intake": 8080, "router": 8081, "notifier": 8082, "feedback": 8083}
STOP_GRACE_SECONDS = 12.0


def data_dir() -> Path:
    return Path(os.environ.get("DESKSTREAM_DATA_DIR", PROJECT_ROOT / ".data"))


def run_service(name: str) -> None:
    from deskstream.faustapp import Worker

    module = importlib.import_module(f"services.{name}.app")
    Worker(module.app, loglevel=os.environ.get("LOG_LEVEL", "info")).execute_from_commandline()


def local_secret(folder: Path, name: str) -> str:
    """A secret for local runs (chat sessions, console sessions): kept in the data folder
    across restarts, so that a restart signs nobody out."""
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def local_kafka_from_env() -> LocalKafka:
    return LocalKafka(
        data_dir() / "kafka",
        port=env_int(os.environ, "LOCAL_KAFKA_PORT", 9092),
        controller_port=env_int(os.environ, "LOCAL_KAFKA_CONTROLLER_PORT", 9093),
    )


def wait_for_signal() -> None:
    stop = {"signal": None}

    def handler(signum: int, frame: object) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while stop["signal"] is None:
        time.sleep(0.2)


def stop_processes(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, process in processes.items():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in {STOP_GRACE_SECONDS:.0f} s; killing it", file=sys.stderr)
            process.kill()
            process.wait()


def up() -> None:
    """Everything on one host, as separate processes, stopped together."""
    env = dict(os.environ)
    broker: LocalKafka | None = None
    if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        broker = local_kafka_from_env()
        print(f"starting the local Apache Kafka on {broker.bootstrap} ...", flush=True)
        broker.start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        asyncio.run(ensure_topics(KafkaSettings.from_env(env)))
        env.setdefault("CHAT_SESSION_SECRET", local_secret(data_dir(), "chat-session-secret"))
        env.setdefault("ROUTER_SESSION_SECRET", local_secret(data_dir(), "console-session-secret"))
        for name in SERVICES:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "deskstream.cli", "run", name], env=env, preexec_fn=die_with_parent
            )
        host = env.get("HTTP_HOST", "127.0.0.1")
        port = {name: env_int(env, f"{name.upper()}_HTTP_PORT", default) for name, default in DEFAULT_PORTS.items()}
        sms_webhook = (f"Twilio calls it as {env['PUBLIC_BASE_URL']}/webhooks/twilio/sms"
                       if env.get("TWILIO_AUTH_TOKEN") and env.get("PUBLIC_BASE_URL") else "off until TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL are set")
        print(
            "\ndeskstream is starting (each service answers once its tables are recovered):\n"
            f"  chat page          http://{host}:{port['intake']}/\n"
            f"  Twilio SMS webhook http://{host}:{port['intake']}/webhooks/twilio/sms ({sms_webhook})\n"
            f"  agent console      http://{host}:{port['router']}/console (seeded agents: password demo-<id>-2026)\n"
            f"  agent API          http://{host}:{port['router']}/api/openapi.json\n"
            f"  notifier           http://{host}:{port['notifier']}/healthz\n"
            f"  support figures    http://{host}:{port['feedback']}/api/figures/daily\n"
            f"  health / metrics   /healthz, /readyz and /metrics on each port\n"
            f"  Kafka              {env['KAFKA_BOOTSTRAP_SERVERS']}\n"
            "Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        wait_for_signal()
    finally:
        print("stopping the services ...", flush=True)
        stop_processes(processes)
        if broker is not None:
            print("stopping the local Kafka ...", flush=True)
            broker.stop()


def kafka_only() -> None:
    with local_kafka_from_env() as broker:
        asyncio.run(ensure_topics(KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, **_partition_env()})))
        print(f"local Apache Kafka on {broker.bootstrap}; Ctrl-C stops it", flush=True)
        wait_for_signal()


def _partition_env() -> dict[str, str]:
    return {key: os.environ[key] for key in ("KAFKA_TOPIC_PARTITIONS", "KAFKA_REPLICATION_FACTOR") if key in os.environ}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="deskstream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="local Kafka, topics and every service")
    run = commands.add_parser("run", help="one service's worker")
    run.add_argument("service", choices=SERVICES)
    commands.add_parser("kafka", help="only the local Kafka")
    commands.add_parser("topics", help="create the topics on KAFKA_BOOTSTRAP_SERVERS")
    commands.add_parser("hash-password", help="an agent's password_argon2 for the roster (reads the password, never echoes it)")
    args = parser.parse_args(argv)
    if args.command == "up":
        up()
    elif args.command == "run":
        run_service(args.service)
    elif args.command == "kafka":
        kafka_only()
    elif args.command == "hash-password":
        from services.router.signin import hash_password

        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        if not password:
            sys.exit("no password given")
        print(hash_password(password))
    else:
        created = asyncio.run(ensure_topics(KafkaSettings.from_env()))
        print("created: " + (", ".join(created) or "nothing (all topics exist)"))


if __name__ == "__main__":
    main()
