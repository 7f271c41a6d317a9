"""Secrets in the settings (issue 12): every password, token and signing key can come
from the environment or from a file (`<NAME>_FILE`, as Docker and Kubernetes mount
secrets), and none shows in a settings object's repr()/str() or in a SettingsError, so
that logging a settings object or a start-up failure never leaks one."""
from __future__ import annotations

import dataclasses
import logging
import logging.config
import re
import secrets
from pathlib import Path
from typing import Any, Iterator

import pytest
from aioimaplib import aioimaplib

from deskstream.cli import LOCAL_SECRETS, add_local_secrets
from deskstream.logs import logging_config
from deskstream.settings import KafkaSettings, SettingsError, env_secret_text
from services.feedback.settings import FeedbackSettings
from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.router.settings import RouterSettings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = (IntakeSettings, RouterSettings, NotifierSettings, FeedbackSettings)

# Every secret setting deskstream reads (README, Configuration).
SECRET_NAMES = (
    "KAFKA_SASL_PASSWORD", "CHAT_SESSION_SECRET", "IMAP_PASSWORD", "TWILIO_AUTH_TOKEN", "ROUTER_SESSION_SECRET",
    "SMTP_PASSWORD", "SENT_MAIL_IMAP_PASSWORD", "NOTIFIER_OPS_TOKEN", "FEEDBACK_SURVEY_SECRET",
)
# What turns the parts that hold them on (no IMAP host, no mailbox and no password read).
PLAIN = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9093", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "deskstream",
    "IMAP_HOST": "imap.example.com", "IMAP_USER": "support@example.com",
    "PUBLIC_BASE_URL": "https://support.example.com",
    "SMTP_HOST": "smtp.example.com", "SMTP_USER": "support@example.com", "MAIL_FROM": "support@example.com",
    "SENT_MAIL_IMAP_HOST": "imap.example.com", "SENT_MAIL_IMAP_USER": "archive@example.com",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_SMS_FROM": "+34600000000",
}


@pytest.fixture
def secret_values() -> dict[str, str]:
    """A distinct, unguessable value per secret: a match in a repr is never chance."""
    return {name: f"{name.lower()}-{secrets.token_hex(16)}" for name in SECRET_NAMES}


def _all_settings(env: dict[str, str]) -> list[Any]:
    return [KafkaSettings.from_env(env), *(service.from_env(env) for service in SERVICES)]


def _values(value: Any) -> Iterator[str]:
    """Every text a settings object holds, down through nested settings and collections."""
    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from _values(getattr(value, field.name))
    elif isinstance(value, (str, bytes)):
        yield value.decode() if isinstance(value, bytes) else value
    elif isinstance(value, (tuple, list, set, frozenset)):
        for item in value:
            yield from _values(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _values(item)


def test_no_secret_shows_in_the_repr_or_str_of_any_settings(secret_values: dict[str, str]) -> None:
    settings = _all_settings({**PLAIN, **secret_values})
    held = {text for item in settings for text in _values(item)}
    assert set(secret_values.values()) <= held, "every secret reached its settings (the check below means something)"
    for item in settings:
        shown = repr(item) + str(item)
        assert type(item).__name__ in shown
        leaked = [name for name, value in secret_values.items() if value in shown or value.split("-")[-1] in shown]
        assert not leaked, f"{type(item).__name__} shows {leaked}"


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_each_secret_can_come_from_a_file_instead(name: str, secret_values: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / name.lower()
    path.write_text(secret_values[name] + "\n")  # as `echo` writes it: the newline is not part of it
    path.chmod(0o400)
    from_env = _all_settings({**PLAIN, **secret_values})
    env = {**PLAIN, **secret_values, f"{name}_FILE": str(path)}
    del env[name]
    assert _all_settings(env) == from_env


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_secret_set_twice_or_in_an_unreadable_file_is_refused_without_quoting_it(
        name: str, secret_values: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(secret_values[name])
    cases = {
        "both": ({f"{name}_FILE": str(path)}, rf"set {name} or {name}_FILE, not both"),
        "missing": ({name: "", f"{name}_FILE": str(tmp_path / "absent")}, "cannot be read: No such file or directory"),
        "empty": ({name: "", f"{name}_FILE": str(tmp_path / "empty")}, "is empty"),
        "binary": ({name: "", f"{name}_FILE": str(tmp_path / "binary")}, "cannot be read: UnicodeDecodeError"),
    }
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe" + secret_values[name].encode())
    for case, (change, message) in cases.items():
        env = {**PLAIN, **secret_values, **change}
        errors = []
        for build in (KafkaSettings.from_env, *(service.from_env for service in SERVICES)):
            try:
                build(env)
            except SettingsError as error:
                errors.append(str(error))
        assert errors, f"{case}: refused"
        assert any(re.search(message, error) for error in errors), (case, errors)
        assert not [error for error in errors for value in secret_values.values() if value in error], case


@pytest.mark.parametrize("name", ["CHAT_SESSION_SECRET", "ROUTER_SESSION_SECRET", "NOTIFIER_OPS_TOKEN", "FEEDBACK_SURVEY_SECRET"])
def test_a_short_signing_key_is_refused_without_quoting_it(name: str, secret_values: dict[str, str]) -> None:
    short = "too-short-" + secrets.token_hex(4)
    errors = []
    for service in SERVICES:
        try:
            service.from_env({**PLAIN, **secret_values, name: short})
        except SettingsError as error:
            errors.append(str(error))
    assert errors == [f"{name} must be at least 32 characters"]


def test_a_kafka_password_without_sasl_is_refused_by_name_only(secret_values: dict[str, str]) -> None:
    env = {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "KAFKA_SASL_PASSWORD": secret_values["KAFKA_SASL_PASSWORD"]}
    with pytest.raises(SettingsError) as refused:
        KafkaSettings.from_env(env)
    assert "KAFKA_SASL_PASSWORD set" in str(refused.value)
    assert secret_values["KAFKA_SASL_PASSWORD"] not in str(refused.value)


def test_a_secret_from_a_variable_is_stripped_but_a_kafka_password_is_taken_as_written(tmp_path: Path) -> None:
    assert env_secret_text({"SMTP_PASSWORD": "  s3cret \n"}, "SMTP_PASSWORD") == "s3cret"
    assert env_secret_text({"KAFKA_SASL_PASSWORD": " s3cret "}, "KAFKA_SASL_PASSWORD", strip=False) == " s3cret "
    (tmp_path / "p").write_text(" s3cret \r\n")
    assert env_secret_text({"KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "p")}, "KAFKA_SASL_PASSWORD", strip=False) == " s3cret "
    assert env_secret_text({}, "SMTP_PASSWORD") == ""


def test_every_secret_setting_is_read_through_the_one_helper() -> None:
    """A new password, token or key read with env_str (or os.environ) would have no
    _FILE form and no care for its error messages: secrets go through
    env_secret_text / env_secret."""
    pattern = re.compile(r"""(env_str\(|environ\.get\(|environ\[|getenv\()\s*(env,\s*)?["'][A-Z_]*(PASSWORD|TOKEN|SECRET|_KEY)["']""")
    offenders = [f"{path.relative_to(ROOT)}:{number}" for folder in ("deskstream", "services")
                 for path in sorted((ROOT / folder).rglob("*.py"))
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if pattern.search(line)]
    assert not offenders


class _Sink:
    """Stands in for the socket: what aioimaplib would send."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def test_an_imap_password_is_in_no_log_line_even_at_debug_level(capsys: pytest.CaptureFixture[str]) -> None:
    """aioimaplib logs every command it sends at DEBUG, LOGIN with the password masked
    only as written: quoted (a password with a quote or a backslash) it shows. The
    services' logging keeps aioimaplib at WARNING whatever LOG_LEVEL says."""
    tail = secrets.token_hex(12)
    password = 'pa"ss\\' + tail
    root, imap = logging.getLogger(), logging.getLogger("aioimaplib")
    saved = (root.level, root.handlers[:], imap.level)

    def login_line() -> str:
        protocol = aioimaplib.IMAP4ClientProtocol(None)
        protocol.transport = _Sink()
        protocol.send(f"A1 LOGIN support {aioimaplib.quoted(password)}", scrub=password)
        assert tail.encode() in protocol.transport.written[0]  # it did go to the server
        return capsys.readouterr().err

    try:
        logging.config.dictConfig(logging_config("debug", "intake"))
        logged = login_line()
        imap.setLevel(logging.NOTSET)  # what aioimaplib would log left to itself: the check can see it
        unguarded = login_line()
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        imap.setLevel(saved[2])
    assert tail in unguarded
    assert tail not in logged


def test_make_run_keeps_its_own_secrets_private_and_leaves_configured_ones_alone(tmp_path: Path) -> None:
    """`deskstream up` (make run) generates the signing keys and the ops token into the
    data folder, readable by their owner only, unless the variable or its _FILE is set."""
    configured = tmp_path / "ops-token-from-a-secret-store"
    configured.write_text(secrets.token_hex(32) + "\n")
    env = {"CHAT_SESSION_SECRET": "c" * 40, "NOTIFIER_OPS_TOKEN_FILE": str(configured)}
    add_local_secrets(env, tmp_path / "data")
    assert env["CHAT_SESSION_SECRET"] == "c" * 40 and "NOTIFIER_OPS_TOKEN" not in env
    made = {path.name: path for path in (tmp_path / "data").iterdir()}
    assert set(made) == {"console-session-secret", "survey-link-secret"}
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in made.values())
    again = {"CHAT_SESSION_SECRET": "c" * 40, "NOTIFIER_OPS_TOKEN_FILE": str(configured)}
    add_local_secrets(again, tmp_path / "data")
    assert again == env, "kept across restarts: a restart signs nobody out"
    for service in SERVICES:
        service.from_env({**env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})  # none refuses NAME with NAME_FILE
    assert set(LOCAL_SECRETS) <= set(SECRET_NAMES)
