"""A small Spanish/English guess for messages that do not say their language.

Support answers in the customer's language; the customer's own choice (from the
chat page or a profile) always wins over this guess.
"""
from __future__ import annotations

import re

SUPPORTED = ("es", "en")
_WORD = re.compile(r"[a-záéíóúñü]+")
_SPANISH = frozenset(
    "el la los las de del que y en un una por para con no mi me se es está están hola gracias "
    "favor ayuda funciona puedo tengo problema cuenta factura pago contraseña desde hace sin muy "
    "pero como cuando donde ya nos su sus al lo le hay".split()
)
_ENGLISH = frozenset(
    "the a an of to and in is are it my i you your for with not no on can cannot help please "
    "thanks hello hi works working problem account invoice payment password since have has this "
    "that but when where we our at do does".split()
)


def normalise_language(value: str | None) -> str | None:
    """'es-MX' -> 'es'; anything outside the supported set -> None."""
    if not value:
        return None
    primary = value.strip().lower().split("-")[0].split("_")[0]
    return primary if primary in SUPPORTED else None


def detect_language(text: str, default: str = "en") -> str:
    words = _WORD.findall(text.lower())
    spanish = sum(word in _SPANISH for word in words) + 2 * len(re.findall(r"[ñ¿¡áéíóú]", text.lower()))
    english = sum(word in _ENGLISH for word in words)
    if spanish == english:
        return default
    return "es" if spanish > english else "en"
