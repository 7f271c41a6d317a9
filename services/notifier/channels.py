"""The customer's channels as the outbox sees them: render the text, hand it to the
right provider once, and, after a crash, ask the provider what became of it."""
from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from deskstream.events import Event
from deskstream.pipeline import Pipeline

from services.notifier import delivery
from services.notifier.email import compose
from services.notifier.outcomes import Outcome
from services.notifier.sent_mail import SentMailbox, SentMailboxUnavailable
from services.notifier.settings import NotifierSettings
from services.notifier.smtp import SmtpPool, SmtpPoolClosed
from services.notifier.templates import render
from services.notifier.twilio_sms import TwilioSender

log = logging.getLogger(__name__)

SETTLE_MARGIN_SECONDS = 2.0


def text_of(request: dict[str, Any]) -> str:
    return render(request["template"], request["language"], {**request["params"], "timezone": request.get("timezone")})


class Channels:
    def __init__(self, pipeline: Pipeline, settings: NotifierSettings, smtp: SmtpPool | None, twilio: TwilioSender | None,
                 sent_mail: SentMailbox | None = None) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.smtp = smtp
        self.twilio = twilio
        self.sent_mail = sent_mail

    def pushed(self, request: dict[str, Any], at: str) -> tuple[str, Event] | None:
        recipient = request["recipient"]
        if recipient["channel"] != "chat":
            return None
        message = delivery.chat_message(request, text_of(request), at)
        return recipient["address"], self.pipeline.event(
            "chat.message", request["request_id"], message, request.get("ticket_id"))

    async def send(self, request: dict[str, Any]) -> Outcome:
        channel = request["recipient"]["channel"]
        if channel == "email" and self.smtp is not None and self.settings.smtp is not None:
            message = self._compose(request)
            if self.sent_mail is not None and self.sent_mail.settings.bcc:
                message["Bcc"] = self.sent_mail.settings.bcc  # the archive's copy; never shown to the customer
            try:
                return await self.smtp.deliver(message)
            except SmtpPoolClosed:  # the worker is stopping: nothing went out
                return Outcome("retry", "not sent: the notifier was stopping")
        if channel in delivery.PHONE_CHANNELS and self.twilio is not None and self.settings.twilio is not None:
            return await self.twilio.deliver(channel, request["recipient"]["address"], self._phone_text(request),
                                             delivery.status_callback_url(self.settings.twilio.public_base_url, request))
        return Outcome("failed", f"no sender for channel {channel} is configured")

    async def find(self, request: dict[str, Any], claimed_at: datetime) -> Outcome | None:
        channel = request["recipient"]["channel"]
        if channel in delivery.PHONE_CHANNELS and self.twilio is not None:
            try:
                sid = await self.twilio.find_sent(channel, request["recipient"]["address"], self._phone_text(request), claimed_at)
            except Exception as error:  # Twilio cannot be asked now: ask again later
                log.warning("cannot ask Twilio about a claimed message", extra={"error": type(error).__name__})
                return None
            if sid:
                return Outcome("sent", f"Twilio has {sid} (found after a restart)", provider_message_id=sid)
            return Outcome("retry", "Twilio has no such message: it was not sent")
        if channel == "email" and self.sent_mail is not None and self.settings.smtp is not None:
            message_id = self._compose(request)["Message-ID"]
            try:
                found = await self.sent_mail.holds(message_id)
            except SentMailboxUnavailable as error:  # ask again later
                log.warning("cannot ask the sent-mail folder about a claimed mail", extra={"error": str(error)})
                return None
            if found:
                return Outcome("sent", f"the sent-mail folder has {message_id} (found after a restart)",
                               provider_message_id=message_id)
            return Outcome("retry", f"the sent-mail folder has no {message_id}: it was not sent")
        return Outcome("in_doubt", "the worker stopped during the send, and an SMTP server cannot be asked "
                                   "whether it took the message: not sent again")

    def settle_delay(self, request: dict[str, Any]) -> float:
        channel = request["recipient"]["channel"]
        if channel in delivery.PHONE_CHANNELS and self.settings.twilio is not None:
            return self.settings.twilio.timeout_seconds + SETTLE_MARGIN_SECONDS
        if channel == "email" and self.sent_mail is not None and self.settings.smtp is not None:
            # the SMTP exchange a dead worker may have finished, then the copy's way to the folder
            return self.settings.smtp.timeout_seconds + self.sent_mail.settings.arrival_seconds + SETTLE_MARGIN_SECONDS
        return 0.0

    async def close(self) -> None:
        if self.smtp is not None:
            await self.smtp.close()

    def _compose(self, request: dict[str, Any]) -> EmailMessage:
        assert self.settings.smtp is not None
        s = self.settings.smtp
        return compose(request, text_of(request), from_address=s.from_address, from_name=s.from_name,
                       domain=s.message_id_domain)

    def _phone_text(self, request: dict[str, Any]) -> str:
        assert self.settings.twilio is not None
        return delivery.phone_text(request["recipient"]["channel"], text_of(request), self.settings.twilio.max_segments)
