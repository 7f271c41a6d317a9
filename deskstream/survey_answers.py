"""Whether a customer's message is an answer to "How did we do? Reply 1 to 5".

After a ticket is resolved deskstream asks for a score by SMS, WhatsApp or web chat,
in Spanish or English. The customer's next message may be the answer ("5",
"cinco", "muy mal", "4 - fast but the app still lags") or a new problem ("5 días sin
internet", "my router died again"). Intake records answers and opens no ticket for
them, so a false answer swallows a customer's new problem; that is worse than a
missed score, and every rule below errs towards "not an answer" (`None`), which
intake then treats as a normal message.

Normalising (for matching only; the comment keeps the customer's own text): strip,
lower-case, fold accents (NFKD without combining marks), drop invisible format
characters (direction marks, zero-width joiners, emoji variation selectors) and
collapse whitespace. Surrounding punctuation (quotes, ``¡``, brackets, ``*``) is
accepted; control characters are ignored.

A score, which the message must START with:

- a digit 1-5, alone or followed by ``/5``, ``de 5``, ``out of 5`` and/or
  ``estrellas``/``stars``/``puntos``/``points`` ("3/5", "2 de 5", "5 stars");
- a number word: es ``uno``/``una``, ``dos``, ``tres``, ``cuatro``, ``cinco``;
  en ``one`` .. ``five`` (with the same suffixes: "five stars");
- 1 to 5 star emoji (⭐ or ★), optionally padded with empty ones (★★★☆☆);
- a phrase from `PHRASES` ("muy mal" 1, "mal" 2, "regular" 3, "bien" 4,
  "excelente" 5, "terrible" 1, "bad" 2, "ok" 3, "good" 4, "great" 5, ...); the
  longest phrase wins ("muy bien" is 5, not "bien" 4).

What follows the score, after separators (``-``, ``,``, ``:``, ``.``, ``!``...), is
the comment: trimmed, `None` when there is nothing, at most `MAX_COMMENT_CHARS`.

Not an answer:

- empty text, or more than `MAX_WORDS` words (a paragraph is the customer telling
  us something), or any question mark (``?``, ``¿``): a question needs an agent;
- 0, 6 and more, multi-digit numbers ("10", "15 minutes"), decimals, ranges and
  times ("4,5", "3-4", "5:30"), a digit glued to anything but a separator ("5pm",
  "5€", "5/10");
- a digit or number word followed by a counting or unit noun (`NOUNS`: "5 días",
  "2 questions", "3 veces", "1 hora") or by a word that makes it a count ("5 de
  mis líneas", "2 more", "3 o 4"); after a bare space the noun may also be the
  second word ("5 largos días", "2 quick questions");
- a phrase or number word followed, without punctuation, by anything but
  courtesy words ("mal el router", "good morning", "bad signal again" are
  sentences that happen to start like a score; "muy bien gracias" and "excelente
  servicio" are answers, and "bien, pero sigo sin internet" is 4 with a comment);
- a phrase or number word with a comment of more than `MAX_PHRASE_COMMENT_WORDS`
  words (a digit's comment may run up to the `MAX_WORDS` limit: a leading digit is a
  deliberate score, a leading "mal" may just be how a complaint starts);
- "ok"/"okay" with anything but courtesy words after it: people acknowledge any
  message with "ok, ..." before saying what they need;
- a compliance keyword (STOP, START, HELP, AYUDA, BAJA... as in intake's SMS
  keywords), alone or as the whole comment ("5 STOP"): intake must act on it.
"""
from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

MAX_COMMENT_CHARS = 1000
MAX_WORDS = 40
MAX_PHRASE_COMMENT_WORDS = 12

# Folded (lower-case, no accents) phrase -> score, in both languages.
PHRASES: dict[str, int] = {
    "muy mal": 1, "fatal": 1, "pesimo": 1, "horrible": 1, "mal": 2, "regular": 3, "normal": 3,
    "bien": 4, "muy bien": 5, "excelente": 5, "genial": 5, "perfecto": 5,
    "very bad": 1, "terrible": 1, "awful": 1, "bad": 2, "poor": 2,
    "ok": 3, "okay": 3, "average": 3, "so so": 3, "so-so": 3, "good": 4,
    "very good": 5, "excellent": 5, "great": 5, "perfect": 5, "amazing": 5,
}
NUMBER_WORDS: dict[str, int] = {
    "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
}
ACKNOWLEDGEMENTS = frozenset({"ok", "okay"})

# Counting and unit nouns: a number before one of these is a quantity, not a score.
NOUNS = frozenset("""
    segundo segundos seg minuto minutos min mins hora horas h hs hr hrs dia dias semana semanas
    mes meses ano anos vez veces cosa cosas pregunta preguntas duda dudas consulta consultas
    problema problemas incidencia incidencias averia averias factura facturas recibo recibos
    cargo cargos linea lineas telefono telefonos movil moviles router routers equipo equipos
    dispositivo dispositivos aparato aparatos llamada llamadas mensaje mensajes correo correos
    tecnico tecnicos agente agentes persona personas visita visitas intento intentos cliente
    clientes numero numeros euro euros eur € $ % gb mb megas canal canales tarjeta tarjetas sim
    ordenador ordenadores tele teles pedido pedidos reclamacion reclamaciones usuario usuarios
    second seconds sec secs minute minutes hour hours day days week weeks month months year years
    time times thing things question questions issue issues problem problems bill bills invoice
    invoices charge charges line lines phone phones device devices call calls message messages
    email emails mail ticket tickets technician technicians tech techs agent agents people person
    persons visit visits attempt attempts try tries dollar dollars pound pounds usd account
    accounts order orders user users computer computers tv tvs channel channels card cards
    am pm oclock o'clock
""".split())
# Words that make the number before them a count, a range or a part of something.
COUNT_WORDS = frozenset("""
    de del of out x por per a to y and o or mas more menos less otra otro otras otros other
    others another hasta until entre between
""".split())
# What may follow a phrase or number word without punctuation and still be an answer.
COURTESY = frozenset("""
    gracias muchas mil thanks thank you so much thx ty cheers servicio service atencion
    attention trabajo job work experiencia experience team
""".split())
# Intake's SMS compliance keywords (services/intake/sms.py): never an answer.
KEYWORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "baja",
                      "start", "unstop", "alta", "help", "ayuda"})

_QUESTION_MARKS = frozenset("?¿؟")
_LEADING = "\"'“”‘’«»¡([{*_ "
_SEPARATORS = "-–—,:;.!|)]}>~=*_…"
_QUOTES = "\"'“”‘’«»"
_EMPTY_COMMENT = set(_SEPARATORS + _QUOTES + "¡([{")
_WORD_EDGES = "".join(sorted(set(string.punctuation + "“”‘’«»¡¿…–—") - {"$", "%"}))
_GLUED = ".,:-/–—"  # between two digits: a decimal, a time, a range or a date

_SUFFIX = r"(?: ?/ ?5| (?:de|out of) (?:5|cinco|five))?(?: (?:estrellas?|stars?|puntos?|points?|pts))?"
_DIGIT = re.compile(r"[1-5]" + _SUFFIX)
_WORD = re.compile(
    "(" + "|".join(re.escape(w) for w in sorted({*PHRASES, *NUMBER_WORDS}, key=len, reverse=True)) + ")"
    r"(?!\w)" + _SUFFIX)
_STARS = re.compile(r"[⭐★](?: ?[⭐★☆])*")


@dataclass(frozen=True, slots=True)
class Answer:
    """A customer's score for a resolved ticket and what they said with it."""

    score: int  # 1..5
    comment: str | None  # what follows the score, trimmed, None if nothing; at most 1000 chars

    def __post_init__(self) -> None:
        if not 1 <= self.score <= 5:
            raise ValueError(f"a survey score is 1 to 5, not {self.score}")
        if self.comment is not None and not 0 < len(self.comment) <= MAX_COMMENT_CHARS:
            raise ValueError(f"a comment is 1 to {MAX_COMMENT_CHARS} characters")


def parse(text: str) -> Answer | None:
    """The survey answer `text` is, or None when it is not clearly one."""
    text = "".join(c for c in text if c in "\t\n\r" or unicodedata.category(c) != "Cc")
    if not text.strip() or len(text.split()) > MAX_WORDS:
        return None
    folded, origin = fold(text)
    if any(c in _QUESTION_MARKS for c in folded) or _words(folded) in KEYWORDS:
        return None
    start = len(folded) - len(folded.lstrip(_LEADING))
    found = _score_at(folded, start)
    if found is None:
        return None
    score, end, kind = found
    if end < len(folded) and origin[end] == origin[end - 1]:
        return None  # the score would end inside one of the customer's characters ("½")
    rest = folded[end:]
    if not _follows_well(kind, folded[start:end], rest):
        return None
    comment = _comment(text[origin[end]:] if end < len(folded) else "")
    if comment is not None and _words(rest) in KEYWORDS:
        return None
    if kind in ("number", "phrase") and comment is not None and len(comment.split()) > MAX_PHRASE_COMMENT_WORDS:
        return None
    return Answer(score, comment)


def fold(text: str) -> tuple[str, list[int]]:
    """`text` lower-cased, without accents or invisible characters, whitespace collapsed,
    and for each folded character the index of the original one it came from, so that
    the comment can be cut from the customer's own text."""
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for part in unicodedata.normalize("NFKD", char):
            if unicodedata.combining(part) or unicodedata.category(part) in ("Cf", "Mn"):
                continue
            for lower in part.lower():
                if lower.isspace():
                    if not folded or folded[-1] == " ":
                        continue
                    lower = " "
                folded.append(lower)
                origin.append(index)
    while folded and folded[-1] == " ":
        folded.pop()
        origin.pop()
    return "".join(folded), origin


def _score_at(folded: str, start: int) -> tuple[int, int, str] | None:
    """(score, end of the score in `folded`, kind) for a score starting at `start`:
    kind is "digit", "number" (a number word), "phrase" or "stars"."""
    stars = _STARS.match(folded, start)
    if stars:
        filled = sum(c in "⭐★" for c in stars.group())
        empty = stars.group().count("☆")
        return (filled, stars.end(), "stars") if filled + empty <= 5 else None
    digit = _DIGIT.match(folded, start)
    if digit:
        return int(folded[start]), digit.end(), "digit"
    word = _WORD.match(folded, start)
    if word is None:
        return None
    key = word.group(1)
    if key in NUMBER_WORDS:
        return NUMBER_WORDS[key], word.end(), "number"
    return PHRASES[key], word.end(), "phrase"


def _follows_well(kind: str, score: str, rest: str) -> bool:
    """Whether what follows a score (`rest`, folded) leaves it a score: see the rules
    in the module docstring."""
    if kind == "stars" or not rest:
        return True
    following = rest[0]
    if kind == "digit":
        if following != " " and following not in _SEPARATORS + _QUOTES:
            return False  # "10", "5pm", "5€", "5/10"
        if following in _GLUED and rest[1:2].isdigit():
            return False  # "4,5", "5:30", "3-4"
    elif following.isalnum() or following == "_":
        return False
    words = _word_list(rest)
    bare = following == " " and rest[1] not in _SEPARATORS  # no punctuation sets the score apart
    if kind in ("digit", "number"):
        if words[:1] and words[0] in COUNT_WORDS:
            return False  # "5 de mis líneas", "2 more", "3 o 4"
        if any(word in NOUNS for word in (words[:2] if bare else words[:1])):
            return False  # "5 días", "2 quick questions"
    if kind in ("number", "phrase") and (bare or score in ACKNOWLEDGEMENTS):
        return all(word in COURTESY for word in words)  # "muy bien gracias", not "mal el router"
    return True


def _comment(raw: str) -> str | None:
    """The customer's text after the score: separators and whitespace trimmed, cut at
    `MAX_COMMENT_CHARS`, None when nothing but punctuation is left."""
    start, end = 0, len(raw)
    while start < end and (raw[start].isspace() or raw[start] in _SEPARATORS or _invisible(raw[start])):
        start += 1
    while end > start and (raw[end - 1].isspace() or _invisible(raw[end - 1])):
        end -= 1
    comment = raw[start:end]
    if all(c in _EMPTY_COMMENT or _invisible(c) or c.isspace() for c in comment):
        return None
    return comment[:MAX_COMMENT_CHARS].rstrip()


def _invisible(char: str) -> bool:
    return unicodedata.category(char) in ("Cf", "Mn", "Cc")


def _word_list(folded: str) -> list[str]:
    """The words of folded text without the punctuation around them; emoji-only
    tokens are dropped (they add nothing to what the words say)."""
    words = (w.strip(_WORD_EDGES) for w in folded.split())
    return [w for w in words if any(c.isalnum() or c in "€$%" for c in w)]


def _words(folded: str) -> str:
    return " ".join(_word_list(folded))
