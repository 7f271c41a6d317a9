"""`deskstream`: start one service, the local Kafka, or everything; declare incidents.

    deskstream up                 local Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set),
                                  topics, and the four services; Ctrl-C stops it all
    deskstream run SERVICE        one service's Faust worker (intake, router, notifier, feedback)
    deskstream kafka              only the local Kafka, until Ctrl-C
    deskstream topics             create the topics on the configured cluster
    deskstream topics --kubernetes  print them as Strimzi KafkaTopic resources
    deskstream topics --kafka-users print each service's Kafka user and its ACLs (Strimzi KafkaUser)
    deskstream hash-password      an agent's password_argon2 for the roster
    deskstream incident declare --service S --message TEXT [--message-es TEXT]
                                  [--region ES] [--skill network] [--fix-at ISO]
    deskstream incident update ID --message TEXT [--message-es TEXT] [--fix-at ISO | --no-fix-at]
    deskstream incident resolve ID --message TEXT [--message-es TEXT]
    deskstream erase-customer [--email ADDRESS] [--phone NUMBER] [--customer-id ID]
                                  erase a customer's personal data everywhere deskstream
                                  keeps it (the notifier's POST /api/erasures); prints
                                  the erasure id; a value - is read from stdin
    deskstream incident list | show ID
                                  the notifier's incident API at NOTIFIER_URL (default
                                  http://127.0.0.1:8082), with the ops token in
                                  NOTIFIER_OPS_TOKEN (or the file NOTIFIER_OPS_TOKEN_FILE
                                  names); prints the JSON answer, and on a
                                  refusal the API's error, with exit status 1
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Mapping

from deskstream.localkafka import LocalKafka, die_with_parent
from deskstream.settings import PROJECT_ROOT, KafkaSettings, SettingsError, env_int, env_secret_text
from deskstream.topic_manifests import kafka_topics, kafka_users
from deskstream.topics import ensure_topics

SERVICES = ("intake", "router", "notifier", "feedback")
DEFAULT_PORTS = {"intake": 8080, "router": 8081, "notifier": 8082, "feedback": 8083}
STOP_GRACE_SECONDS = 12.0
DEFAULT_NOTIFIER_URL = "http://127.0.0.1:8082"
NOTIFIER_TIMEOUT_SECONDS = 15.0
SKILLS = ("network", "billing", "account", "hardware", "software", "general")


def data_dir() -> Path:
    return Path(os.environ.get("DESKSTREAM_DATA_DIR", PROJECT_ROOT / ".data"))


def run_service(name: str) -> None:
    from deskstream.faustapp import Worker

    module = importlib.import_module(f"services.{name}.app")
    Worker(module.app, loglevel=os.environ.get("LOG_LEVEL", "info")).execute_from_commandline()


# The signing keys and the ops token `deskstream up` makes for a local run unless the
# variable or its _FILE is set: the file each is kept in, under the data folder.
LOCAL_SECRETS = {
    "CHAT_SESSION_SECRET": "chat-session-secret",  # nosec B105  # a file's name, not a secret
    "ROUTER_SESSION_SECRET": "console-session-secret",  # nosec B105  # a file's name, not a secret
    "NOTIFIER_OPS_TOKEN": "ops-token",  # nosec B105  # a file's name, not a secret
    "FEEDBACK_SURVEY_SECRET": "survey-link-secret",  # nosec B105  # a file's name, not a secret
}


def local_secret(folder: Path, name: str) -> str:
    """A secret for local runs (chat sessions, console sessions): kept in the data folder
    across restarts, so that a restart signs nobody out."""
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        # Created readable by its owner only: written first and chmod-ed after, it
        # would be readable by every user of the host in between.
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(secrets.token_hex(32))
    return path.read_text().strip()


def add_local_secrets(env: dict[str, str], folder: Path) -> None:
    """Each of LOCAL_SECRETS that is not set, neither as NAME nor as NAME_FILE (which the
    services would refuse together), from its file under the data folder."""
    for name, file in LOCAL_SECRETS.items():
        if not (env.get(name, "").strip() or env.get(f"{name}_FILE", "").strip()):
            env[name] = local_secret(folder, file)


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
        if env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").strip().upper() not in ("", "PLAINTEXT"):
            sys.exit("KAFKA_SECURITY_PROTOCOL is set, but the local Kafka speaks only PLAINTEXT: "
                     "set KAFKA_BOOTSTRAP_SERVERS to the cluster it is meant for, or unset it")
        broker = local_kafka_from_env()
        print(f"starting the local Apache Kafka on {broker.bootstrap} ...", flush=True)
        broker.start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        asyncio.run(ensure_topics(KafkaSettings.from_env(env)))
        add_local_secrets(env, data_dir())
        env.setdefault("FEEDBACK_SURVEY_DELAY_SECONDS", "60")  # a local trial sees its survey a minute after resolving
        for name in SERVICES:
            processes[name] = subprocess.Popen(  # nosec B603  # this interpreter, a fixed argument list, a known service name
                [sys.executable, "-m", "deskstream.cli", "run", name], env=env, preexec_fn=die_with_parent
            )
        host = env.get("HTTP_HOST", "127.0.0.1")
        port = {name: env_int(env, f"{name.upper()}_HTTP_PORT", default) for name, default in DEFAULT_PORTS.items()}
        sms_webhook = (f"Twilio calls it as {env['PUBLIC_BASE_URL']}/webhooks/twilio/sms"
                       if (env.get("TWILIO_AUTH_TOKEN") or env.get("TWILIO_AUTH_TOKEN_FILE")) and env.get("PUBLIC_BASE_URL") else "off until TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL are set")
        print(
            "\ndeskstream is starting (each service answers once its tables are recovered):\n"
            f"  chat page          http://{host}:{port['intake']}/\n"
            f"  Twilio SMS webhook http://{host}:{port['intake']}/webhooks/twilio/sms ({sms_webhook})\n"
            f"  agent console      http://{host}:{port['router']}/console (seeded agents: password demo-<id>-2026)\n"
            f"  agent API          http://{host}:{port['router']}/api/openapi.json\n"
            f"  incident API       http://{host}:{port['notifier']}/api/incidents (deskstream incident ...; "
            f"export NOTIFIER_OPS_TOKEN_FILE={data_dir() / 'ops-token'})\n"
            f"  support figures    http://{host}:{port['feedback']}/api/metrics?by=channel\n"
            f"  ops dashboard      http://{host}:{port['feedback']}/dashboard (surveys go out "
            f"{env['FEEDBACK_SURVEY_DELAY_SECONDS']} s after a resolution)\n"
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


def without_credentials(url: str) -> str:
    """A URL as an error may show it: a user and password written into it
    (https://user:password@host) replaced by ***."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


class NotifierError(Exception):
    """The incident API refused a request (the message is its own error text), or could
    not be reached."""


def call_notifier(method: str, path: str, body: dict[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Any:
    """One request to the notifier's incident API, with the ops token; its JSON answer.

    Plain urllib: a CLI that runs once and exits needs no event loop, and no new
    dependency. The token goes in the header only, never on the command line (where
    other users of the host could read it in the process list)."""
    env = os.environ if env is None else env
    try:
        token = env_secret_text(env, "NOTIFIER_OPS_TOKEN")
    except SettingsError as error:
        raise NotifierError(str(error)) from None
    if not token:
        raise NotifierError("NOTIFIER_OPS_TOKEN is not set (nor NOTIFIER_OPS_TOKEN_FILE): the incident API needs an ops token")
    base = env.get("NOTIFIER_URL", "").strip().rstrip("/") or DEFAULT_NOTIFIER_URL
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        # urllib also opens file: and ftp: URLs; the ops token must only ever go to the notifier.
        raise NotifierError(f"NOTIFIER_URL must be an http:// or https:// URL, got {without_credentials(base)!r}")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body, ensure_ascii=False).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=NOTIFIER_TIMEOUT_SECONDS) as response:  # nosec B310  # http(s) only, checked above
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as refused:
        raw = refused.read()
        try:
            reason = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            reason = raw.decode("utf-8", "replace").strip()[:500] or refused.reason
        raise NotifierError(f"the notifier answered {refused.code}: {reason}") from None
    except (urllib.error.URLError, OSError) as unreachable:
        reason = getattr(unreachable, "reason", unreachable)
        raise NotifierError(f"cannot reach the notifier at {without_credentials(base)}: {reason}") from None


def incident_message(args: argparse.Namespace) -> dict[str, str]:
    return {"en": args.message, **({"es": args.message_es} if args.message_es is not None else {})}


def incident_request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """The method, path and body an `incident` subcommand stands for. The API checks
    the values; the CLI only shapes them (and writes a region in capitals)."""
    if args.action == "list":
        return "GET", "/api/incidents", None
    if args.action == "declare":
        body: dict[str, Any] = {"service": args.service, "message": incident_message(args)}
        if args.region is not None:
            body["region"] = args.region.upper()
        if args.skill is not None:
            body["skill"] = args.skill
        if args.fix_at is not None:
            body["expected_fix_at"] = args.fix_at
        return "POST", "/api/incidents", body
    path = "/api/incidents/" + urllib.parse.quote(args.incident_id, safe="")
    if args.action == "show":
        return "GET", path, None
    if args.action == "update":
        body = {"message": incident_message(args)}
        if args.fix_at is not None or args.no_fix_at:
            body["expected_fix_at"] = args.fix_at
        return "POST", path + "/updates", body
    return "POST", path + "/resolve", {"message": incident_message(args)}


def print_notifier_answer(command: str, request: Callable[[], tuple[str, str, dict[str, Any] | None]]) -> None:
    """Make the request (method, path, body) of the notifier's ops API and print its JSON
    answer; a request that cannot be made or is refused is printed on stderr with the
    reason, and the command exits with status 1."""
    try:
        answer = call_notifier(*request())
    except NotifierError as error:
        print(f"deskstream {command}: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    print(json.dumps(answer, indent=2, ensure_ascii=False))


def incident(args: argparse.Namespace) -> None:
    print_notifier_answer(f"incident {args.action}", lambda: incident_request(args))


def add_incident_commands(commands: Any) -> None:
    incidents = commands.add_parser("incident", help="declare, update, resolve or list incidents (the notifier's API)")
    actions = incidents.add_subparsers(dest="action", required=True)

    def messages(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--message", required=True, help="what customers are told, in English")
        parser.add_argument("--message-es", help="the same, in Spanish")

    declare = actions.add_parser("declare", help="a new incident")
    declare.add_argument("--service", required=True, help="the service that is down, such as fibre-madrid")
    declare.add_argument("--region", help="ISO 3166 country code (ES); everywhere if left out")
    declare.add_argument("--skill", choices=SKILLS, help="the kind of ticket it causes")
    declare.add_argument("--fix-at", help="expected fix time, ISO 8601 with offset (2026-05-04T18:00+02:00)")
    messages(declare)
    update = actions.add_parser("update", help="news on an active incident")
    update.add_argument("incident_id")
    messages(update)
    estimate = update.add_mutually_exclusive_group()
    estimate.add_argument("--fix-at", help="a new expected fix time, ISO 8601 with offset")
    estimate.add_argument("--no-fix-at", action="store_true", help="withdraw the expected fix time")
    resolve = actions.add_parser("resolve", help="the incident is over")
    resolve.add_argument("incident_id")
    messages(resolve)
    actions.add_parser("list", help="every incident, newest first")
    show = actions.add_parser("show", help="one incident with its updates")
    show.add_argument("incident_id")


def erasure_body(args: argparse.Namespace, stdin: Any = None) -> dict[str, list[str]]:
    """The body of POST /api/erasures: the identities given (the API checks them). A
    value `-` is read from standard input, a line each, so that an address or number
    need not show in the process list or the shell's history."""
    lines = iter(stdin or sys.stdin)

    def given(values: list[str]) -> list[str]:
        return [next(lines, "").strip() if value == "-" else value for value in values]

    body = {name: given(values) for name, values in (("email", args.email), ("phone", args.phone), ("customer_id", args.customer_id))
            if values}
    if not body:
        raise NotifierError("name the customer: --email, --phone and/or --customer-id")
    return body


def erase_customer(args: argparse.Namespace) -> None:
    print_notifier_answer("erase-customer", lambda: ("POST", "/api/erasures", erasure_body(args)))


def add_erasure_command(commands: Any) -> None:
    erase = commands.add_parser("erase-customer", help="erase a customer's personal data (the notifier's erasure API)")
    erase.add_argument("--email", action="append", default=[], help="an e-mail address of the customer (repeatable; - reads it from stdin)")
    erase.add_argument("--phone", action="append", default=[], help="a phone number of the customer, best in E.164 (repeatable)")
    erase.add_argument("--customer-id", action="append", default=[], help="a customer id (cus-...), e.g. of a chat-only customer")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="deskstream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="local Kafka, topics and every service")
    run = commands.add_parser("run", help="one service's worker")
    run.add_argument("service", choices=SERVICES)
    commands.add_parser("kafka", help="only the local Kafka")
    topics = commands.add_parser("topics", help="create the topics on KAFKA_BOOTSTRAP_SERVERS")
    topics.add_argument("--kubernetes", action="store_true",
                        help="print them as Strimzi KafkaTopic resources instead (deploy/base/kafka-topics.yaml)")
    topics.add_argument("--kafka-users", action="store_true",
                        help="print each service's Kafka user and its ACLs as Strimzi KafkaUser resources instead "
                             "(deploy/overlays/prod/kafka-users.yaml)")
    commands.add_parser("hash-password", help="an agent's password_argon2 for the roster (reads the password, never echoes it)")
    add_incident_commands(commands)
    add_erasure_command(commands)
    args = parser.parse_args(argv)
    if args.command == "up":
        up()
    elif args.command == "run":
        run_service(args.service)
    elif args.command == "kafka":
        kafka_only()
    elif args.command == "incident":
        incident(args)
    elif args.command == "erase-customer":
        erase_customer(args)
    elif args.command == "hash-password":
        from services.router.signin import hash_password

        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        if not password:
            sys.exit("no password given")
        print(hash_password(password))
    elif args.kubernetes:
        print(kafka_topics(), end="")
    elif args.kafka_users:
        print(kafka_users(), end="")
    else:
        created = asyncio.run(ensure_topics(KafkaSettings.from_env()))
        print("created: " + (", ".join(created) or "nothing (all topics exist)"))


if __name__ == "__main__":
    main()
