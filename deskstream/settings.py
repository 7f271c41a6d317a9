"""Reading settings from the environment, once, into a frozen object per service.

Each service declares its own settings dataclass with `from_env()`; the helpers here
keep the parsing (and its error messages) in one place.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TypeVar

N = TypeVar("N", int, float)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable that is set but cannot be used."""


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


MIN_SECRET_CHARS = 32


def env_secret(env: Mapping[str, str], name: str) -> str | None:
    """A signing secret (chat sessions, console sessions), or None if unset; one that is
    set must be long enough that guessing it is hopeless."""
    secret = env_str(env, name, "")
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


def env_list(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Where the cluster is and how this deployment's topics are laid out."""

    bootstrap_servers: tuple[str, ...]
    partitions: int
    replication_factor: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "KafkaSettings":
        env = os.environ if env is None else env
        return cls(
            bootstrap_servers=env_list(env, "KAFKA_BOOTSTRAP_SERVERS", ("127.0.0.1:9092",)),
            partitions=env_int(env, "KAFKA_TOPIC_PARTITIONS", 4),
            replication_factor=env_int(env, "KAFKA_REPLICATION_FACTOR", 1),
        )

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
