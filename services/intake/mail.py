"""Raw e-mail bytes to what a ticket needs: who wrote, in which thread, the new text,
the files, and whether the message is noise that must never open a ticket.

Mail in the wild is not what the RFCs describe: charsets are missing, wrong (cp1252
declared as Latin-1) or invented, Content-Type headers are broken, replies carry the
whole conversation below the new text, and robots answer robots. This module is pure
(bytes in, values out) so every one of those cases can be pinned by a fixture in
tests/fixtures/mail. Headers that matter for threading and decoding are read from the
raw header lines rather than through the policy's header objects, so a malformed
header costs us that header, never the message.
"""
from __future__ import annotations

import binascii
import codecs
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import timezone
from email import policy
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from typing import Iterable, Iterator

MAX_DEPTH = 40  # deeper MIME nesting than this is an attack, not a mail client
MAX_ADDRESS_CHARS = 254  # RFC 5321's limit (a 256-octet path, brackets included): longer is undeliverable
MAX_ID_CHARS = 998  # RFC 5322's longest line: a longer Message-ID cannot be one (nor fit the contract)

_KNOWN_MAINTYPES = {"text", "multipart", "message", "image", "audio", "video", "application", "font", "model"}
_LATIN1 = "iso8859-1"
_ASCII = "ascii"
_UNKNOWN = "?"
_C1_BYTES = re.compile(rb"[\x80-\x9f]")
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?]*)\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)\s+(?==\?)")
_MSG_ID = re.compile(r"<([^<>]*)>")
_SURROGATES = re.compile("[\ud800-\udfff]")
_SET_ASIDE = re.compile("\ue000(\\d+)\ue001")
_ADDRESS_SPECIALS = re.compile(r'["<>(),;:\\\[\]\x00-\x1f\x7f]')


class MailParseError(ValueError):
    """Bytes that are not a usable e-mail; the message says why (no customer text in it)."""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int
    sha256: str
    content: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ParsedMail:
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    from_address: str
    from_name: str | None
    to: tuple[str, ...]
    subject: str
    date: str | None
    text: str
    full_text: str
    attachments: tuple[Attachment, ...]
    noise: str | None


def parse(raw: bytes, own_addresses: tuple[str, ...] = ()) -> ParsedMail:
    """Everything intake needs from one message, or MailParseError if it has no sender
    we could ever answer."""
    message = _message(raw)
    from_address, from_name = _sender(message)
    body = _body_part(message)
    full_text = _body_text(body) if body is not None else ""
    return ParsedMail(
        message_id=_first_id(_header(message, "Message-ID")),
        in_reply_to=_first_id(_header(message, "In-Reply-To")),
        references=_ids(_header(message, "References")),
        from_address=from_address,
        from_name=from_name,
        to=_recipients(message),
        subject=_collapse(_decode_words(_header(message, "Subject") or "")),
        date=_rfc3339(_header(message, "Date")),
        text=strip_quoted(full_text),
        full_text=full_text,
        attachments=tuple(_attachment(part) for part in _leaves(message) if part is not body and _is_attachment(part)),
        noise=_noise(message, from_address, own_addresses),
    )


def content_key(parsed: ParsedMail, raw: bytes) -> str:
    """The same message fetched twice (an IMAP retry, a second copy in another folder)
    gets the same key; without a Message-ID only the exact bytes can say that."""
    if parsed.message_id:
        return "mid:" + parsed.message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# -- the message and its headers ---------------------------------------------------


def _message(raw: bytes) -> EmailMessage:
    if not isinstance(raw, (bytes, bytearray)):
        raise MailParseError(f"expected the message as bytes, got {type(raw).__name__}")
    if not raw.strip():
        raise MailParseError("the message is empty")
    try:
        return BytesParser(policy=policy.default).parsebytes(bytes(raw))
    except RecursionError:
        raise MailParseError("the message is nested too deeply to parse") from None


def _header(message: Message, name: str) -> str | None:
    """The first raw value of a header, as text.

    Raw because the policy's header objects parse lazily and some malformed values make
    them raise; 8-bit bytes in headers (which the parser keeps as surrogates) are read as
    UTF-8, else cp1252, like any other undeclared text."""
    values = _headers(message, name)
    return values[0] if values else None


def _headers(message: Message, name: str) -> list[str]:
    wanted = name.lower()
    return [_header_text(value) for key, value in message.raw_items() if key.lower() == wanted]


def _header_text(value: object) -> str:
    text = str(value)
    return text if text.isascii() else _decode_bytes(text.encode("utf-8", "surrogateescape"), None)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _decode_words(value: str) -> str:
    """RFC 2047 encoded-words in any charset Python knows, leniently: adjacent words of one
    charset are joined before decoding (clients split multi-byte characters between
    them), and a word that does not decode stays as it was rather than losing the header."""
    value = _BETWEEN_WORDS.sub("", value)
    pieces: list[str | tuple[bytes, str]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        if match.start() > position:
            pieces.append(value[position:match.start()])
        data = _word_bytes(match.group(2), match.group(3))
        charset = match.group(1).split("*", 1)[0]
        if data is None:
            pieces.append(match.group(0))
        elif pieces and isinstance(pieces[-1], tuple) and pieces[-1][1].lower() == charset.lower():
            pieces[-1] = (pieces[-1][0] + data, charset)
        else:
            pieces.append((data, charset))
        position = match.end()
    pieces.append(value[position:])
    return "".join(piece if isinstance(piece, str) else _decode_bytes(*piece) for piece in pieces)


def _word_bytes(encoding: str, text: str) -> bytes | None:
    """The bytes of one encoded-word, or None if they are not there (padding is forgiven,
    garbage is not: a lenient base64 decoder turns garbage into more garbage)."""
    data = text.encode("ascii", "replace")
    try:
        if encoding in "Qq":
            return binascii.a2b_qp(data, header=True)
        data = data.rstrip(b"=")
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def _first_id(value: str | None) -> str | None:
    ids = _ids(value)
    return ids[0] if ids else None


def _ids(value: str | None) -> tuple[str, ...]:
    """Message ids without brackets, in order, once each. Clients that forget the brackets
    still get their ids read, as long as they look like ids (an @ and no spaces). What is
    longer than a header line can be is no id: the message is then known by its bytes."""
    if not value:
        return ()
    found = [_collapse(inner).replace(" ", "") for inner in _MSG_ID.findall(value)]
    if not found:
        found = [token for token in value.split() if "@" in token and "<" not in token and ">" not in token]
    return tuple(dict.fromkeys(item for item in found if item and len(item) <= MAX_ID_CHARS))


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, addr-spec) pairs; display names may still hold encoded-words.

    The encoded-words are set aside while the header is split: what one decodes to is
    text of a display name, never structure, and read raw, a `:` or `@` inside one
    (`=?utf-8?q?Eve=0D=0ABcc:_x@evil.example?= <eve@example.es>`) made a group and an
    address of it, and the acknowledgement went to the address hidden in the name."""
    words: list[str] = []

    def aside(match: re.Match[str]) -> str:
        words.append(match.group(0))
        return f"\ue000{len(words) - 1}\ue001"

    def back(text: str) -> str:
        return _SET_ASIDE.sub(lambda m: words[int(m.group(1))] if int(m.group(1)) < len(words) else m.group(0), text)

    unfolded = [_ENCODED_WORD.sub(aside, " ".join(value.splitlines())) for value in values]
    return [(back(name), back(address)) for name, address in getaddresses(unfolded)]


def _usable(address: str) -> bool:
    """An address we could answer: a local part and a domain, no spaces, and no longer
    than any mail server accepts (nor than the contract's address fields hold). Nor any
    of the characters that give an address header its structure (quotes, brackets,
    commas, colons...): a quoted local part is all but unknown in customers' mail, and
    the parser's reading of `"a@example.org\\"<b@example.com>"` was an address that our
    own To: header then named differently."""
    local, at, domain = address.rpartition("@")
    return (bool(at and local and domain) and len(address) <= MAX_ADDRESS_CHARS
            and not any(char.isspace() for char in address) and not _ADDRESS_SPECIALS.search(address))


def _sender(message: Message) -> tuple[str, str | None]:
    for name, address in _addresses(_headers(message, "From")):
        if _usable(address):
            return address.lower(), _collapse(_decode_words(name)) or None
    raise MailParseError("the message has no usable From address")


def _recipients(message: Message) -> tuple[str, ...]:
    addresses = _addresses(_headers(message, "To") + _headers(message, "Cc"))
    return tuple(dict.fromkeys(address.lower() for _, address in addresses if _usable(address)))


def _rfc3339(value: str | None) -> str | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(_collapse(value))
        if moment.tzinfo is None:  # "-0000": the sender did not know its zone; RFC 5322 says UTC
            moment = moment.replace(tzinfo=timezone.utc)
        moment = moment.astimezone(timezone.utc)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


# -- loop protection -----------------------------------------------------------------


def _noise(message: Message, from_address: str, own_addresses: tuple[str, ...]) -> str | None:
    """Why this message must not open a ticket. Answering a robot starts a mail loop, and
    the cheapest loop to prevent is the one with ourselves, so that is checked first."""
    if from_address in {address.lower() for address in own_addresses} or _has(message, "X-Deskstream-Ticket"):
        return "own-mail"
    if _is_bounce(message, from_address):
        return "bounce"
    if _is_auto_reply(message):
        return "auto-reply"
    if _is_bulk(message):
        return "bulk"
    return None


def _has(message: Message, name: str) -> bool:
    return bool(_headers(message, name))


def _is_bounce(message: Message, from_address: str) -> bool:
    local_part = from_address.rpartition("@")[0]
    null_return_path = any("".join(value.split()) == "<>" for value in _headers(message, "Return-Path"))
    return _content_type(message) == "multipart/report" or local_part in {"mailer-daemon", "postmaster"} or null_return_path


def _is_auto_reply(message: Message) -> bool:
    """RFC 3834 Auto-Submitted, plus the two headers older responders use instead.
    X-Auto-Response-Suppress is deliberately not here: it asks *others* not to answer,
    and Exchange puts it on ordinary mail."""
    auto_submitted = _header(message, "Auto-Submitted")
    if auto_submitted is not None and auto_submitted.split(";", 1)[0].strip().lower() != "no":
        return True
    return _has(message, "X-Autoreply") or _has(message, "X-Autorespond")


def _is_bulk(message: Message) -> bool:
    precedence = (_header(message, "Precedence") or "").strip().lower()
    return precedence in {"bulk", "junk", "list"} or _has(message, "List-Id") or _has(message, "List-Unsubscribe")


# -- MIME structure ------------------------------------------------------------------


def _leaves(part: Message, depth: int = 0) -> Iterator[Message]:
    """The parts that carry content, in order. An attached message (message/*) is one
    leaf: its text is the customer's attachment, not the customer's words."""
    if depth > MAX_DEPTH:
        raise MailParseError("the message is nested too deeply to parse")
    if part.is_multipart() and _content_type(part).startswith("multipart/"):
        for child in part.get_payload():
            yield from _leaves(child, depth + 1)
    else:
        yield part


def _content_type(part: Message) -> str:
    """The part's type, or text/plain when it is missing or nonsense: a part whose type
    we cannot read is far more often somebody's words than somebody's file."""
    try:
        content_type = part.get_content_type()
    except Exception:  # the policy's header parser has raised on malformed values before
        return "text/plain"
    maintype = content_type.partition("/")[0]
    if maintype not in _KNOWN_MAINTYPES or (maintype == "multipart" and not part.is_multipart()):
        return "text/plain"
    return content_type


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:  # as in _content_type
        return None


def _filename(part: Message) -> str | None:
    """The decoded file name: RFC 2231 is handled by the parser, encoded-words in quotes
    (what most clients actually send) by the policy, and leftovers by _decode_words."""
    try:
        name = part.get_filename()
    except Exception:  # as in _content_type
        name = None
    if not isinstance(name, str):
        return None
    return _collapse(_decode_words(name) if "=?" in name else name) or None


def _is_text_body(part: Message) -> bool:
    return (
        _content_type(part) in {"text/plain", "text/html"}
        and _disposition(part) != "attachment"
        and _filename(part) is None
    )


def _is_attachment(part: Message) -> bool:
    """Everything that is not body text is a file: named or not, inline or not."""
    return not _is_text_body(part)


def _body_part(message: Message) -> Message | None:
    """The first text/plain that is not a file, else the first such text/html: the
    plain alternative is what the sender's client wrote for humans without HTML."""
    candidates = [part for part in _leaves(message) if _is_text_body(part)]
    plain = [part for part in candidates if _content_type(part) == "text/plain"]
    return (plain or candidates or [None])[0]  # not `part or …`: a part without headers is falsy


def _body_text(part: Message) -> str:
    text = _normalise_newlines(_decode_bytes(_payload(part), _charset(part)))
    if _content_type(part) == "text/html":
        return html_to_text(text)
    if _param(part, "format").lower() == "flowed":
        text = _unflow(text, delsp=_param(part, "delsp").lower() == "yes")
    return text.strip()


def _payload(part: Message) -> bytes:
    """The decoded bytes; base64 and quoted-printable are undone by the parser, lenient
    to broken padding. An attached message is serialised back to its own bytes."""
    if part.is_multipart():
        return _serialised_body(part)
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


class _LenientBytesGenerator(BytesGenerator):
    """The standard BytesGenerator, except that text the parser handed back as characters
    is written as UTF-8 rather than refused: a multipart whose boundary never came keeps
    its body as text, decoded with 'replace' when it had 8-bit bytes, and the standard
    generator's ASCII-only write raised UnicodeEncodeError on it. Undecoded bytes (the
    parser's surrogate escapes) are still written back as the bytes they were."""

    def write(self, s: str) -> None:
        self._fp.write(s.encode("utf-8", "surrogateescape"))


def _serialised_body(part: Message) -> bytes:
    """An attached message's bytes, written back from what the parser made of it.

    Too deep a nesting of attached messages refuses the mail, as the parser's own
    recursion does. Anything else the standard generator trips over (it re-reads
    headers the parser let through: RFC 2231 parameters both numbered and not make it
    raise TypeError) costs the attachment its unwritten rest, never the mail."""
    buffer = io.BytesIO()
    try:
        _LenientBytesGenerator(buffer, mangle_from_=False, policy=policy.compat32.clone(linesep="\r\n")).flatten(part)
    except RecursionError:  # attached messages inside attached messages: _leaves does not count those
        raise MailParseError("the message is nested too deeply to parse") from None
    except Exception:  # nosec B110  # as in _content_type, malformed headers make the email package raise; what was written is kept
        pass
    data = buffer.getvalue()
    return data[2:] if data.startswith(b"\r\n") else data.partition(b"\r\n\r\n")[2]


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:  # as in _content_type
        return None


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:  # as in _content_type
        return ""
    return value.strip() if isinstance(value, str) else ""


def _attachment(part: Message) -> Attachment:
    content = _payload(part)
    try:
        content_type = part.get_content_type()
    except Exception:  # as in _content_type
        content_type = "application/octet-stream"
    return Attachment(_filename(part), content_type, len(content), hashlib.sha256(content).hexdigest(), content)


# -- text ------------------------------------------------------------------------------


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Text from bytes whatever the label says. Latin-1 labels on bytes 0x80-0x9F are
    cp1252 (Outlook's curly quotes and euro sign); a missing, US-ASCII or unknown label
    means "guess": UTF-8 when it decodes, else cp1252."""
    codec = _codec(charset)
    if codec == _LATIN1:
        return _cp1252(data) if _C1_BYTES.search(data) else data.decode("latin-1")
    if codec in {None, _ASCII, _UNKNOWN}:
        return _guess(data)
    try:
        text = data.decode(codec)
    except (UnicodeError, LookupError):  # LookupError: a codec that is not a text encoding
        return _guess(data)
    # Some codecs decode to lone surrogates (utf-7's "+2AA-", unicode_escape's "\\ud800"),
    # which are no characters: JSON cannot carry them and the event could never be sent.
    return _SURROGATES.sub("\ufffd", text)


def _codec(charset: str | None) -> str | None:
    name = (charset or "").strip().strip("\"'").lower()
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a NUL or a lone surrogate in the name
        return _UNKNOWN


def _guess(data: bytes) -> str:
    """UTF-8 if the bytes are UTF-8; UTF-8 with a few replacement characters if they
    mostly are; otherwise the single-byte charset Windows and old webmails use."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _UTF8_SEQUENCE.search(data):
        return data.decode("utf-8", "replace")
    return _cp1252(data)


def _cp1252(data: bytes) -> str:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
        return data.decode("latin-1")


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def _unflow(text: str, delsp: bool = False) -> str:
    """Undo RFC 3676 format=flowed (Thunderbird, Apple Mail): a line ending in a space
    continues on the next line of the same quote depth, so paragraphs come back whole
    instead of hard-wrapped at 72 columns."""
    lines: list[str] = []
    open_depth: int | None = None
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:].removeprefix(" ")
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        if lines and open_depth == depth:
            lines[-1] += content
        else:
            lines.append("> " * depth + content if depth else content)
        open_depth = depth if flowed else None
    return "\n".join(lines)


# -- quoted history and signatures -----------------------------------------------------

_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(original message|mensaje original)\s*-{2,}\s*$", re.IGNORECASE
)
_HEADER_FROM = re.compile(r"^\s*\*?(from|de)\s*:\*?\s+\S", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^\s*\*?(sent|enviado|enviado el)\s*:\*?\s", re.IGNORECASE)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_ATTRIBUTION_END = re.compile(r"(wrote|escribió|escribio)\s*:\s*$", re.IGNORECASE)
_ATTRIBUTION_START = re.compile(r"^\s*(on|el)\s", re.IGNORECASE)
_SENT_FROM = re.compile(
    r"^\s*(sent from my \S.*|enviado desde mi \S.*|sent from (mail|outlook) for \S.*|"
    r"get outlook for (ios|android)|obtener outlook para (ios|android)|descargar outlook para (ios|android))\s*$",
    re.IGNORECASE,
)


def strip_quoted(text: str) -> str:
    """The new text of a reply: without the history the client quoted below (or, for
    inline answers, between) it, without the signature and the "Sent from my phone"
    footer. Agents read this; the full text stays on the ticket for when we are wrong.
    A message that is nothing but quotation is returned whole: forwarding something
    to support is itself a message."""
    lines = _normalise_newlines(text).split("\n")
    lines = lines[: _history_start(lines)]
    lines = _without_quotes(lines)
    lines = _without_sent_from(lines)
    new_text = _tidy(lines)
    return new_text or text.strip()


def _history_start(lines: list[str]) -> int:
    """Where everything below is not this sender's: an Outlook separator or header
    block, or the "-- " signature delimiter."""
    for index, line in enumerate(lines):
        if line.rstrip() == "--" or _SEPARATOR.match(line):
            return index
        if _HEADER_FROM.match(line) and _next_line_is_sent(lines, index):
            return index - 1 if index and _UNDERSCORES.match(lines[index - 1]) else index
    return len(lines)


def _next_line_is_sent(lines: list[str], index: int) -> bool:
    following = next((line for line in lines[index + 1:] if line.strip()), "")
    return bool(_HEADER_SENT.match(following))


def _is_quote(line: str) -> bool:
    return line.lstrip().startswith(">")


def _without_quotes(lines: list[str]) -> list[str]:
    """Drop quoted lines and the attribution ("On ... wrote:", "El ... escribió:", maybe
    wrapped over two or three lines) just above each quoted block."""
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _is_quote(line):
            if index == 0 or not _is_quote(lines[index - 1]):
                _drop_attribution(kept)
            continue
        kept.append(line)
    return kept


def _drop_attribution(kept: list[str]) -> None:
    end = len(kept)
    while end and not kept[end - 1].strip():
        end -= 1
    if not end or not _ATTRIBUTION_END.search(kept[end - 1]):
        return
    for start in range(end - 1, max(end - 4, -1), -1):
        if _ATTRIBUTION_START.match(kept[start]):
            del kept[start:]
            return


def _without_sent_from(lines: list[str]) -> list[str]:
    lines = list(lines)
    while lines and (not lines[-1].strip() or _SENT_FROM.match(lines[-1])):
        lines.pop()
    return lines


def _tidy(lines: Iterable[str]) -> str:
    """Trailing spaces off, at most one blank line in a row, no blank edges."""
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# -- HTML ------------------------------------------------------------------------------

_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol", "hr", "pre", "dl"}
_LINES = {
    "div", "tr", "li", "section", "article", "header", "footer", "nav", "main", "aside", "address",
    "center", "form", "fieldset", "figure", "figcaption", "caption", "dt", "dd", "thead", "tbody", "tfoot",
}
_SKIPPED = {"script", "style", "template"}
_HEAD_ONLY = {"title", "meta", "link", "base", "style", "script"}
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


class _TextWriter(HTMLParser):
    """HTML as the plain text a mail client would show for it. Quoted history marked
    up as such (blockquote type=cite, Gmail's gmail_quote) gets "> " prefixes, so the
    same strip_quoted works on HTML-only replies."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []  # (quote depth, text)
        self.current: list[str] = []
        self.current_depth = 0
        self.current_marker = ""
        self.marker = ""  # "- " (indented by list depth) for a list item, until its first text
        self.separator = False  # a table cell began after text on this line
        self.quotes: list[bool] = []  # per open blockquote: is it quoted history?
        self.lists = 0
        self.items = 0
        self.skipping = 0
        self.in_head = False
        self.in_title = False
        self.in_pre = 0

    # structure

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.skipping, self.in_head, self.in_title = 0, False, False
        elif tag == "head":
            self.in_head = True
        elif tag == "title":
            self.in_title = True
        elif self.in_head and tag not in _HEAD_ONLY:
            self.in_head = False  # a page that never closed its <head>
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag == "br":
            self._break_line()
        elif tag == "li":
            self._end_line()
            self.marker = "  " * max(self.lists - 1, 0) + "- "
            self.items += 1
        elif tag in {"td", "th"}:
            self.separator = self._has_text()
        elif tag == "blockquote":
            self._paragraph()
            self.quotes.append(_is_cited(dict(attrs)))
        elif tag in _PARAGRAPHS:
            self._paragraph()
        elif tag in _LINES:
            self._end_line()
        if tag in {"ul", "ol"}:
            self.lists += 1
        elif tag == "pre":
            self.in_pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(self.skipping - 1, 0)
        elif tag == "head":
            self.in_head = False
        elif tag == "title":
            self.in_title = False
        elif tag == "li":
            self._end_line()
            self.items = max(self.items - 1, 0)
        elif tag == "blockquote":
            self._paragraph()
            if self.quotes:
                self.quotes.pop()
        elif tag in _PARAGRAPHS:
            self._paragraph()
        elif tag in _LINES:
            self._end_line()
        if tag in {"ul", "ol"}:
            self.lists = max(self.lists - 1, 0)
            self.items = min(self.items, self.lists)  # items whose </li> never came
        elif tag == "pre":
            self.in_pre = max(self.in_pre - 1, 0)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in {"br", "hr", "img", "meta", "link", "base", "input", "wbr"}:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.skipping or self.in_head or self.in_title:
            return
        data = data.translate(_INVISIBLE)
        if self.in_pre:
            first, *rest = data.split("\n")
            self._write(first)
            for line in rest:
                self._break_line()
                self._write(line)
        else:
            self._write(re.sub(r"\s+", " ", data))

    # output

    def _quote_depth(self) -> int:
        return sum(self.quotes)

    def _has_text(self) -> bool:
        return any(piece.strip() for piece in self.current)

    def _write(self, text: str) -> None:
        if not text:
            return
        if not self._has_text():
            self.current_depth = self._quote_depth()
            if not text.strip():
                return
            self.current_marker, self.marker = self.marker, ""
        elif self.separator and text.strip():
            text = " | " + text.lstrip()
        if text.strip():
            self.separator = False
        self.current.append(text)

    def _break_line(self) -> None:
        """<br>: always a new line, even an empty one."""
        text = _collapse_spaces("".join(self.current))
        self.lines.append((self.current_depth if text else 0, self.current_marker + text if text else ""))
        self.current, self.current_marker, self.separator = [], "", False

    def _end_line(self) -> None:
        """A block boundary: a new line unless we are already at the start of one."""
        if self._has_text():
            self._break_line()

    def _paragraph(self) -> None:
        self._end_line()
        if self.items:  # <p> inside <li> (Outlook): keep the list tight
            return
        if self.lines and self.lines[-1][1]:
            self.lines.append((0, ""))

    def text(self) -> str:
        self._end_line()
        rendered = [">" * depth + " " + line if depth else line for depth, line in self.lines]
        return _tidy(rendered)


def _is_cited(attrs: dict[str, str | None]) -> bool:
    return (attrs.get("type") or "").lower() == "cite" or "quote" in (attrs.get("class") or "").lower()


def _collapse_spaces(text: str) -> str:
    return re.sub(r"[^\S\n]+", " ", text).strip()


def html_to_text(html: str) -> str:
    """Readable text from an HTML body: what the customer sees, not the markup, with
    paragraphs, list items and table rows on lines of their own."""
    writer = _TextWriter()
    try:
        writer.feed(html)
        writer.close()
    except (AssertionError, ValueError, IndexError):  # html.parser's rare internal failures
        return _tidy(_collapse_spaces(unescape(line)) for line in re.sub(r"<[^>]*>", " ", html).split("\n"))
    return writer.text()
