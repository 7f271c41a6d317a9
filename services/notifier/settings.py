"""Notifier's settings, read once from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from deskstream.settings import ServiceSettings, SettingsError, env_float, env_int, env_str


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The SMTP server outbound mail goes through; no host, no e-mail channel."""

    host: str
    port: int
    starttls: bool
    tls: bool  # implicit TLS (port 465)
    user: str
    password: str
    from_address: str
    from_name: str
    message_id_domain: str
    timeout_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SmtpSettings | None":
        host = env_str(env, "SMTP_HOST", "")
        if not host:
            return None
        from_address = env_str(env, "MAIL_FROM", "")
        if "@" not in from_address:
            raise SettingsError("MAIL_FROM must be the support address mail is sent from")
        flag = lambda name, default: env_str(env, name, default).lower() in ("1", "true", "yes")  # noqa: E731
        tls = flag("SMTP_TLS", "false")
        return cls(
            host=host,
            port=env_int(env, "SMTP_PORT", 465 if tls else 587),
            starttls=flag("SMTP_STARTTLS", "false" if tls else "true"),
            tls=tls,
            user=env_str(env, "SMTP_USER", ""),
            password=env_str(env, "SMTP_PASSWORD", ""),
            from_address=from_address,
            from_name=env_str(env, "MAIL_FROM_NAME", "Support"),
            message_id_domain=env_str(env, "MAIL_MESSAGE_ID_DOMAIN", from_address.split("@", 1)[1]),
            timeout_seconds=env_float(env, "SMTP_TIMEOUT_SECONDS", 5.0),
        )


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    service: ServiceSettings
    smtp: SmtpSettings | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "NotifierSettings":
        env = os.environ if env is None else env
        return cls(service=ServiceSettings.from_env("notifier", 8082, env), smtp=SmtpSettings.from_env(env))
