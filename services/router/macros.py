"""Canned answers (macros) for the agent console: replies that ops write once in
`macros.toml` and agents fill in, so that the common answers read the same whoever
sends them and in the customer's own language.

The file is checked as a whole when it is loaded, because ops edit it by hand and a
mistake there (a misspelt placeholder, two macros with one id) should stop the
console's start rather than reach a customer as "{nmae}". Filling never fails on a
missing value: the gap shows as a bracketed label, in the macro's language, that the
agent completes before sending.
"""
from __future__ import annotations

import re
import string
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

DEFAULT_MACROS = Path(__file__).resolve().parent / "macros.toml"
PLACEHOLDERS = ("name", "ticket", "agent", "fix_time")
LANGUAGES = ("es", "en")
FIELDS = ("id", "language", "title", "text")

# What an agent sees where a value is missing: says what to write there, in the
# language of the reply (so it stands out and is not sent by mistake as English).
LABELS: Mapping[str, Mapping[str, str]] = {
    "es": {
        "name": "[nombre del cliente]",
        "ticket": "[número de ticket]",
        "agent": "[tu nombre]",
        "fix_time": "[hora prevista de solución]",
    },
    "en": {
        "name": "[customer name]",
        "ticket": "[ticket number]",
        "agent": "[your name]",
        "fix_time": "[expected fix time]",
    },
}

_FORMATTER = string.Formatter()
_WORD = re.compile(r"\w+")


class MacroError(ValueError):
    """A macros file the console cannot use: bad TOML, a macro with a missing or
    empty field, an unknown language or placeholder, a placeholder with a format
    spec or conversion, or an id used twice. The message names the macro."""


@dataclass(frozen=True, slots=True)
class Macro:
    """One canned answer; `text` keeps its `{placeholders}` until `fill`."""

    id: str
    language: str
    title: str
    text: str


def load_macros(path: Path = DEFAULT_MACROS) -> tuple[Macro, ...]:
    """Every macro in the file, in file order (the order ops chose is the order an
    agent browses them in)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise MacroError(f"{path}: not valid TOML: {error}") from None
    entries = document.get("macro")
    if not isinstance(entries, list) or not entries:
        raise MacroError(f"{path}: no [[macro]] entries")
    macros: list[Macro] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        macro = _macro(entry, number)
        if macro.id in seen:
            raise MacroError(f"macro {macro.id!r}: the id is used by an earlier macro")
        seen.add(macro.id)
        macros.append(macro)
    return tuple(macros)


def fill(text: str, values: Mapping[str, str | None], language: str) -> str:
    """`text` with each placeholder replaced by its value, inserted as is (a name
    that contains braces is not read as a placeholder). A missing, empty or blank
    value becomes the placeholder's label in `language` (English for a language
    without labels), so that the agent sees what is left to complete."""
    labels = LABELS.get(language, LABELS["en"])
    parts: list[str] = []
    for literal, field in _fields(text, "text"):
        parts.append(literal)
        if field is not None:
            value = values.get(field)
            parts.append(value if value and value.strip() else labels[field])
    return "".join(parts)


def search(macros: Iterable[Macro], query: str, language: str) -> list[Macro]:
    """The macros in `language` that hold every word of `query` in their title or
    text, ignoring case and accents (agents type "contrasena" in a hurry). Those
    with more of the words in their title come first, otherwise file order is kept;
    an empty query lists the whole language."""
    words = _WORD.findall(_plain(query))
    found: list[tuple[int, Macro]] = []
    for macro in macros:
        if macro.language != language:
            continue
        title, text = _plain(macro.title), _plain(macro.text)
        if all(word in title or word in text for word in words):
            found.append((sum(word not in title for word in words), macro))
    found.sort(key=lambda pair: pair[0])  # stable: file order within a rank
    return [macro for _, macro in found]


def _macro(entry: Any, number: int) -> Macro:
    name = repr(entry["id"]) if isinstance(entry, dict) and isinstance(entry.get("id"), str) else f"#{number}"
    if not isinstance(entry, dict):
        raise MacroError(f"macro {name}: not a table")
    unknown = set(entry) - set(FIELDS)
    if unknown:
        raise MacroError(f"macro {name}: unknown field(s) {sorted(unknown)}; the fields are {list(FIELDS)}")
    for field in FIELDS:
        value = entry.get(field)
        if not isinstance(value, str) or not value.strip():
            raise MacroError(f"macro {name}: missing or empty {field!r}")
    if entry["language"] not in LANGUAGES:
        raise MacroError(f"macro {name}: language {entry['language']!r} is not one of {list(LANGUAGES)}")
    tuple(_fields(entry["text"], f"macro {name}"))  # raises on any placeholder fill could not replace
    return Macro(entry["id"].strip(), entry["language"], entry["title"].strip(), entry["text"].strip())


def _fields(text: str, where: str) -> Iterator[tuple[str, str | None]]:
    """(literal text, placeholder or None) pairs, with `{{` and `}}` already
    turned into single braces; raises on anything `fill` could not replace."""
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as error:  # a lone "{" or "}"
        raise MacroError(f"{where}: {error} (write {{{{ or }}}} for a literal brace)") from None
    for literal, field, spec, conversion in parsed:
        if field is not None:
            if field not in PLACEHOLDERS:
                raise MacroError(f"{where}: unknown placeholder {{{field}}}; the placeholders are {list(PLACEHOLDERS)}")
            if spec or conversion:
                raise MacroError(f"{where}: placeholder {{{field}}} has a format spec or conversion; write just {{{field}}}")
        yield literal, field


def _plain(text: str) -> str:
    """Lower case without accents: "Contraseña" and "contrasena" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))
