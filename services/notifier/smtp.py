"""Sending mail through the configured SMTP server (aiosmtplib)."""
from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from services.notifier.settings import SmtpSettings


class SmtpSender:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> str:
        """Hand `message` to the server; returns the server's answer (for the receipt).
        Raises aiosmtplib.SMTPException or OSError when the server does not take it."""
        s = self.settings
        _, answer = await aiosmtplib.send(
            message,
            hostname=s.host,
            port=s.port,
            use_tls=s.tls,
            start_tls=s.starttls if not s.tls else False,
            username=s.user or None,
            password=s.password or None,
            timeout=s.timeout_seconds,
        )
        return answer
