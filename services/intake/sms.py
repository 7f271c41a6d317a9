"""What an inbound SMS, MMS or WhatsApp message from Twilio means to deskstream.

Twilio posts one form per message (its `MessageSid`, `From`, `To`, `Body`, and
`NumMedia` with `MediaUrlN`/`MediaContentTypeN`). Most messages are contacts; a
message that is exactly a compliance keyword is not: STOP and its synonyms record an
opt-out, START an opt-in, HELP asks for the help text, and none of them opens a
ticket (carrier rules for SMS; the same courtesy on WhatsApp).
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Mapping

from deskstream.phones import InvalidPhoneNumber, e164, split_channel

MAX_BODY_CHARS = 16384  # the contract's body_text limit; Twilio itself sends at most 1,600
MAX_MEDIA = 10  # Twilio's own limit per message
MAX_MEDIA_URL = 1000
# Both matched with fullmatch (`$` also matches before a final newline). Media types are
# ASCII (RFC 6838): a Unicode \w let "İ" in, which lower() doubles past the contract's 255.
_MESSAGE_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_CONTENT_TYPE = re.compile(r"[\w.+-]{1,127}/[\w.+-]{1,127}", re.ASCII)


class SmsRejected(ValueError):
    """A signed webhook whose form is not a message deskstream can take; the reason is
    recorded in `deadletter`."""


class Keyword(enum.Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


# Twilio's default opt-out, opt-in and help keywords, and their Spanish counterparts.
KEYWORDS: dict[str, tuple[Keyword, str]] = {
    **{word: (Keyword.OPT_OUT, "en") for word in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")},
    "BAJA": (Keyword.OPT_OUT, "es"),
    **{word: (Keyword.OPT_IN, "en") for word in ("START", "UNSTOP")},
    "ALTA": (Keyword.OPT_IN, "es"),
    "HELP": (Keyword.HELP, "en"),
    "AYUDA": (Keyword.HELP, "es"),
}

DEFAULT_REPLIES: dict[Keyword, dict[str, str]] = {
    Keyword.OPT_OUT: {
        "en": "You will not receive more messages from support on this number. Reply START to receive them again.",
        "es": "No recibirás más mensajes de soporte en este número. Responde ALTA para volver a recibirlos.",
    },
    Keyword.OPT_IN: {
        "en": "You will receive messages from support on this number again. Reply STOP to stop them.",
        "es": "Volverás a recibir mensajes de soporte en este número. Responde BAJA para dejar de recibirlos.",
    },
    Keyword.HELP: {
        "en": "Support: write your question here and an agent will answer. Reply STOP to stop messages. Message and data rates may apply.",
        "es": "Soporte: escribe aquí tu consulta y un agente te responderá. Responde BAJA para no recibir mensajes. Pueden aplicarse tarifas.",
    },
}


@dataclass(frozen=True, slots=True)
class Media:
    url: str
    content_type: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    message_sid: str
    channel: str  # "sms" or "whatsapp"
    number: str  # the customer's, E.164
    to: str  # the support number or WhatsApp sender it was written to, as Twilio gave it
    body: str
    media: tuple[Media, ...]
    profile_name: str | None  # WhatsApp's display name, when given

    @property
    def thread_key(self) -> str:
        return f"{self.channel}:{self.number}"

    @property
    def contact_id(self) -> str:
        """Twilio's MessageSid: a retried webhook is the same contact."""
        return f"twilio-{self.message_sid}"

    def keyword(self) -> tuple[Keyword, str] | None:
        """The compliance keyword this message is, with its language, if it is one:
        the whole message, any case, trailing punctuation ignored."""
        if self.media:
            return None
        return KEYWORDS.get(self.body.strip().strip(".!¡ ").upper())


def parse_inbound(form: Mapping[str, str], default_region: str | None) -> InboundMessage:
    """The message in a (signature-checked) Twilio webhook form."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not _MESSAGE_SID.fullmatch(sid):
        raise SmsRejected("MessageSid is missing or not a Twilio message SID")
    channel, raw_number = split_channel(form.get("From", ""))
    try:
        number = e164(raw_number, default_region)
    except InvalidPhoneNumber as error:
        raise SmsRejected(f"From: {error}") from None
    body = form.get("Body", "")
    if len(body) > MAX_BODY_CHARS:
        raise SmsRejected(f"Body is longer than {MAX_BODY_CHARS} characters")
    media = _media(form)
    if not body.strip() and not media:
        raise SmsRejected("the message has neither text nor media")
    profile_name = (form.get("ProfileName") or "").strip()[:200] or None
    return InboundMessage(sid, channel, number, form.get("To", "")[:64], body, media, profile_name)


def _media(form: Mapping[str, str]) -> tuple[Media, ...]:
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError:
        raise SmsRejected("NumMedia is not a number") from None
    if not 0 <= count <= MAX_MEDIA:
        raise SmsRejected(f"NumMedia must be between 0 and {MAX_MEDIA}")
    media = []
    for index in range(count):
        url = form.get(f"MediaUrl{index}", "")
        content_type = form.get(f"MediaContentType{index}", "")
        if not url.startswith("https://") or len(url) > MAX_MEDIA_URL:
            raise SmsRejected(f"MediaUrl{index} is not an https URL of at most {MAX_MEDIA_URL} characters")
        if not _CONTENT_TYPE.fullmatch(content_type):
            raise SmsRejected(f"MediaContentType{index} is not a media type")
        media.append(Media(url, content_type.lower()))
    return tuple(media)


def contact_data(message: InboundMessage, customer_id: str, received_at: str) -> dict[str, Any]:
    """The data of the `contact.received` for a message that is a contact."""
    customer = {"id": customer_id, "phone": message.number}
    if message.profile_name:
        customer["name"] = message.profile_name
    return {
        "contact_id": message.contact_id,
        "channel": message.channel,
        "thread_key": message.thread_key,
        "received_at": received_at,
        "customer": customer,
        "subject": None,
        "body_text": message.body.strip() or media_summary(message.media),
        "reply_to": {"channel": message.channel, "address": message.number},
        "sms": {
            "message_sid": message.message_sid,
            "to": message.to,
            "media": [{"url": item.url, "content_type": item.content_type} for item in message.media],
        },
    }


def media_summary(media: tuple[Media, ...]) -> str:
    """The text of a message that is only media: what was sent, for the agent's list."""
    return "[" + ", ".join(item.content_type for item in media) + "]"


def consent_data(message: InboundMessage, keyword: Keyword, recorded_at: str) -> dict[str, Any]:
    """The data of `consent.opted_out` / `consent.opted_in`."""
    return {
        "recipient": {"channel": message.channel, "address": message.number},
        "keyword": message.body.strip().upper()[:32],
        "message_sid": message.message_sid,
        "recorded_at": recorded_at,
    }
