"""Notifier's settings, read once from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from deskstream.settings import (
    ServiceSettings, SettingsError, env_flag, env_float, env_int, env_secret, env_secret_text, env_str,
)

from services.notifier.attempts import RetryPolicy
from services.notifier.quiet_hours import QuietHours, QuietHoursError, valid_timezone
from services.notifier.rate_limit import parse_rates
from services.notifier.surges import SurgeRule


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The SMTP server outbound mail goes through; no host, no e-mail channel."""

    host: str
    port: int
    starttls: bool
    tls: bool  # implicit TLS (port 465)
    user: str
    password: str = field(repr=False)  # SMTP_PASSWORD or SMTP_PASSWORD_FILE
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
        tls = env_flag(env, "SMTP_TLS", False)
        return cls(
            host=host,
            port=env_int(env, "SMTP_PORT", 465 if tls else 587),
            starttls=env_flag(env, "SMTP_STARTTLS", not tls),
            tls=tls,
            user=env_str(env, "SMTP_USER", ""),
            password=env_secret_text(env, "SMTP_PASSWORD"),
            from_address=from_address,
            from_name=env_str(env, "MAIL_FROM_NAME", "Support"),
            message_id_domain=env_str(env, "MAIL_MESSAGE_ID_DOMAIN", from_address.split("@", 1)[1]),
            timeout_seconds=env_float(env, "SMTP_TIMEOUT_SECONDS", 5.0),
        )


@dataclass(frozen=True, slots=True)
class SentMailSettings:
    """A mailbox that holds a copy of every mail the notifier sent, read over IMAP to
    settle a send that a crash cut (an SMTP server cannot be asked whether it took a
    message; a mailbox can be searched for its Message-ID). It is the account's Sent
    folder where the provider files sent mail itself (Google Workspace, Microsoft 365),
    or an archive mailbox the relay delivers a Bcc to (`SMTP_ARCHIVE_BCC`). No host: a
    cut send stays `in_doubt` and is not sent again."""

    host: str
    port: int
    ssl: bool
    user: str
    password: str = field(repr=False)
    mailbox: str
    bcc: str | None  # added as a Bcc to every mail, for relays that file no copy themselves
    arrival_seconds: float  # how long after the send the copy may take to land in the mailbox

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SentMailSettings | None":
        host = env_str(env, "SENT_MAIL_IMAP_HOST", "")
        if not host:
            return None
        ssl = env_flag(env, "SENT_MAIL_IMAP_SSL", True)
        user, password = env_str(env, "SENT_MAIL_IMAP_USER", ""), env_secret_text(env, "SENT_MAIL_IMAP_PASSWORD")
        if not user or not password:
            raise SettingsError("SENT_MAIL_IMAP_HOST needs SENT_MAIL_IMAP_USER and SENT_MAIL_IMAP_PASSWORD")
        bcc = env_str(env, "SMTP_ARCHIVE_BCC", "") or None
        if bcc is not None and "@" not in bcc:
            raise SettingsError("SMTP_ARCHIVE_BCC must be the address of the archive mailbox")
        return cls(
            host=host,
            port=env_int(env, "SENT_MAIL_IMAP_PORT", 993 if ssl else 143),
            ssl=ssl,
            user=user,
            password=password,
            mailbox=env_str(env, "SENT_MAIL_IMAP_MAILBOX", "Sent"),
            bcc=bcc,
            arrival_seconds=max(0.0, env_float(env, "SENT_MAIL_ARRIVAL_SECONDS", 30.0)),
        )


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    """The Twilio account SMS and WhatsApp go out through; no account, no SMS channel."""

    account_sid: str
    auth_token: str = field(repr=False)  # TWILIO_AUTH_TOKEN or TWILIO_AUTH_TOKEN_FILE
    sms_from: str  # the support number, E.164; or
    messaging_service_sid: str  # a Messaging Service that picks the number
    whatsapp_from: str  # the WhatsApp sender, E.164 (sent as whatsapp:+...)
    public_base_url: str  # where Twilio reaches notifier, for status callbacks (Twilio signs that URL)
    api_url: str  # Twilio's API; another URL only for a proxy or a local stand-in
    max_segments: int  # longer SMS texts are cut, at a word, to fit
    timeout_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TwilioSettings | None":
        account_sid = env_str(env, "TWILIO_ACCOUNT_SID", "")
        if not account_sid:
            return None
        token = env_secret_text(env, "TWILIO_AUTH_TOKEN")
        sms_from = env_str(env, "TWILIO_SMS_FROM", "")
        service_sid = env_str(env, "TWILIO_MESSAGING_SERVICE_SID", "")
        base = env_str(env, "NOTIFIER_PUBLIC_BASE_URL", env_str(env, "PUBLIC_BASE_URL", ""))
        if not token:
            raise SettingsError("TWILIO_AUTH_TOKEN must be set with TWILIO_ACCOUNT_SID")
        if not (sms_from or service_sid):
            raise SettingsError("TWILIO_SMS_FROM or TWILIO_MESSAGING_SERVICE_SID must name the sender")
        if not base.startswith(("https://", "http://")):
            raise SettingsError("NOTIFIER_PUBLIC_BASE_URL (or PUBLIC_BASE_URL) must be the URL Twilio reaches notifier on")
        return cls(
            account_sid=account_sid,
            auth_token=token,
            sms_from=sms_from,
            messaging_service_sid=service_sid,
            whatsapp_from=env_str(env, "TWILIO_WHATSAPP_FROM", sms_from),
            public_base_url=base.rstrip("/"),
            api_url=env_str(env, "TWILIO_API_URL", "https://api.twilio.com"),
            max_segments=env_int(env, "SMS_MAX_SEGMENTS", 3),
            timeout_seconds=env_float(env, "TWILIO_TIMEOUT_SECONDS", 10.0),
        )


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    service: ServiceSettings
    smtp: SmtpSettings | None
    sent_mail: SentMailSettings | None  # where a send a crash cut is looked for
    twilio: TwilioSettings | None
    retry: RetryPolicy  # temporary failures (Twilio 429/5xx, SMTP 4xx, unreachable) are tried again
    rates: dict[str, float]  # messages per second per channel; absent or 0: unlimited
    concurrency: int  # sends in flight per channel (and SMTP connections kept open)
    quiet_hours: QuietHours | None
    default_timezone: str  # for recipients whose time zone nothing tells
    surge: SurgeRule
    ops_tokens: frozenset[str] = field(repr=False)  # bearer tokens of the incident API
    phone_region: str = "ES"  # how the erasure API reads numbers without a country code (as intake does)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "NotifierSettings":
        env = os.environ if env is None else env
        default_timezone = env_str(env, "NOTIFIER_DEFAULT_TIMEZONE", "UTC")
        if not valid_timezone(default_timezone):
            raise SettingsError("NOTIFIER_DEFAULT_TIMEZONE must be an IANA time zone such as Europe/Madrid")
        try:
            quiet = QuietHours.parse(
                env_str(env, "NOTIFIER_QUIET_HOURS", "22:00-08:00"),
                channels=env_str(env, "NOTIFIER_QUIET_CHANNELS", "sms,whatsapp"),
                overrides=env_str(env, "NOTIFIER_QUIET_OVERRIDES", "P1,reply"),
                default_timezone=default_timezone,
            )
            rates_spec = env_str(env, "NOTIFIER_RATES", "sms=10,whatsapp=20,email=50")
            rates = {} if rates_spec.lower() == "off" else parse_rates(rates_spec)
        except (QuietHoursError, ValueError) as error:
            raise SettingsError(str(error)) from None
        token = env_secret(env, "NOTIFIER_OPS_TOKEN")
        return cls(
            service=ServiceSettings.from_env("notifier", 8082, env),
            smtp=SmtpSettings.from_env(env),
            sent_mail=SentMailSettings.from_env(env),
            twilio=TwilioSettings.from_env(env),
            retry=RetryPolicy(
                max_attempts=max(1, env_int(env, "NOTIFIER_MAX_ATTEMPTS", 4)),
                backoff_seconds=env_float(env, "NOTIFIER_BACKOFF_SECONDS", 0.5),
                max_backoff_seconds=env_float(env, "NOTIFIER_MAX_BACKOFF_SECONDS", 300.0),
            ),
            rates=rates,
            concurrency=max(1, env_int(env, "NOTIFIER_CONCURRENCY", 8)),
            quiet_hours=quiet,
            default_timezone=default_timezone,
            surge=SurgeRule(
                window_seconds=60 * env_float(env, "NOTIFIER_SURGE_WINDOW_MINUTES", 10.0),
                threshold=max(2, env_int(env, "NOTIFIER_SURGE_TICKETS", 20)),
            ),
            ops_tokens=frozenset({token}) if token else frozenset(),
            phone_region=env_str(env, "PHONE_DEFAULT_REGION", "ES").upper(),
        )
