"""How long a text is as SMS, and how to keep it within a number of segments.

A carrier sends a long SMS as several segments and bills each. Texts that fit the
GSM-7 alphabet take 160 characters in one segment and 153 per segment when split;
any other character (á, í, ó, ú, emoji...) makes the whole message UCS-2: 70 in one,
67 per segment (counted in UTF-16 units). GSM-7's extension characters take two.
"""
from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
ELLIPSIS = {"GSM-7": "...", "UCS-2": "…"}
LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}  # units in a single segment, per segment when split


@dataclass(frozen=True, slots=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    count: int


def encoding_of(text: str) -> str:
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "UCS-2"


def _units(text: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return len(text) + sum(c in GSM7_EXTENSION for c in text)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> Segments:
    encoding = encoding_of(text)
    units = _units(text, encoding)
    single, multi = LIMITS[encoding]
    count = 1 if units <= single else -(-units // multi)
    return Segments(encoding, units, count)


def capacity(encoding: str, max_segments: int) -> int:
    """How many units `max_segments` segments carry."""
    single, multi = LIMITS[encoding]
    return single if max_segments == 1 else multi * max_segments


def fit(text: str, max_segments: int) -> str:
    """`text`, or as much of it as fits `max_segments` ending at a word with an ellipsis."""
    if segments(text).count <= max_segments:
        return text
    encoding = encoding_of(text)
    budget = capacity(encoding, max_segments) - _units(ELLIPSIS[encoding], encoding)
    kept, used = [], 0
    for char in text:
        cost = _units(char, encoding)
        if used + cost > budget:
            break
        kept.append(char)
        used += cost
    cut = "".join(kept)
    at_word = cut.rstrip().rsplit(" ", 1)[0] if " " in cut.strip() else cut
    return at_word.rstrip(" ,.;:") + ELLIPSIS[encoding]
