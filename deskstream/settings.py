"""Reading settings from the environment, once, into a frozen object per service.

Each service declares its own settings dataclass with `from_env()`; the helpers here
keep the parsing (and its error messages) in one place.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from deskstream.limits import IPNetwork, Limit, parse_limit, parse_networks

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

N = TypeVar("N", int, float)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable that is set but cannot be used."""


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


MIN_SECRET_CHARS = 32


def env_secret_text(env: Mapping[str, str], name: str, *, strip: bool = True) -> str:
    """A secret (a password, a token, a signing key) from the variable NAME, or from the
    file NAME_FILE names, as Docker and Kubernetes mount secrets; "" if neither is set.

    Every secret setting is read here, so that each can come from a file rather than the
    environment (which `ps e`, /proc/<pid>/environ and crash reports may show), and so
    that no message about one ever quotes it: errors name the variable and the file,
    never the content. From a file, a trailing newline (`echo` writes one) is not part of
    the secret. `strip=False` keeps the variable's value exactly as written (a password
    may begin or end with a space)."""
    value = env.get(name, "")
    if strip:
        value = value.strip()
    path = env_str(env, f"{name}_FILE", "")
    if value and path:
        raise SettingsError(f"set {name} or {name}_FILE, not both")
    if not path:
        return value
    try:
        value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise SettingsError(f"{name}_FILE {path} cannot be read: {reason}") from None
    if strip:
        value = value.strip()
    if not value:
        raise SettingsError(f"{name}_FILE {path} is empty")
    return value


def env_secret(env: Mapping[str, str], name: str) -> str | None:
    """A signing secret or token (chat sessions, console sessions, survey links, the ops
    API), from NAME or NAME_FILE (env_secret_text), or None if unset; one that is set
    must be long enough that guessing it is hopeless."""
    secret = env_secret_text(env, name)
    if secret and len(secret) < MIN_SECRET_CHARS:
        raise SettingsError(f"{name} must be at least {MIN_SECRET_CHARS} characters")
    return secret or None


def _env_number(env: Mapping[str, str], name: str, default: N, cast: Callable[[str], N], kind: str) -> N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return cast(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    return _env_number(env, name, default, int, "an integer")


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    return _env_number(env, name, default, float, "a number")


def env_flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no setting: 1, true or yes (any case) is yes, anything else no."""
    return env_str(env, name, "true" if default else "false").lower() in ("1", "true", "yes")


def env_list(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def env_limit(env: Mapping[str, str], name: str, default: Limit) -> Limit:
    """A rate limit written COUNT/SECONDS ("30/60": 30 at once, 30 more every 60 s), or
    `off` (deskstream.limits.parse_limit)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse_limit(raw)
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None


def env_networks(env: Mapping[str, str], name: str) -> tuple[IPNetwork, ...]:
    """Comma-separated IP addresses or networks (CIDR), e.g. TRUSTED_PROXIES."""
    try:
        return parse_networks(env_list(env, name))
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_SASL_VARIABLES = ("KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD_FILE")
_SSL_VARIABLES = ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE", "KAFKA_SSL_CHECK_HOSTNAME")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How every Kafka client deskstream makes authenticates and encrypts: the
    protocol, SASL credentials (PLAIN or SCRAM) and TLS files.

    Read once at start and refused at once when inconsistent: a setting the protocol
    does not use (a CA file with SASL_PLAINTEXT) is a mistake that would otherwise
    pass silently as a connection in clear text. The password is kept out of repr()
    and str(), and no error message quotes it, so it never reaches a log.
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None  # None: the system's CAs
    ssl_certfile: Path | None = None  # with ssl_keyfile: a client certificate (mutual TLS)
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    @property
    def uses_sasl(self) -> bool:
        """Whether the SASL settings apply (and are required)."""
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_ssl(self) -> bool:
        """Whether the connection is TLS, so the KAFKA_SSL_* settings apply."""
        return self.protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "KafkaSecurity":
        env = os.environ if env is None else env
        protocol = env_str(env, "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
        if protocol not in SECURITY_PROTOCOLS:
            raise SettingsError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(SECURITY_PROTOCOLS)}, got {protocol!r}")
        security = cls(protocol=protocol)
        sasl = _sasl_from_env(env, security) if security.uses_sasl else {}
        tls = _ssl_from_env(env, security) if security.uses_ssl else {}
        unused = [name for name in (() if security.uses_sasl else _SASL_VARIABLES) + (() if security.uses_ssl else _SSL_VARIABLES)
                  if env.get(name, "").strip()]
        if unused:
            raise SettingsError(f"{', '.join(unused)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use "
                                f"{'them' if len(unused) > 1 else 'it'}")
        return cls(protocol=protocol, **sasl, **tls)

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments for aiokafka's producers, consumers and admin clients
        (built in deskstream.kafka_security, the one place that builds them)."""
        from deskstream.kafka_security import client_options

        return client_options(self)

    def faust_credentials(self) -> "CredentialsT | None":
        """The same, as Faust's `broker_credentials`."""
        from deskstream.kafka_security import faust_credentials

        return faust_credentials(self)


def _sasl_from_env(env: Mapping[str, str], security: KafkaSecurity) -> dict[str, Any]:
    mechanism = env_str(env, "KAFKA_SASL_MECHANISM", "PLAIN").upper()
    if mechanism not in SASL_MECHANISMS:
        raise SettingsError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}, got {mechanism!r}")
    username = env_str(env, "KAFKA_SASL_USERNAME", "")
    # The password is taken as given (no stripping): spaces may be part of it.
    password = env_secret_text(env, "KAFKA_SASL_PASSWORD", strip=False)
    missing = [name for name, value in (("KAFKA_SASL_USERNAME", username),
                                        ("KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE", password)) if not value]
    if missing:
        raise SettingsError(f"KAFKA_SECURITY_PROTOCOL={security.protocol} needs {' and '.join(missing)}")
    return {"sasl_mechanism": mechanism, "sasl_username": username, "sasl_password": password}


def _ssl_from_env(env: Mapping[str, str], security: KafkaSecurity) -> dict[str, Any]:
    files: dict[str, Path | None] = {}
    for name in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE"):
        raw = env_str(env, name, "")
        if raw and not Path(raw).is_file():
            # Said now, not when the first client connects deep inside a worker's start.
            raise SettingsError(f"{name} {raw} is not a file")
        files[name] = Path(raw) if raw else None
    if (files["KAFKA_SSL_CERTFILE"] is None) != (files["KAFKA_SSL_KEYFILE"] is None):
        raise SettingsError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (a client certificate and its key)")
    check = env_str(env, "KAFKA_SSL_CHECK_HOSTNAME", "true").lower()
    if check not in _TRUE + _FALSE:
        # Strict, unlike other flags: a typo must not turn a security check off.
        raise SettingsError(f"KAFKA_SSL_CHECK_HOSTNAME must be true or false, got {check!r}")
    return {"ssl_cafile": files["KAFKA_SSL_CAFILE"], "ssl_certfile": files["KAFKA_SSL_CERTFILE"],
            "ssl_keyfile": files["KAFKA_SSL_KEYFILE"], "ssl_check_hostname": check in _TRUE}


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = env_float(env, name, default)
    if value <= 0:
        raise SettingsError(f"{name} must be more than 0, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Where the cluster is, how to talk to it securely, and how this deployment's
    topics are laid out."""

    bootstrap_servers: tuple[str, ...]
    partitions: int
    replication_factor: int
    security: KafkaSecurity = KafkaSecurity()
    # How long what customers wrote stays readable (README, "Erasure and retention"):
    # the event topics' retention, and how soon a table's changelog drops the values
    # an erasure (or any change) replaced. Applied when `deskstream topics` creates them.
    event_retention_days: float = 28.0
    deadletter_retention_days: float = 56.0
    changelog_compaction_hours: float = 24.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "KafkaSettings":
        env = os.environ if env is None else env
        return cls(
            bootstrap_servers=env_list(env, "KAFKA_BOOTSTRAP_SERVERS", ("127.0.0.1:9092",)),
            partitions=env_int(env, "KAFKA_TOPIC_PARTITIONS", 4),
            replication_factor=env_int(env, "KAFKA_REPLICATION_FACTOR", 1),
            security=KafkaSecurity.from_env(env),
            event_retention_days=_positive(env, "KAFKA_EVENT_RETENTION_DAYS", 28.0),
            deadletter_retention_days=_positive(env, "KAFKA_DEADLETTER_RETENTION_DAYS", 56.0),
            changelog_compaction_hours=_positive(env, "KAFKA_CHANGELOG_COMPACTION_HOURS", 24.0),
        )

    def client_options(self) -> dict[str, Any]:
        """The security options for any aiokafka client (`security.client_options()`):
        every client deskstream makes passes them beside `bootstrap_servers`, so none
        talks to the cluster in clear text when the deployment says otherwise."""
        return self.security.client_options()

    @property
    def bootstrap(self) -> str:
        """The comma-separated form aiokafka takes."""
        return ",".join(self.bootstrap_servers)

    @property
    def faust_broker(self) -> str:
        """The URL form Faust takes: kafka://host:port;host:port."""
        return "kafka://" + ";".join(self.bootstrap_servers)


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What every service has: its name, HTTP bind, data folder and Kafka."""

    name: str
    http_host: str
    http_port: int
    data_dir: Path
    log_level: str
    kafka: KafkaSettings
    publish_timeout_seconds: float = 10.0  # how long an HTTP request waits for Kafka before it answers 503

    @classmethod
    def from_env(cls, name: str, default_port: int, env: Mapping[str, str] | None = None) -> "ServiceSettings":
        env = os.environ if env is None else env
        prefix = name.upper()
        return cls(
            name=name,
            http_host=env_str(env, f"{prefix}_HTTP_HOST", env_str(env, "HTTP_HOST", "127.0.0.1")),
            http_port=env_int(env, f"{prefix}_HTTP_PORT", default_port),
            data_dir=Path(env_str(env, "DESKSTREAM_DATA_DIR", str(PROJECT_ROOT / ".data"))) / name,
            log_level=env_str(env, "LOG_LEVEL", "info").lower(),
            kafka=KafkaSettings.from_env(env),
            publish_timeout_seconds=env_float(env, "PUBLISH_TIMEOUT_SECONDS", 10.0),
        )
