"""Intake's settings, read once from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from deskstream.limits import DEFAULT_MAX_KEYS, IPNetwork, Limit
from deskstream.settings import (
    MIN_SECRET_CHARS, ServiceSettings, SettingsError, env_flag, env_float, env_int, env_limit, env_list, env_networks,
    env_secret, env_secret_text, env_str,
)

TAKEN_ACTIONS = ("flag", "move")
MAIL_PER_SENDER = Limit(20, 3600)  # 20 mails at once from one address, then one every 3 minutes


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """The support mailbox intake reads (IMAP); no host, no mailbox."""

    host: str
    port: int
    ssl: bool
    user: str
    password: str = field(repr=False)  # IMAP_PASSWORD or IMAP_PASSWORD_FILE
    folder: str
    taken: str  # "flag": keyword $DeskstreamTaken; "move": to taken_folder
    taken_folder: str
    quarantine_folder: str
    poll_seconds: float
    max_attempts: int
    own_addresses: tuple[str, ...]
    sender_limit: Limit = MAIL_PER_SENDER  # INTAKE_MAIL_PER_SENDER; the excess is quarantined (services/intake/senders.py)
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
            password=env_secret_text(env, "IMAP_PASSWORD"),
            folder=env_str(env, "IMAP_FOLDER", "INBOX"),
            taken=taken,
            taken_folder=env_str(env, "IMAP_TAKEN_FOLDER", "Deskstream-Taken"),
            quarantine_folder=env_str(env, "IMAP_QUARANTINE_FOLDER", "Deskstream-Quarantine"),
            poll_seconds=env_float(env, "IMAP_POLL_SECONDS", 30.0),
            max_attempts=env_int(env, "IMAP_MAX_ATTEMPTS", 3),
            own_addresses=tuple(a.lower() for a in env_list(env, "MAIL_OWN_ADDRESSES")),
            sender_limit=env_limit(env, "INTAKE_MAIL_PER_SENDER", MAIL_PER_SENDER),
            crash_at=env_str(env, "IMAP_TEST_CRASH_AT", ""),
            crash_marker=env_str(env, "IMAP_TEST_CRASH_MARKER", ""),
        )


@dataclass(frozen=True, slots=True)
class TwilioWebhookSettings:
    """The SMS/WhatsApp webhook; no auth token, no webhook (requests are refused)."""

    auth_token: str = field(repr=False)  # TWILIO_AUTH_TOKEN or TWILIO_AUTH_TOKEN_FILE
    public_base_url: str  # the scheme and host Twilio calls, as configured in Twilio's console
    publish_timeout_seconds: float  # well within Twilio's 15 s, so that Twilio retries

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TwilioWebhookSettings | None":
        token = env_secret_text(env, "TWILIO_AUTH_TOKEN")
        if not token:
            return None
        base = env_str(env, "PUBLIC_BASE_URL", "")
        if not base.startswith(("https://", "http://")):
            raise SettingsError("PUBLIC_BASE_URL must be the URL Twilio calls intake on (Twilio signs that URL)")
        return cls(token, base.rstrip("/"), env_float(env, "TWILIO_WEBHOOK_PUBLISH_TIMEOUT_SECONDS", 10.0))


@dataclass(frozen=True, slots=True)
class AbuseLimits:
    """How much one client address, chat session or SMS/WhatsApp sender may send
    (deskstream.limits: COUNT at once, COUNT more every SECONDS). Over an address or
    session limit the chat API and the Twilio webhook answer 429 with Retry-After; what
    one sender writes past theirs is dead-lettered (services/intake/senders.py).

    The defaults let a real customer through however fast they type, and a household
    or an office behind one address too: a flood is what they stop. Twilio posts every
    customer's messages from its own pool of addresses, so its per-address limit is
    high, and the per-sender limit is what stops one customer."""

    chat_sessions_per_address: Limit = Limit(30, 60)
    chat_messages_per_address: Limit = Limit(120, 60)
    chat_messages_per_session: Limit = Limit(20, 60)
    chat_sockets_per_address: Limit = Limit(60, 60)  # WebSocket connects
    chat_sockets_per_session: int = 5  # open at once, per intake worker (a customer's tabs)
    twilio_requests_per_address: Limit = Limit(3000, 60)
    sms_per_sender: Limit = Limit(60, 600)
    max_keys: int = DEFAULT_MAX_KEYS  # buckets kept per limit, however many addresses a flood brings
    trusted_proxies: tuple[IPNetwork, ...] = ()  # whose X-Forwarded-For is believed

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "AbuseLimits":
        d = cls()
        max_keys = env_int(env, "INTAKE_LIMIT_MAX_KEYS", d.max_keys)
        if max_keys < 1:
            raise SettingsError("INTAKE_LIMIT_MAX_KEYS must be at least 1")
        return cls(
            chat_sessions_per_address=env_limit(env, "INTAKE_CHAT_SESSIONS_PER_ADDRESS", d.chat_sessions_per_address),
            chat_messages_per_address=env_limit(env, "INTAKE_CHAT_MESSAGES_PER_ADDRESS", d.chat_messages_per_address),
            chat_messages_per_session=env_limit(env, "INTAKE_CHAT_MESSAGES_PER_SESSION", d.chat_messages_per_session),
            chat_sockets_per_address=env_limit(env, "INTAKE_CHAT_SOCKETS_PER_ADDRESS", d.chat_sockets_per_address),
            chat_sockets_per_session=max(0, env_int(env, "INTAKE_CHAT_SOCKETS_PER_SESSION", d.chat_sockets_per_session)),
            twilio_requests_per_address=env_limit(env, "INTAKE_TWILIO_REQUESTS_PER_ADDRESS", d.twilio_requests_per_address),
            sms_per_sender=env_limit(env, "INTAKE_SMS_PER_SENDER", d.sms_per_sender),
            max_keys=max_keys,
            trusted_proxies=env_networks(env, "TRUSTED_PROXIES"),
        )


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    service: ServiceSettings
    chat_session_secret: bytes = field(repr=False)
    allowed_origins: tuple[str, ...]
    mailbox: MailboxSettings | None
    twilio: TwilioWebhookSettings | None
    phone_region: str  # how numbers written without a country code are read (ISO 3166)
    limits: AbuseLimits = AbuseLimits()
    # INTAKE_KEEP_ORIGINAL_TEXT: intake.raw keeps what the customer wrote, card numbers and
    # passwords included, for whoever must read it there; tickets.events is masked always
    # (services/intake/masking.py).
    keep_original_text: bool = False

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
            limits=AbuseLimits.from_env(env),
            keep_original_text=env_flag(env, "INTAKE_KEEP_ORIGINAL_TEXT", False),
        )
