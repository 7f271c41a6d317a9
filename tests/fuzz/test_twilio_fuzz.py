"""Twilio's SMS/WhatsApp webhook: whatever form reaches `POST /webhooks/twilio/sms`
ends in one of four ways, and the answer says which.

- Not signed by Twilio (no signature, a wrong one, a body that is not a form): 403,
  and nothing is published.
- Signed, and a message: 200 with `contact.received` (or, for STOP/START, the consent
  event; for HELP nothing) that the contract accepts.
- Signed, and not a message (no valid From, no text and no media, a media URL that is
  not https, NumMedia lying...): 200 with a dead letter saying why, since Twilio's
  retries could not fix it.
- A body over intake's 64 KiB limit that carries a signature header: 413 (it would have
  to be read before its signature could be checked; Twilio's forms are a few KiB).

Never a 500 and never a 503 with a broker that takes everything: Twilio retries those,
and a form that fails every time would be retried for nothing.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from twilio.request_validator import HMAC_SHA256, SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, RequestValidator

from deskstream.topics import DEADLETTER, INTAKE_RAW, NOTIFY_REQUESTS
from services.intake import sms
from services.intake.chat import MAX_BODY_BYTES
from deskstream.customers import customer_id
from services.intake.normaliser import Thread, normalise
from services.intake.settings import IntakeSettings
from services.intake.sms_webhook import PATH, sms_routes
from tests.fuzz.support import NOW, RecordingPipeline, Served, publishable, scaled, ticket_events_publishable
from tests.harness import GENEROUS_LIMIT, LIMITS

AUTH_TOKEN = "fuzz-auth-token-" + "7" * 16
PUBLIC_BASE_URL = "https://support.example.com"
SIGNED_URL = PUBLIC_BASE_URL + PATH
SETTINGS = IntakeSettings.from_env({"CHAT_SESSION_SECRET": "s" * 64, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                                    "PUBLIC_BASE_URL": PUBLIC_BASE_URL, **dict.fromkeys(LIMITS, GENEROUS_LIMIT)})
CONSENT_TYPES = {sms.Keyword.OPT_OUT: "consent.opted_out", sms.Keyword.OPT_IN: "consent.opted_in"}
MESSAGE_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
MEDIA_TYPE = re.compile(r"[A-Za-z0-9_.+-]{1,127}/[A-Za-z0-9_.+-]{1,127}")  # RFC 6838's names are ASCII

# -- forms ------------------------------------------------------------------------------

anything = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)  # form values are decoded text
hex32 = st.from_regex(r"[0-9a-fA-F]{32}", fullmatch=True)
sids = st.one_of(
    st.builds(lambda prefix, digits: prefix + digits, st.sampled_from(["SM", "MM", "SS"]), hex32),
    st.sampled_from(["", "SM", "SM" + "0" * 31, "sm" + "0" * 32, "SM" + "0" * 32 + "\n", "SM" + "g" * 32]), anything)
numbers = st.one_of(
    st.sampled_from(["+34600112233", "+14155550134", "+447700900123", "600112233", "+34 600 11 22 33", "whatsapp:+34600112233",
                     "WhatsApp:+14155550134", "whatsapp:", "+", "+999 1234567", "+34 12", "+३४६००११२२३३", "+３４６００１１２２３３",
                     "tel:+34600112233", "+34600112233;ext=1", "0034600112233", "1" * 300]),
    st.from_regex(r"(whatsapp:)?\+[1-9][0-9]{6,14}", fullmatch=True), anything)
bodies = st.one_of(
    anything,
    st.sampled_from(["STOP", "stop.", " Baja! ", "START", "unstop", "ALTA", "HELP", "ayuda", "¡STOP!", "Stop the outage", "",
                     "   ", "\x00", "\u200b", "ﬆop"]),
    st.integers(sms.MAX_BODY_CHARS - 2, sms.MAX_BODY_CHARS + 2).map(lambda n: "x" * n),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=3).map(lambda unit: unit * 6000),
)
keywords = st.builds(lambda word, case, before, after: before + case(word) + after, st.sampled_from(sorted(sms.KEYWORDS)),
                     st.sampled_from([str.upper, str.lower, str.title]), st.sampled_from(["", " ", "¡", "\n"]),
                     st.sampled_from(["", ".", "!", " ", "!!", "?"]))
media_counts = st.one_of(st.integers(-2, 12).map(str), st.sampled_from(["", " 1 ", "1e3", "٣", "1_0", "0x1", "+1", "NaN", "²"]), anything)
https_urls = st.one_of(st.just("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"),
                       st.integers(990, 1010).map(lambda n: "https://" + "m" * (n - 8)), anything.map("https://".__add__))
media_urls = st.one_of(https_urls, st.sampled_from(["http://evil.example/x", "https://", "javascript:alert(1)",
                                                    "HTTPS://api.twilio.com/m", ""]), anything)
content_types = st.one_of(st.sampled_from(["image/jpeg", "IMAGE/PNG", "application/pdf", "audio/ogg; codecs=opus", "<script>", "",
                                           "image/png\n", "a/b/c", "x" * 127 + "/" + "y" * 127, "x" * 128 + "/y"]), anything)


@st.composite
def twilio_forms(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A form as Twilio really posts it (tests/twilio_api.inbound_sms has the fields), with
    any text, media and name: most of these are contacts or keywords."""
    sid = draw(st.sampled_from(["SM", "MM"])) + draw(hex32)
    sender = draw(st.sampled_from(["+34600112233", "+14155550134", "whatsapp:+34600112233", "600112233", "+447700900123"]))
    media = draw(st.lists(st.tuples(https_urls,
                                    st.sampled_from(["image/jpeg", "image/png", "application/pdf", "video/mp4"])), max_size=10))
    fields = [("MessageSid", sid), ("SmsSid", sid), ("SmsMessageSid", sid), ("AccountSid", "AC" + "0" * 32), ("From", sender),
              ("To", "+34910000000"), ("Body", draw(bodies | keywords)), ("NumMedia", str(len(media))), ("NumSegments", "1"),
              ("ApiVersion", "2010-04-01"), ("SmsStatus", "received")]
    for index, (url, content_type) in enumerate(media):
        fields += [(f"MediaUrl{index}", url), (f"MediaContentType{index}", content_type)]
    if draw(st.booleans()):
        fields.append(("ProfileName", draw(anything)))
    return fields


@st.composite
def odd_forms(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A webhook form as Twilio sends it, as Twilio never would, and in between: fields
    missing, repeated, oversized or unknown; NumMedia saying more or fewer media than
    the form has; numbers that are not E.164; unicode and control characters anywhere."""
    fields: list[tuple[str, str]] = []
    if draw(st.integers(0, 9)):
        fields.append(("MessageSid", draw(sids)))
    if draw(st.booleans()):
        fields.append(("SmsSid", draw(sids)))
    if draw(st.integers(0, 9)):
        fields.append(("From", draw(numbers)))
    for name, values in [("To", numbers), ("Body", bodies), ("ProfileName", anything | st.just(" " * 300)),
                         ("AccountSid", anything), ("NumSegments", media_counts), ("ApiVersion", anything)]:
        if draw(st.integers(0, 3)):
            fields.append((name, draw(values)))
    claimed = draw(media_counts)
    if draw(st.integers(0, 2)):
        fields.append(("NumMedia", claimed))
    for index in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 5)):
            fields.append((f"MediaUrl{index}", draw(media_urls)))
        if draw(st.integers(0, 5)):
            fields.append((f"MediaContentType{index}", draw(content_types)))
    fields += draw(st.lists(st.tuples(anything | st.sampled_from(["Body", "From", "NumMedia", "MessageSid"]), anything), max_size=4))
    return draw(st.permutations(fields))


forms = st.one_of(twilio_forms(), odd_forms(), twilio_forms().flatmap(  # a real form with one field changed or repeated
    lambda form: st.tuples(st.sampled_from([name for name, _ in form]), anything, st.booleans()).map(
        lambda change: form + [change[:2]] if change[2] else [(n, change[1] if n == change[0] else v) for n, v in form])))


# -- the parser -------------------------------------------------------------------------------


def assert_message_keeps_its_promises(message: sms.InboundMessage) -> None:
    """What parse_inbound's refusals promise of every message it lets through: a Twilio
    message SID, an E.164 number, a body within the limit, https media with media types."""
    assert MESSAGE_SID.fullmatch(message.message_sid), message.message_sid
    assert message.number.startswith("+") and message.number[1:].isdigit() and message.number.isascii()
    assert len(message.body) <= sms.MAX_BODY_CHARS and (message.body.strip() or message.media)
    for item in message.media:
        assert item.url.startswith("https://") and MEDIA_TYPE.fullmatch(item.content_type), item


@settings(max_examples=scaled(2))
@given(forms)
@example([("MessageSid", "SM" + "0" * 32 + "\n"), ("From", "+34600112233"), ("Body", "hola")])
@example([("MessageSid", "SM" + "0" * 32), ("From", "+34600112233"), ("NumMedia", "1"),
          ("MediaUrl0", "https://api.twilio.com/m"), ("MediaContentType0", "image/png\n")])
@example([("MessageSid", "SM" + "0" * 32), ("From", "+34600112233"), ("NumMedia", "1"),
          ("MediaUrl0", "https://api.twilio.com/m"), ("MediaContentType0", "İ" * 127 + "/" + "İ" * 127)])
def test_any_form_is_a_message_that_keeps_the_contract_or_a_named_rejection(form: list[tuple[str, str]]) -> None:
    try:
        message = sms.parse_inbound(MultiDict(form), SETTINGS.phone_region)
    except sms.SmsRejected as refused:
        event(f"rejected: {str(refused).split(':')[0][:40]}")
        assert str(refused)
        return
    assert_message_keeps_its_promises(message)
    keyword = message.keyword()
    event("keyword" if keyword else "contact")
    pipeline = RecordingPipeline()
    if keyword is None:
        data = sms.contact_data(message, customer_id(phone=message.number, fallback=message.thread_key), NOW)
        publishable(pipeline.event("contact.received", data["contact_id"], data, data["thread_key"]))
        ticket_events_publishable(normalise(data, Thread()))
    elif keyword[0] in CONSENT_TYPES:
        consent = sms.consent_data(message, keyword[0], NOW)
        publishable(pipeline.event(CONSENT_TYPES[keyword[0]], f"consent.{message.message_sid}", consent))


# -- the route --------------------------------------------------------------------------------

PIPELINE = RecordingPipeline()


@pytest.fixture(scope="module")
def served() -> Any:
    server = Served(sms_routes(PIPELINE, SETTINGS), client_max_size=MAX_BODY_BYTES)  # type: ignore[arg-type]
    yield server
    server.close()


def post(served: Served, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async def call(client: Any) -> tuple[int, str]:
        answer = await client.post(PATH, data=body, headers=headers)
        return answer.status, await answer.text()

    PIPELINE.published.clear()
    return served.run(call)


def signed(form: list[tuple[str, str]], algorithm: str | None = None) -> str:
    """The signature Twilio puts on this form, posted to our public URL."""
    return RequestValidator(AUTH_TOKEN).compute_signature(SIGNED_URL, MultiDict(form), algorithm)


def assert_published_what_the_answer_says(status: int, form: list[tuple[str, str]]) -> None:
    assert status == 200, status
    if not PIPELINE.published:  # only HELP publishes nothing
        message = sms.parse_inbound(MultiDict(form), SETTINGS.phone_region)
        assert message.keyword() is not None and message.keyword()[0] is sms.Keyword.HELP
        event("help")
        return
    [(topic, key, published)] = PIPELINE.published  # already checked against the contract by the stand-in
    event(published.type)
    if topic == INTAKE_RAW:
        assert published.type == "contact.received" and key == published.data["thread_key"]
    elif topic == NOTIFY_REQUESTS:
        assert published.type in CONSENT_TYPES.values()
    else:
        assert (topic, published.type, published.data["origin"]) == (DEADLETTER, "deadletter.recorded", "twilio:sms")


def real_form(body: str) -> list[tuple[str, str]]:
    sid = "SM" + "0123456789abcdef" * 2
    return [("MessageSid", sid), ("From", "whatsapp:+34600112233"), ("To", "+34910000000"), ("Body", body), ("NumMedia", "0")]


@settings(max_examples=scaled(1))
@given(forms, st.sampled_from([None, "HMAC_SHA1", HMAC_SHA256]))
@example(real_form("No tengo internet"), None)
@example(real_form("Baja"), None)
@example(real_form("start!"), HMAC_SHA256)
@example(real_form("HELP"), None)
@example(real_form(""), None)
def test_a_signed_form_is_stored_as_what_it_is_and_answered_200(served: Served, form: list[tuple[str, str]],
                                                                  algorithm: str | None) -> None:
    headers = {SIGNATURE_HEADER: signed(form, algorithm), "Content-Type": "application/x-www-form-urlencoded"}
    if algorithm is not None:
        headers[SIGNATURE_SETTINGS_HEADER] = f"key=webhooks_sharedkey_1,algorithm={algorithm}"
    body = urlencode(form).encode()
    status, answer = post(served, body, headers)
    if len(body) > MAX_BODY_BYTES:  # Twilio's forms are a few KiB at most (1,600 characters, 10 media URLs)
        assert status == 413 and PIPELINE.published == []
        return
    assert status != 403, "Twilio's own signature was refused"
    assert_published_what_the_answer_says(status, form)


printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)  # what a header can carry
forgeries = st.one_of(
    st.none(), st.just(""), printable, st.sampled_from(["0" * 28, "wrong=", signed([("Body", "hola")])]),
    st.builds(lambda form: RequestValidator("another-token-" + "0" * 18).compute_signature(SIGNED_URL, MultiDict(form)), forms),
)
raw_bodies = st.one_of(
    forms.map(lambda form: urlencode(form).encode()),
    st.binary(max_size=500),
    st.sampled_from([b"%", b"Body=%ff%fe", b"Body=\xff\xfe", b"=&=&&", b"a" * 100, b"Body=" + b"x" * (MAX_BODY_BYTES + 10)]),
)
odd_content_types = st.sampled_from([
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=latin-1", "application/x-www-form-urlencoded; charset=nonexistent",
    "application/x-www-form-urlencoded; charset=utf-16", "multipart/form-data; boundary=xyz", "multipart/form-data",
    "application/json", "text/plain", "application/octet-stream",
])


@settings(max_examples=scaled(1))
@given(forgeries, raw_bodies, odd_content_types)
@example("0" * 28, b"Body=\xff\xfe", "application/x-www-form-urlencoded")  # invalid UTF-8 in a form
@example("0" * 28, b"Body=hola", "application/x-www-form-urlencoded; charset=nonexistent")
@example("0" * 28, b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--xyz--\r\n", "multipart/form-data; boundary=xyz")
def test_an_unsigned_or_forged_request_is_refused_with_403_and_publishes_nothing(
        served: Served, signature: str | None, body: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    status, answer = post(served, body, headers)
    event(f"answered {status}")
    assert status == 403 or (status == 413 and len(body) > MAX_BODY_BYTES), (status, answer[:300])
    assert PIPELINE.published == []


@settings(max_examples=scaled(0.5))
@given(raw_bodies, odd_content_types)
def test_whatever_body_carries_a_valid_signature_the_answer_is_never_a_5xx(served: Served, body: bytes, content_type: str) -> None:
    """The signature is computed over the form as the server will read it, where it can
    be read at all: then it is Twilio's form, and the previous properties hold; where it
    cannot, the request is refused, never failed."""
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        form = []
    headers = {"Content-Type": content_type, SIGNATURE_HEADER: signed(form)}
    status, answer = post(served, body, headers)
    event(f"answered {status}")
    assert status < 500, (status, answer[:300])
