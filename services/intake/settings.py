"""Intake's settings, read once from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from deskstream.settings import (
    MIN_SECRET_CHARS, ServiceSettings, SettingsError, env_flag, env_float, env_int, env_list, env_secret, env_str,
)

TAKEN_ACTIONS = ("flag", "move")


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """The support mailbox intake reads (IMAP); no host, no mailbox."""

    host: str
    port: int
    ssl: bool
    user: str
    password: str
    folder: str
    taken: str  # "flag": keyword $DeskstreamTaken; "move": to taken_folder
    taken_folder: str
    quarantine_folder: str
    poll_seconds: float
    max_attempts: int
    own_addresses: tuple[str, ...]
    # Crash tests only: "after-fetch" or "after-publish" ends the process there, as a
    # power cut would, once per marker file (see services/intake/mailbox.py).
    crash_at: str = ""
    crash_marker: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "MailboxSettings | None":
        host = env_str(env, "IMAP_HOST", "")
        if not host:
            return None
        ssl = env_flag(env, "IMAP_SSL", True)
        taken = env_str(env, "IMAP_TAKEN_ACTION", "flag")
        if taken not in TAKEN_ACTIONS:
            raise SettingsError(f"IMAP_TAKEN_ACTION must be one of {', '.join(TAKEN_ACTIONS)}")
        return cls(
            host=host,
            port=env_int(env, "IMAP_PORT", 993 if ssl else 143),
            ssl=ssl,
            user=env_str(env, "IMAP_USER", ""),
            password=env_str(env, "IMAP_PASSWORD", ""),
            folder=env_str(env, "IMAP_FOLDER", "INBOX"),
            taken=taken,
            taken_folder=env_str(env, "IMAP_TAKEN_FOLDER", "Deskstream-Taken"),
            quarantine_folder=env_str(env, "IMAP_QUARANTINE_FOLDER", "Deskstream-Quarantine"),
            poll_seconds=env_float(env, "IMAP_POLL_SECONDS", 30.0),
            max_attempts=env_int(env, "IMAP_MAX_ATTEMPTS", 3),
            own_addresses=tuple(a.lower() for a in env_list(env, "MAIL_OWN_ADDRESSES")),
            crash_at=env_str(env, "IMAP_TEST_CRASH_AT", ""),
            crash_marker=env_str(env, "IMAP_TEST_CRASH_MARKER", ""),
        )


@dataclass(frozen=True, slots=True)
class TwilioWebhookSettings:
    """The SMS/WhatsApp webhook; no auth token, no webhook (requests are refused)."""

    auth_token: str
    public_base_url: str  # the scheme and host Twilio calls, as configured in Twilio's console
    publish_timeout_seconds: float  # well within Twilio's 15 s, so that Twilio retries

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TwilioWebhookSettings | None":
        token = env_str(env, "TWILIO_AUTH_TOKEN", "")
        if not token:
            return None
        base = env_str(env, "PUBLIC_BASE_URL", "")
        if not base.startswith(("https://", "http://")):
            raise SettingsError("PUBLIC_BASE_URL must be the URL Twilio calls intake on (Twilio signs that URL)")
        return cls(token, base.rstrip("/"), env_float(env, "TWILIO_WEBHOOK_PUBLISH_TIMEOUT_SECONDS", 10.0))


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    service: ServiceSettings
    chat_session_secret: bytes
    allowed_origins: tuple[str, ...]
    mailbox: MailboxSettings | None
    twilio: TwilioWebhookSettings | None
    phone_region: str  # how numbers written without a country code are read (ISO 3166)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "IntakeSettings":
        env = os.environ if env is None else env
        secret = env_secret(env, "CHAT_SESSION_SECRET")
        if secret is None:
            raise SettingsError(f"CHAT_SESSION_SECRET must be set to at least {MIN_SECRET_CHARS} characters (make run writes one)")
        return cls(
            service=ServiceSettings.from_env("intake", 8080, env),
            chat_session_secret=secret.encode(),
            allowed_origins=env_list(env, "CHAT_ALLOWED_ORIGINS"),
            mailbox=MailboxSettings.from_env(env),
            twilio=TwilioWebhookSettings.from_env(env),
            phone_region=env_str(env, "PHONE_DEFAULT_REGION", "ES").upper(),
        )
