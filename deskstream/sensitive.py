"""What customers should not have written, masked before anyone else reads it.

Customers write card numbers, passwords and national ids into chats, SMS and mail
("my card is 4242 4242 4242 4242", "mi contraseña es hunter2"). Intake masks them in
every contact before the ticket events are made (services/intake/masking.py), so
agents, the other services and whatever reads `tickets.events` never hold them:

- **card numbers**: 13 to 19 digits, in groups separated by single spaces or dashes,
  starting as a card network's numbers do (2200-2720, 3, 4, 5, 6) and passing the Luhn
  check. The last four stay, ``[card ····4242]``, so an agent can still speak of "the
  card ending 4242". Digits glued to letters (hashes, hex ids), numbers written after a
  ``+`` (international phone numbers) and valid IBANs are not cards: an IBAN is what a
  customer gives to be refunded, not a secret, and is left as written.
- **passwords, PINs and card security codes** written after a word that names them
  ("password: x", "my password is x", "pwd=x", "contraseña: x", "mi clave es x",
  "PIN 1234", "CVV 123"): the value becomes ``[secret ····]`` and the words stay. After
  "is"/"es" a common word ("is wrong", "es incorrecta", "is not working") is left alone.
- **national ids**: Spanish DNI (8 digits and the check letter, verified) and NIE
  (X/Y/Z, 7 digits, check letter verified) become ``[DNI ····]``/``[NIE ····]``; US
  Social Security numbers written ###-##-#### outside the ranges never issued (area
  000, 666, 900-999; group 00; serial 0000) become ``[SSN ····]``.

Masking is idempotent (a marker is never masked again and leaves nothing that could
be) and reports which kinds it found. A masked text can be longer than the original
(``pwd=x``): whoever has a length limit clips after masking.

`mask_contact_details` masks e-mail addresses and phone numbers (``a***@example.com``,
``+34******678``) for log lines and provider answers: enough to tell them apart, not
enough to write to them.

Pure functions, no I/O: tested in tests/unit/test_sensitive.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

CARD = "card"
PASSWORD = "password"  # nosec B105  # the name of a kind of masked data, not a password
NATIONAL_ID = "national_id"

HIDDEN = "····"
SECRET_MARKER = f"[secret {HIDDEN}]"
_DIGIT = re.compile(r"[0-9]")
_CAPITAL = re.compile(r"[A-Z]")
# Every marker this module writes starts so; a value that starts so is never masked again.
_MARKER_START = re.compile(rf"\[(?:card|secret|DNI|NIE|SSN) {HIDDEN}")


@dataclass(frozen=True, slots=True)
class Masked:
    """A text with its sensitive data masked, and which kinds were found (CARD, PASSWORD, NATIONAL_ID)."""

    text: str
    kinds: frozenset[str]


def mask(text: str) -> Masked:
    """`text` with card numbers, national ids and written passwords masked (see the module's docstring)."""
    kinds: set[str] = set()
    for masker in (_mask_cards, _mask_national_ids, _mask_secrets):
        text = masker(text, kinds)
    return Masked(text, frozenset(kinds))


# --- card numbers ---------------------------------------------------------------------

# A run of digit groups separated by single spaces or dashes, not glued to a word or
# written after "+" (a last group glued to a word is not part of a card, see
# `_mask_cards`). Possessive quantifiers: linear on any input, a run is taken whole.
_DIGIT_RUN = re.compile(r"(?<![\w+])[0-9]++(?:[ -][0-9]++)*+")
_WORD_CHAR = re.compile(r"\w")
_GROUP = re.compile(r"[0-9]+")
MIN_CARD_DIGITS, MAX_CARD_DIGITS = 13, 19


def luhn_valid(digits: str) -> bool:
    """The Luhn check every payment card number passes (ISO/IEC 7812-1): from the right,
    every second digit doubled (its digits summed), the total a multiple of 10."""
    values = [int(char) for char in digits]
    return (sum(values[-1::-2]) + sum(_DOUBLED[value] for value in values[-2::-2])) % 10 == 0


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _card_network_prefix(digits: str) -> bool:
    """Starts as a card network's numbers do: Mir and Mastercard 2200-2720, Amex/Diners/JCB
    3, Visa 4, Mastercard/Maestro 5, Discover/UnionPay/Maestro 6. Compact timestamps
    (20xx...) and numbers starting 0, 1, 7, 8, 9 are not cards."""
    first = digits[0]
    if first in "3456":
        return True
    return first == "2" and 2200 <= int(digits[:4]) <= 2720


def is_card_number(digits: str) -> bool:
    return (MIN_CARD_DIGITS <= len(digits) <= MAX_CARD_DIGITS and _card_network_prefix(digits)
            and luhn_valid(digits))


def card_marker(digits: str) -> str:
    return f"[card {HIDDEN}{digits[-4:]}]"


def _mask_cards(text: str, kinds: set[str]) -> str:
    if not _DIGIT.search(text):
        return text
    ibans = _iban_spans(text)

    def replace(run: re.Match[str]) -> str:
        if any(start <= run.start() < end for start, end in ibans):
            return run.group()
        groups = list(_GROUP.finditer(run.group()))
        if _WORD_CHAR.match(run.string, run.end()):
            groups.pop()  # "1234Z", "4242abc": the end of a word (an id, a hash), never a card's digits
        pieces: list[str] = []
        written = 0  # how much of the run is in `pieces`
        i = 0
        while i < len(groups):
            found = _card_from(groups, i)
            if found is None:
                i += 1
                continue
            last, digits = found
            pieces += [run.group()[written:groups[i].start()], card_marker(digits)]
            written = groups[last].end()
            kinds.add(CARD)
            i = last + 1
        return "".join(pieces) + run.group()[written:]

    return _DIGIT_RUN.sub(replace, text)


def _card_from(groups: list[re.Match[str]], first: int) -> tuple[int, str] | None:
    """The longest card number made of whole groups from `first` on: (its last group, its
    digits). Only spans of 13 to 19 digits that start as a card network's are checked, so
    a long run costs a few steps a group."""
    if groups[first].group()[0] not in "23456":
        return None
    ends: list[int] = []
    count = 0
    for last in range(first, len(groups)):
        count += len(groups[last].group())
        if count > MAX_CARD_DIGITS:
            break
        if count >= MIN_CARD_DIGITS:
            ends.append(last)
    for last in reversed(ends):
        digits = "".join(group.group() for group in groups[first:last + 1])
        if is_card_number(digits):
            return last, digits
    return None


# An IBAN as people write it: country, check digits, then groups of (usually) four.
_IBAN = re.compile(r"(?<!\w)[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{1,4}){3,8}(?!\w)")
_IBAN_SEPARATORS = re.compile(r"[ -]")


def iban_valid(compact: str) -> bool:
    """ISO 13616's check: the country and check digits moved to the end, letters as
    numbers (A=10 ... Z=35), the whole mod 97 is 1."""
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _iban_spans(text: str) -> list[tuple[int, int]]:
    if not _CAPITAL.search(text):
        return []
    return [(m.start(), m.end()) for m in _IBAN.finditer(text) if iban_valid(_IBAN_SEPARATORS.sub("", m.group()))]


# --- national ids ---------------------------------------------------------------------

DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_DNI = re.compile(r"(?<![\w.-])([0-9]{2}\.?[0-9]{3}\.?[0-9]{3})[ -]?([A-Za-z])(?!\w)")
_NIE = re.compile(r"(?<![\w.-])([XYZxyz])[ -]?([0-9]{7})[ -]?([A-Za-z])(?!\w)")
_SSN = re.compile(r"(?<![\w-])([0-9]{3})-([0-9]{2})-([0-9]{4})(?![\w-])")


def dni_valid(number: str, letter: str) -> bool:
    """The DNI's check letter: the number mod 23 picks it from TRWAGMYFPDXBNJZSQVHLCKE."""
    return DNI_LETTERS[int(number) % 23] == letter.upper()


def nie_valid(prefix: str, number: str, letter: str) -> bool:
    """An NIE is checked as a DNI whose X, Y, Z is 0, 1, 2."""
    return dni_valid(str("XYZ".index(prefix.upper())) + number, letter)


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """Within the ranges the SSA issues: no area 000, 666 or 900-999, no group 00, no serial 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _mask_national_ids(text: str, kinds: set[str]) -> str:
    if not _DIGIT.search(text):
        return text

    def dni(m: re.Match[str]) -> str:
        return _found(kinds, NATIONAL_ID, "[DNI ····]") if dni_valid(m.group(1).replace(".", ""), m.group(2)) else m.group()

    def nie(m: re.Match[str]) -> str:
        return _found(kinds, NATIONAL_ID, "[NIE ····]") if nie_valid(*m.groups()) else m.group()

    def ssn(m: re.Match[str]) -> str:
        return _found(kinds, NATIONAL_ID, "[SSN ····]") if ssn_valid(*m.groups()) else m.group()

    return _SSN.sub(ssn, _NIE.sub(nie, _DNI.sub(dni, text)))


def _found(kinds: set[str], kind: str, marker: str) -> str:
    kinds.add(kind)
    return marker


# --- passwords, PINs, security codes -----------------------------------------------------

_PASSWORD_WORDS = r"password|passwd|passcode|pwd|contrase[ñn]a|clave(?:\s+de\s+acceso)?"  # nosec B105  # words that announce one
_CODE_WORDS = (r"pin(?:\s+(?:code|number))?|c[oó]digo\s+pin|cvv2?|cvc2?|security\s+code"
               r"|c[oó]digo\s+de\s+seguridad")
_MODIFIER = (r"(?:\s+(?:nuev[ao]|antigu[ao]|viej[ao]|actual|temporal|provisional|new|old|current|temporary"
             r"|de\s+(?:la\s+tarjeta|mi\s+cuenta)|(?:of|for)\s+my\s+(?:card|account)))?")
_VERB = r"(?:is|was|es|era|ser[aá]|ser[ií]a|would\s+be|will\s+be)(?:\s+(?:now|ahora|still|todav[ií]a))?"
_SEPARATOR = rf"(?:\s*[:=]\s*|\s+(?P<verb>{_VERB})(?:\s*[:=]\s*|\s+))"
_UNQUOTED_END = re.compile(r"[.,;:)\]}]+$")
_PASSWORD = re.compile(
    rf"(?<![\w\[])(?P<key>{_PASSWORD_WORDS})\b{_MODIFIER}{_SEPARATOR}"
    rf"(?!{_MARKER_START.pattern})(?P<value>\"[^\"\n]{{1,200}}\"|'[^'\n]{{1,200}}'|“[^”\n]{{1,200}}”|«[^»\n]{{1,200}}»|\S++)",
    re.IGNORECASE,
)
_CODE = re.compile(
    rf"(?<![\w\[])(?P<key>{_CODE_WORDS})\b{_MODIFIER}(?:{_SEPARATOR}|\s+)(?P<value>[0-9]{{3,8}})(?!\w)",
    re.IGNORECASE,
)
_CARD_CODE = re.compile(r"cv|security|seguridad", re.IGNORECASE)
# After "is"/"es" these words say something about the password, not what it is.
COMMON_WORDS = frozenset("""
    not no wrong incorrect invalid expired correct right too very the a an my your same different still being been
    reset changed blocked locked working weak strong long short ok okay fine empty missing required needed unknown
    lost forgotten case this that it what which there here and or but for to of in on at also probably definitely
    please set saved stored valid new old now already
    incorrecta incorrecto errónea erróneo erronea erroneo correcta correcto válida valida inválida invalida caducada
    caducado bloqueada bloqueado muy demasiado la el lo los las una un mi tu su misma mismo distinta distinto diferente
    nueva nuevo vieja viejo antigua antiguo segura seguro débil debil corta corto larga largo otra otro que y o pero
    para de en con igual mala malo buena bueno ya esa ese esta este esto eso
""".split())


def _mask_secrets(text: str, kinds: set[str]) -> str:
    lowered = text.lower()
    if not any(word in lowered for word in ("pass", "pwd", "contrase", "clave", "pin", "cv", "security", "seguridad")):
        return text

    def password(m: re.Match[str]) -> str:
        value = m.group("value")
        end = ""
        if value[0] not in "\"'“«":
            trailing = _UNQUOTED_END.search(value)
            if trailing is not None and trailing.start() > 0:
                end = trailing.group()
                value = value[: trailing.start()]
            if m.group("verb") and value.lower() in COMMON_WORDS:
                return m.group()
        kinds.add(PASSWORD)
        return m.string[m.start():m.start("value")] + SECRET_MARKER + end

    def code(m: re.Match[str]) -> str:
        kinds.add(CARD if _CARD_CODE.search(m.group("key")) else PASSWORD)
        return m.string[m.start():m.start("value")] + SECRET_MARKER

    return _CODE.sub(code, _PASSWORD.sub(password, text))


# --- e-mail addresses and phone numbers, for logs and provider answers -----------------

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# "+34 612 345 678", "+34600111222", "whatsapp:+34600111222": 7 to 15 digits after "+".
_INTERNATIONAL = re.compile(r"(?<![\w+])\+[0-9](?:[ .-]?[0-9]){6,14}(?![\w-])")
# A bare run of 8 to 15 digits ("600111222"): the sids and codes around it have letters or
# fewer digits; one dashed to other digits is a date, an id or an SSN, masked or left as such.
_NATIONAL = re.compile(r"(?<![\w+-])[0-9]{8,15}(?![\w-])")


def _international(m: re.Match[str]) -> str:
    digits = "".join(c for c in m.group() if c.isdigit())
    return f"+{digits[:2]}{'*' * (len(digits) - 5)}{digits[-3:]}"


def _national(m: re.Match[str]) -> str:
    return "*" * (len(m.group()) - 3) + m.group()[-3:]


def mask_contact_details(text: str) -> str:
    """`text` with e-mail addresses and phone numbers masked (``a***@example.com``,
    ``+34******678``, ``******222``): enough to tell them apart in a log line or a
    receipt, not enough to write to them. Masking the result again changes nothing, but
    for run-together addresses ("a@b.coma@b.com"): `mask_for_log` repeats until stable."""
    if "@" in text:
        text = _EMAIL.sub(r"\1***@\2", text)
    if _DIGIT.search(text):
        text = _NATIONAL.sub(_national, _INTERNATIONAL.sub(_international, text))
    return text


def mask_for_log(text: str) -> str:
    """What a log line may show of any text: sensitive data and contact details masked.

    Masked again until nothing changes (in practice once, twice for run-together
    addresses such as "ana@example.comana@example.com", whose second half reads as an
    address only once the first is masked), so that a line masked twice is the same."""
    for _ in range(MAX_LOG_ROUNDS):
        masked = mask_contact_details(mask(text).text)
        if masked == text:
            break
        text = masked
    return text


MAX_LOG_ROUNDS = 8  # each round masks more or stops; no text of a log line needs more
