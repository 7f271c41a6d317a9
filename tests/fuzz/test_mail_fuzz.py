"""Mail bytes to a contact: whatever arrives in the support mailbox ends as a contact
that the contract accepts, as noise taken without a ticket, or as a precise refusal
that the mailbox quarantines; never as an exception.

An exception out of `read_mail` is worse than one bad message: the mailbox session
ends, reconnects, fetches the same message first and fails again, so nothing behind
it is ever read. A contact the contract refuses is no better: it is retried and
quarantined as "not published" instead of becoming a ticket or a clear refusal.

The mails come from three sources: arbitrary bytes; the corpus of real-world mails in
tests/fixtures/mail with bytes flipped, cut and spliced; and hostile mails built part by
part (duplicated and CRLF-injected headers, charsets that lie or do not exist, broken
base64 and quoted-printable, deep and malformed multipart nesting, huge lines, NULs,
invalid UTF-8, missing From and Message-ID, attachments of every kind).
"""
from __future__ import annotations

import base64
import hashlib
import quopri
from dataclasses import dataclass
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from deskstream.events import Event
from services.intake.email_contacts import MailOutcome, read_mail
from services.intake.normaliser import Thread, normalise
from tests.fuzz.support import NOW, publishable, scaled, ticket_events_publishable

OWN = ("soporte@deskstream.example",)
NOISE = {"own-mail", "bounce", "auto-reply", "bulk"}
CORPUS = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "mail").glob("*.eml"))


# -- the property, for every source of mail ---------------------------------------------


def assert_ends_well(raw: bytes) -> MailOutcome:
    """`raw` ends in exactly one of: a publishable contact whose ticket events are
    publishable too, noise, or a refusal that says it is an unparseable e-mail."""
    outcome = read_mail(raw, OWN, NOW)
    ends = [outcome.contact is not None, outcome.noise is not None, outcome.unusable is not None]
    assert ends.count(True) == 1, outcome
    if outcome.unusable is not None:
        assert outcome.unusable.startswith("unparseable e-mail: ")
    if outcome.noise is not None:
        assert outcome.noise in NOISE
    if outcome.contact is not None:
        contact = outcome.contact
        # as MailboxIntake._publish sends it: keyed and subjected by the thread key
        publishable(Event("contact.received", "deskstream/intake", contact["contact_id"], contact, contact["thread_key"]))
        listed = contact["email"]["attachments"]
        assert len(listed) == min(len(outcome.attachments), 100)
        for meta, stored in zip(listed, outcome.attachments):  # the store gets the bytes the event describes
            assert (meta["size"], meta["sha256"]) == (len(stored.content), hashlib.sha256(stored.content).hexdigest())
        thread = Thread()
        ticket_events_publishable(normalise(contact, thread))
        again = {**contact, "contact_id": contact["contact_id"][:90] + "-again"}  # a later mail of the thread
        ticket_events_publishable(normalise(again, thread))
    return outcome


@settings(max_examples=scaled(4))
@given(st.binary(max_size=4096))
@example(b"")
@example(b"\r\n\r\n")
@example(b"From: a@b.c\r\n\r\n")
@example(b"\x00" * 64)
def test_any_bytes_end_in_a_contact_noise_or_a_refusal(raw: bytes) -> None:
    assert_ends_well(raw)


# -- the corpus, mutated ----------------------------------------------------------------


@st.composite
def mutated_corpus_mail(draw: st.DrawFn) -> bytes:
    """A real-world mail from the corpus with a few bytes replaced, inserted or deleted,
    a piece cut out, or a piece of another mail spliced in."""
    data = bytearray(draw(st.sampled_from(CORPUS)).read_bytes())
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["replace", "insert", "delete", "cut", "splice", "repeat"]))
        if action == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.sampled_from([b"\x00", b"\r", b"\n", b"\r\n", b"--", b"=", b"=?", b"?=", b"\xff",
                                                 b"\xc3", b"<", b">", b"@", b";", b"\"", b"\t", b" ", b"\r\n\r\n"]))
        elif action == "delete":
            del data[at:at + draw(st.integers(1, 4))]
        elif action == "cut":
            del data[at:]
        elif action == "splice":
            other = draw(st.sampled_from(CORPUS)).read_bytes()
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start:start + draw(st.integers(1, 400))]
        elif action == "repeat":
            data[at:at] = bytes(data[at:at + draw(st.integers(1, 200))]) * draw(st.integers(2, 50))
    return bytes(data)


@settings(max_examples=scaled(2))
@given(mutated_corpus_mail())
def test_mutated_real_mails_end_in_a_contact_noise_or_a_refusal(raw: bytes) -> None:
    assert_ends_well(raw)


def test_every_mail_of_the_corpus_is_a_contact_or_noise() -> None:
    """The corpus is real mail: none of it may be refused as unparseable."""
    for path in CORPUS:
        assert assert_ends_well(path.read_bytes()).unusable is None, path.name


# -- hostile mails, built part by part ------------------------------------------------------

# Charsets that exist, that lie (latin-1 over cp1252 bytes), that do not exist, that are
# codecs but not text encodings, and that decode to characters JSON cannot carry.
CHARSETS = [
    "utf-8", "UTF-8", "us-ascii", "iso-8859-1", "latin1", "windows-1252", "cp1252", "iso-8859-15", "koi8-r",
    "shift_jis", "gb2312", "big5", "euc-kr", "utf-16", "utf-16le", "utf-32", "utf-7", "x-unknown", "", "\"utf-8\"",
    "'latin1'", "base64", "rot13", "zlib", "uu", "hex", "quopri", "bz2", "idna", "punycode", "undefined",
    "unicode_escape", "raw_unicode_escape", "utf-8-sig", "cp65001", "mbcs", "unknown-8bit", "x-user-defined",
]
ENCODINGS = ["base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode", "BASE64", "Quoted-Printable",
             "x-garbage", ""]
CONTENT_TYPES = [
    "text/plain", "text/html", "text/enriched", "application/octet-stream", "application/pdf", "image/png",
    "message/delivery-status", "text", "garbage", "multipart/mixed", "/", "text/plain/extra", "TEXT/PLAIN",
    "application/ms-tnef", "message/partial",
]
MULTIPART_SUBTYPES = ["mixed", "alternative", "related", "report", "digest", "signed", "x-unknown", ""]
NAMES = [
    "From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Date", "MIME-Version",
    "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Return-Path", "Auto-Submitted",
    "Precedence", "List-Id", "List-Unsubscribe", "X-Autoreply", "X-Deskstream-Ticket", "Reply-To", "Sender",
]
NEWLINES = [b"\r\n", b"\n", b"\r"]

any_text = st.text(st.characters(exclude_categories=()), max_size=200)  # with lone surrogates, NULs, controls
short_bytes = st.binary(max_size=200)


@st.composite
def encoded_word(draw: st.DrawFn) -> str:
    """An RFC 2047 encoded-word: proper, with broken base64 or Q, or in an odd charset."""
    charset = draw(st.sampled_from(CHARSETS)) or "utf-8"
    data = draw(st.binary(max_size=60) | st.text(max_size=30).map(lambda t: t.encode("utf-8")))
    if draw(st.booleans()):
        payload = base64.b64encode(data).decode()
        if draw(st.booleans()):
            payload = draw(st.sampled_from(["", "=", "!!", "A", "AB=", "====", "Zm9v\x00"])) + payload[: draw(st.integers(0, len(payload)))]
        return f"=?{charset}?{draw(st.sampled_from('Bb'))}?{payload}?="
    payload = "".join(f"={b:02X}" if b > 126 or b < 33 or b in b"?=_" else chr(b) for b in data)
    if draw(st.booleans()):
        payload += draw(st.sampled_from(["=", "=Z", "=\r\n", "?", "_"]))
    return f"=?{charset}?{draw(st.sampled_from('Qq'))}?{payload}?="


@st.composite
def address(draw: st.DrawFn) -> str:
    """What a From, To or Cc may hold: addresses good and bad, long and short, named with
    encoded-words, grouped, commented, quoted, or nothing at all."""
    local = draw(st.sampled_from(["marta", "a", "\"quoted local\"", "first.last+tag", "ñandú", "", "postmaster",
                                  "mailer-daemon", "soporte", "a\x00b"]) | st.integers(1, 320).map("x".__mul__))
    domain = draw(st.sampled_from(["example.es", "b.c", "[127.0.0.1]", "", "xn--andu-7qa.example", "deskstream.example",
                                   "ex ample.com"]) | st.integers(1, 300).map(lambda n: "d" * n + ".com"))
    spec = f"{local}@{domain}"
    name = draw(st.sampled_from(["", "Marta López", "\"López, Marta\"", "=?utf-8?q?Marta_L=C3=B3pez?="]) | encoded_word() | any_text)
    form = draw(st.integers(0, 7))
    if form == 0:
        return spec
    if form == 1:
        return f"{name} <{spec}>"
    if form == 2:
        return f"undisclosed-recipients:; {spec}"
    if form == 3:
        return f"{spec} (comment (nested))"
    if form == 4:
        return f"<{spec}>, {name} <{spec}>, <>"
    if form == 5:
        return "<>"
    if form == 6:
        return f"{name} <{spec}"  # unclosed
    return name


@st.composite
def message_ids(draw: st.DrawFn) -> str:
    """Message ids as clients write them, forget them or overdo them."""
    one = draw(st.sampled_from(["<abc@example.es>", "<T-ABCDEFGH.x@deskstream.example>", "abc@example.es", "<>",
                                "<a b@c>", "no id here", "<unclosed@example.es", "<<nested@x>>"])
               | st.integers(1, 2500).map(lambda n: "<" + "i" * n + "@example.es>") | any_text)
    return " ".join([one] * draw(st.integers(1, 3)) + draw(st.lists(st.sampled_from(["<r1@x>", "<r2@y>", one]), max_size=150)))


def header_value(name: str) -> st.SearchStrategy[str]:
    if name in {"From", "To", "Cc", "Reply-To", "Sender", "Return-Path"}:
        return address()
    if name in {"Message-ID", "In-Reply-To", "References"}:
        return message_ids()
    if name == "Subject":
        return st.lists(st.one_of(encoded_word(), any_text, st.just("[#T-ABCDEFGH]")), max_size=4).map(" ".join)
    if name == "Date":
        return st.sampled_from(["Mon, 23 Nov 2026 09:41:07 +0100", "Mon, 23 Nov 2026 09:41:07 -0000", "yesterday",
                                "Mon, 31 Feb 2026 25:61:61 +9999", "1 Jan 0001 00:00:00 +1400", "31 Dec 9999 23:59:59 -1400",
                                "Thu, 1 Jan 1970 00:00:00 GMT", ""]) | any_text
    if name == "Content-Type":
        return content_type_value()
    if name == "Content-Transfer-Encoding":
        return st.sampled_from(ENCODINGS)
    return st.one_of(any_text, encoded_word(), st.sampled_from(["auto-replied", "no", "bulk", "list", "<>", ""]))


@st.composite
def content_type_value(draw: st.DrawFn, main: str | None = None) -> str:
    value = main or draw(st.sampled_from(CONTENT_TYPES))
    for parameter in draw(st.lists(st.sampled_from(["charset", "name", "format", "delsp", "boundary", "name*", "junk"]),
                                   max_size=4)):
        if parameter == "charset":
            value += f"; charset={draw(st.sampled_from(CHARSETS))}"
        elif parameter == "format":
            value += "; format=flowed"
        elif parameter == "delsp":
            value += "; delsp=yes"
        elif parameter == "name*":
            value += "; name*=utf-8''%E2%82%AC%20rate.pdf; name*0*=us-ascii'en'part; name*1=two"
        elif parameter == "junk":
            value += draw(st.sampled_from([";", "; =", "; a=\"unclosed", "; charset", ";;;", "; \x00=1"]))
        else:
            value += f"; {parameter}=\"{draw(st.text(max_size=40) | encoded_word())}\""
    return value


@st.composite
def headers(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Random headers in random order, some repeated, some missing (From and Message-ID
    included), some with names nobody registered."""
    names = draw(st.lists(st.sampled_from(NAMES) | st.from_regex(r"[!-9;-~]{1,30}", fullmatch=True), max_size=12))
    return [(name, draw(header_value(name))) for name in names]


def encode_body(draw: st.DrawFn, data: bytes, cte: str) -> bytes:
    """The payload in its transfer encoding: proper, or broken the ways mail breaks it."""
    broken = draw(st.booleans())
    kind = cte.lower()
    if kind == "base64":
        encoded = base64.encodebytes(data)
        if broken:
            encoded = draw(st.sampled_from([encoded.replace(b"=", b""), encoded[:-3], b"!@#$" + encoded,
                                            encoded.replace(b"\n", b"\n\x00"), encoded + b"=====\n\xff\xfe", b"====",
                                            encoded.replace(b"A", b"*")]))
        return encoded
    if kind == "quoted-printable":
        encoded = quopri.encodestring(data)
        if broken:
            encoded = draw(st.sampled_from([encoded + b"=", encoded + b"=Z", b"=\n" * 5 + encoded, encoded.replace(b"=", b"=="),
                                            encoded + b"=\xff", b"=" * 50]))
        return encoded
    if kind == "x-uuencode":
        return draw(st.sampled_from([b"begin 644 f\n#86)C\n`\nend\n", b"begin 644\n!!!\n", b"begin\n", data]))
    return data


def payload(draw: st.DrawFn) -> bytes:
    """Text in some charset, random bytes, NULs, invalid UTF-8, or one huge line."""
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.text(max_size=300)).encode(draw(st.sampled_from(["utf-8", "latin-1", "utf-16", "cp1252"])), "replace")
    if choice == 1:
        return draw(st.binary(max_size=300))
    if choice == 2:
        return b"\x00" * draw(st.integers(1, 100)) + b"text"
    if choice == 3:
        return b"\xc3(\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc" * draw(st.integers(1, 20))
    if choice == 4:
        return b"x" * draw(st.integers(990, 200_000))  # one line, far past RFC 5322's 998
    return draw(st.sampled_from([
        b"<html><body><p>Hola</p><blockquote type=cite>old</blockquote></body></html>",
        b"<table><tr><td>a<td>b</table><ul><li>x<li>y</ul><pre>\n z</pre>",
        b"<![CDATA[ x", b"<!-- unclosed", b"</p></div><p/><br/></body>", b"&#xd800;&#0;&#x110000;&bogus; &amp",
        b"<script>x</script><style>y", b"Hola\n\n-- \nsig", b"> quoted\n> only", b"On Mon, A wrote:\n> x\nnew",
    ]))


@dataclass
class Part:
    """One MIME part as bytes: its header lines and its body."""

    header_lines: list[bytes]
    body: bytes

    def render(self, newline: bytes) -> bytes:
        return newline.join(self.header_lines) + newline + newline + self.body


def header_line(name: str, value: str, draw: st.DrawFn) -> bytes:
    """A header line in the bytes a sender wrote: UTF-8, Latin-1 or raw; sometimes with a
    CRLF (or a bare CR or LF) injected into it, sometimes folded."""
    line = f"{name}: {value}"
    mangle = draw(st.integers(0, 5))
    if mangle == 0:
        line += draw(st.sampled_from(["\r\nBcc: victim@example.com", "\nX-Injected: 1", "\rContent-Type: text/html",
                                      "\r\n\r\ninjected body"]))
    elif mangle == 1:
        line = line.replace(" ", "\r\n ", 2)
    encoding = draw(st.sampled_from(["utf-8", "latin-1"]))  # lone surrogates become invalid UTF-8
    return line.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")


@st.composite
def leaf(draw: st.DrawFn) -> Part:
    cte = draw(st.sampled_from(ENCODINGS))
    lines = [header_line("Content-Type", draw(content_type_value()), draw)]
    if cte:
        lines.append(header_line("Content-Transfer-Encoding", cte, draw))
    if draw(st.booleans()):
        filename = draw(st.sampled_from(["", "informe.pdf", "=?utf-8?b?w7FhbmTDui5wZGY=?=", "f" * 400, "../../etc/passwd",
                                         "a\x00b.txt"]) | any_text)
        disposition = draw(st.sampled_from(["attachment", "inline", "ATTACHMENT", "bogus", ""]))
        lines.append(header_line("Content-Disposition", f"{disposition}; filename=\"{filename}\"", draw))
    return Part(lines, encode_body(draw, payload(draw), cte))


def multipart(children: st.SearchStrategy[list[Part]]) -> st.SearchStrategy[Part]:
    @st.composite
    def build(draw: st.DrawFn) -> Part:
        boundary = draw(st.sampled_from(["b1", "==boundary==", "x" * 80, "", "with space", "\"quoted\"", "b1--"]))
        declared = boundary if draw(st.integers(0, 4)) else draw(st.sampled_from(["other", ""]))  # sometimes a lie
        subtype = draw(st.sampled_from(MULTIPART_SUBTYPES))
        newline = draw(st.sampled_from(NEWLINES))
        parts = draw(children)
        body = draw(st.sampled_from([b"", b"preamble\r\n", b"This is a multi-part message in MIME format.\n"]))
        for part in parts:
            body += b"--" + boundary.encode() + newline + part.render(newline) + newline
        if draw(st.integers(0, 3)):  # the closing delimiter is often missing
            body += b"--" + boundary.encode() + b"--" + newline
        body += draw(st.sampled_from([b"", b"epilogue", b"--" + boundary.encode()]))
        return Part([f"Content-Type: multipart/{subtype}; boundary=\"{declared}\"".encode()], body)

    return build()


def attached_message(inner: st.SearchStrategy[Part]) -> st.SearchStrategy[Part]:
    """A message/rfc822 part: a whole mail inside the mail (a forward, a bounce)."""
    return st.builds(
        lambda part, name: Part([b"Content-Type: message/rfc822", b"Content-Disposition: attachment"],
                                b"From: " + name.encode() + b"\r\nSubject: inner\r\n" + part.render(b"\r\n")),
        inner, st.sampled_from(["inner@example.es", "x", ""]))


mime_tree = st.recursive(leaf(), lambda children: st.one_of(multipart(st.lists(children, max_size=4)),
                                                            attached_message(children)), max_leaves=12)


@st.composite
def deeply_nested(draw: st.DrawFn, levels: st.SearchStrategy[int] = st.integers(30, 150)) -> Part:
    """A leaf inside many multiparts or attached messages: around mail.MAX_DEPTH, or (with
    `levels` up to a thousand) as deep as the parser goes before Python's recursion limit
    stops it, where serialisers recurse too."""
    part = draw(leaf())
    for level in range(draw(levels)):
        if draw(st.integers(0, 2)):
            boundary = f"b{level}".encode()
            part = Part([b"Content-Type: multipart/mixed; boundary=\"" + boundary + b"\""],
                        b"--" + boundary + b"\r\n" + part.render(b"\r\n") + b"\r\n--" + boundary + b"--\r\n")
        else:
            part = Part([b"Content-Type: message/rfc822"], b"From: a@b.c\r\n" + part.render(b"\r\n"))
    return part


@st.composite
def hostile_mail(draw: st.DrawFn, body: st.SearchStrategy[Part] = st.one_of(mime_tree, deeply_nested())) -> bytes:
    """A whole hostile mail: random headers (From and Message-ID maybe among them, maybe
    not, maybe twice) over a body that is a MIME tree, a deep nesting or a single part."""
    top = draw(body)
    newline = draw(st.sampled_from(NEWLINES))
    lines = [header_line(name, value, draw) for name, value in draw(headers())]
    if draw(st.integers(0, 3)):  # most mails have a From we could answer
        lines.insert(draw(st.integers(0, len(lines))), header_line("From", draw(address()), draw))
    lines += top.header_lines
    return Part(lines, top.body).render(newline)


@settings(max_examples=scaled(1))
@given(hostile_mail())
@example(b"From: " + b"x" * 300 + b"@example.es\r\n\r\nHola")  # an address no mail server could deliver to
@example(b"From: " + b"x" * 64 + b"@" + b"d" * 180 + b".es\r\nMessage-ID: <" + b"i" * 190 + b"@example.es>\r\n\r\nHola")
@example(b"From: a@b.c\r\nMessage-ID: <" + b"i" * 2000 + b"@example.es>\r\n\r\nHola")
@example(b"From: a@b.c\r\nContent-Type: text/plain; charset=unicode_escape\r\n\r\nHola \\ud800")
@example(b"From: a@b.c\r\nSubject: =?utf-7?B?KzJBQS0=?=\r\n\r\nHola")
@example(b"From: a@b.c\r\nContent-Type: text/plain; charset=utf\x00-8\r\n\r\nHola")  # found in the mutated corpus
@example(b"From: a@b.c\r\nContent-Type: message/rfc822\r\n\r\nFrom: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\xc3")
@example(b"From: a@b.c\r\nContent-Type: message/rfc822\r\n\r\nFrom: x\r\n"
         b"Content-Type: multipart/mixed; name*=utf-8''%E2%82%AC; name*0*=us-ascii'en'part\r\n\r\n\xff")
def test_hostile_mails_end_in_a_contact_noise_or_a_refusal(raw: bytes) -> None:
    assert_ends_well(raw)


@settings(max_examples=scaled(0.05))
@given(hostile_mail(deeply_nested(st.integers(150, 1200))))
@example(b"From: a@b.c\r\n" + b"Content-Type: message/rfc822\r\n\r\nFrom: a@b.c\r\n" * 300 + b"\r\nhola")  # RecursionError
def test_mails_nested_as_deep_as_the_parser_goes_end_in_a_contact_noise_or_a_refusal(raw: bytes) -> None:
    """Each costs the standard parser up to a few seconds (its work grows with depth times
    lines, up to Python's recursion limit, where it stops): hence fewer examples."""
    assert_ends_well(raw)


# -- what a plain mail must become ------------------------------------------------------------

plain_local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,40}", fullmatch=True)
plain_domain = st.from_regex(r"[a-z0-9]{1,30}(\.[a-z0-9]{1,20}){0,3}\.[a-z]{2,10}", fullmatch=True)


@settings(max_examples=scaled(0.5))
@given(plain_local, plain_domain, st.text(max_size=2000), st.text(max_size=300),
       st.sampled_from(["utf-8", "iso-8859-1", "windows-1252", "utf-16"]), st.sampled_from(["base64", "quoted-printable", "8bit"]))
def test_a_plain_mail_from_a_real_address_is_always_a_contact(local: str, domain: str, text: str, subject: str,
                                                                charset: str, cte: str) -> None:
    """Nothing robots send, nothing broken: such a mail is a customer writing, and must
    open or join a ticket, whatever the text and its charset."""
    body = text.encode(charset, "replace")
    encoded = base64.encodebytes(body) if cte == "base64" else quopri.encodestring(body) if cte == "quoted-printable" else body
    raw = (f"From: Cliente <{local}@{domain}>\r\nTo: soporte@deskstream.example\r\n"
           f"Subject: =?utf-8?b?{base64.b64encode(subject.encode()).decode()}?=\r\n"
           f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n").encode() + encoded
    outcome = assert_ends_well(raw)
    assert outcome.contact is not None, outcome
    assert outcome.contact["customer"]["email"] == f"{local}@{domain}"
