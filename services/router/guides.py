"""Reply guides for the agent console: for the customer hint that triage puts on a
ticket (novice, expert, upset, impatient, sceptical), a few points on how to open
and shape the reply, and what to avoid, so that the hint turns into a better answer
rather than staying a label.

The guides live in `guides.toml` because their wording is a support lead's call,
not a developer's. The file is checked whole when it is loaded: a hint without a
guide in one of the languages would leave agents without help exactly when it is
needed, so it stops the console's start instead.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

DEFAULT_GUIDES = Path(__file__).resolve().parent / "guides.toml"
HINTS = ("novice", "expert", "upset", "impatient", "sceptical")
LANGUAGES = ("es", "en")
FALLBACK_LANGUAGE = "en"
FIELDS = ("title", "lead_with", "avoid")


class GuideError(ValueError):
    """A guides file the console cannot use: bad TOML, an unknown hint or language,
    a missing or empty field, or a hint without a guide in every language."""


@dataclass(frozen=True, slots=True)
class Guide:
    """How to answer one kind of customer in one language."""

    hint: str
    language: str
    title: str
    lead_with: tuple[str, ...]
    avoid: tuple[str, ...]


def load_guides(path: Path = DEFAULT_GUIDES) -> dict[tuple[str, str], Guide]:
    """Every guide in the file, keyed by (hint, language)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise GuideError(f"{path}: not valid TOML: {error}") from None
    guides: dict[tuple[str, str], Guide] = {}
    for hint, by_language in document.items():
        if hint not in HINTS:
            raise GuideError(f"guide {hint!r}: not a hint with a guide; the hints are {list(HINTS)}")
        if not isinstance(by_language, dict):
            raise GuideError(f"guide {hint!r}: write it as [{hint}.es] and [{hint}.en] tables")
        for language, entry in by_language.items():
            guides[hint, language] = _guide(hint, language, entry)
    missing = [f"{hint}.{language}" for hint in HINTS for language in LANGUAGES if (hint, language) not in guides]
    if missing:
        raise GuideError(f"{path}: no guide for {', '.join(missing)}")
    return guides


def guide_for(guides: Mapping[tuple[str, str], Guide], hint: str | None, language: str) -> Guide | None:
    """The guide for this customer in the ticket's language, or the English one when
    that language has none (an English guide helps more than none). None when triage
    could not tell what kind of customer it is."""
    if hint not in HINTS:
        return None
    return guides.get((hint, language)) or guides.get((hint, FALLBACK_LANGUAGE))


def _guide(hint: str, language: str, entry: Any) -> Guide:
    name = f"guide {hint}.{language}"
    if language not in LANGUAGES:
        raise GuideError(f"{name}: language {language!r} is not one of {list(LANGUAGES)}")
    if not isinstance(entry, dict):
        raise GuideError(f"{name}: not a table")
    unknown = set(entry) - set(FIELDS)
    if unknown:
        raise GuideError(f"{name}: unknown field(s) {sorted(unknown)}; the fields are {list(FIELDS)}")
    title = entry.get("title")
    if not isinstance(title, str) or not title.strip():
        raise GuideError(f"{name}: missing or empty 'title'")
    return Guide(hint, language, title.strip(), _points(entry, "lead_with", name), _points(entry, "avoid", name))


def _points(entry: Mapping[str, Any], field: str, name: str) -> tuple[str, ...]:
    points = entry.get(field)
    if not isinstance(points, list) or not points or not all(isinstance(p, str) and p.strip() for p in points):
        raise GuideError(f"{name}: {field!r} must be a non-empty list of non-empty strings")
    return tuple(point.strip() for point in points)
