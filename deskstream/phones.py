"""Phone numbers as one customer identity: every channel writes them its own way
("+34 600 11 22 33", "600112233", "whatsapp:+34600112233"); deskstream keys
customers, threads and opt-outs by the E.164 form (Google's libphonenumber rules)."""
from __future__ import annotations

import phonenumbers

WHATSAPP_PREFIX = "whatsapp:"


class InvalidPhoneNumber(ValueError):
    """A value that is not a possible phone number in E.164 or in the default region."""


def e164(raw: str, default_region: str | None = None) -> str:
    """`raw` as `+<country><number>`; numbers without a country code are read as
    numbers of `default_region` (ISO 3166 code such as ``ES``)."""
    try:
        number = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhoneNumber(f"not a phone number: {error}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhoneNumber("not a possible phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def split_channel(address: str) -> tuple[str, str]:
    """Twilio's address form to (channel, number): ``whatsapp:+34...`` is WhatsApp,
    anything else SMS."""
    if address.lower().startswith(WHATSAPP_PREFIX):
        return "whatsapp", address[len(WHATSAPP_PREFIX):]
    return "sms", address


def twilio_address(channel: str, number: str) -> str:
    """The `To`/`From` Twilio expects for a number on a channel."""
    return f"{WHATSAPP_PREFIX}{number}" if channel == "whatsapp" else number
