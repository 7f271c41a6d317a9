"""A customer's reply to "How did we do? Reply 1 to 5": a score (and what they said with
it), or a normal message that intake must treat as one."""
from __future__ import annotations

import pytest

from deskstream.survey_answers import MAX_COMMENT_CHARS, Answer, parse

PARAGRAPH = "5 " + " ".join(["the technician came but the router still drops the line every evening"] * 5)


@pytest.mark.parametrize("text, score, comment", [
    ("5", 5, None),
    ("  1  ", 1, None),
    ("5 excelente", 5, "excelente"),
    ("4 - rápido pero la app sigue lenta", 4, "rápido pero la app sigue lenta"),
    ("4 - fast but the app still lags", 4, "fast but the app still lags"),
    ("2 de 5, tardaron mucho", 2, "tardaron mucho"),
    ("3/5", 3, None),
    ("4 / 5 buen trato", 4, "buen trato"),
    ("4 out of 5", 4, None),
    ("5 estrellas", 5, None),
    ("1 star. Nobody called back", 1, "Nobody called back"),
    ("5/5 stars", 5, None),
    ("5.", 5, None),
    ("¡5!", 5, None),
    ('"3"', 3, None),
    ("*5*", 5, None),
    ("５", 5, None),
    ("5 👍", 5, "👍"),
    ("4 - una hora de espera, pero bien", 4, "una hora de espera, pero bien"),
])
def test_a_message_starting_with_a_digit_from_1_to_5_is_a_score(text, score, comment):
    assert parse(text) == Answer(score, comment)


@pytest.mark.parametrize("text, score, comment", [
    ("cinco", 5, None),
    ("Cuatro.", 4, None),
    ("una", 1, None),
    ("dos, muy lentos", 2, "muy lentos"),
    ("cinco estrellas", 5, None),
    ("five stars", 5, None),
    ("Three", 3, None),
    ("one - never again", 1, "never again"),
])
def test_a_number_word_is_a_score(text, score, comment):
    assert parse(text) == Answer(score, comment)


@pytest.mark.parametrize("text, score", [
    ("⭐", 1),
    ("⭐⭐⭐", 3),
    ("⭐️⭐️⭐️⭐️", 4),  # with the emoji variation selector phones add
    ("★★★★★", 5),
    ("⭐ ⭐", 2),
    ("★★★☆☆", 3),
])
def test_one_to_five_stars_are_a_score(text, score):
    assert parse(text) == Answer(score, None)


@pytest.mark.parametrize("text, score, comment", [
    ("Muy mal", 1, None),
    ("fatal", 1, None),
    ("Pésimo!!", 1, None),
    ("mal", 2, None),
    ("regular", 3, None),
    ("normal", 3, None),
    ("bien", 4, None),
    ("muy bien, gracias", 5, "gracias"),
    ("muy bien gracias", 5, "gracias"),
    ("Excelente servicio", 5, "servicio"),
    ("genial 👍", 5, "👍"),
    ("bien, pero sigo sin internet", 4, "pero sigo sin internet"),
    ("Perfecto. Rápidos y amables", 5, "Rápidos y amables"),
    ("very bad", 1, None),
    ("Terrible.", 1, None),
    ("awful, took a week", 1, "took a week"),
    ("poor", 2, None),
    ("ok", 3, None),
    ("OK thanks", 3, "thanks"),
    ("so so", 3, None),
    ("good", 4, None),
    ("Very good!", 5, None),
    ("Excellent!", 5, None),
    ("great job thank you", 5, "job thank you"),
    ("amazing", 5, None),
])
def test_a_score_phrase_is_a_score_and_the_longest_phrase_wins(text, score, comment):
    assert parse(text) == Answer(score, comment)


@pytest.mark.parametrize("text", [
    # a count or a unit, not a score
    "5 días sin internet",
    "5 dias sin internet",
    "2 questions about my bill",
    "3 veces he llamado",
    "4 horas esperando",
    "1 hora",
    "2 meses pagando sin servicio",
    "3 times now",
    "5 minutos",
    "15 minutes waiting",
    "5 largos días sin línea",
    "2 quick questions",
    "5 de mis líneas no van",
    "1 more thing",
    "3 o 4 veces",
    "5 €",
    "cinco días sin internet",
    "two questions",
    "una pregunta",
    "one of your agents was rude",
    # not a score from 1 to 5
    "10",
    "0",
    "6",
    "5/10",
    "5 out of 10",
    "4,5",
    "3-4",
    "5:30",
    "5pm",
    "½",
    "⭐⭐⭐⭐⭐⭐",
    # not starting with a score
    "mi router no funciona",
    "my router died again",
    "Le doy un 5",
    "no muy bien",
    "not good",
    # a sentence that merely starts like a score
    "mal el router",
    "bad signal again today",
    "good morning, my line is down",
    "ok, my router is dead",
    "bien pero sigo sin internet",
    "muy mal, " + " ".join(["el técnico no vino"] * 4),
    # a question, a paragraph, nothing
    "¿5?",
    "bien?",
    "5? what is this",
    PARAGRAPH,
    "",
    "   ",
    "\n\t",
    # compliance keywords are intake's to act on
    "STOP",
    "Stop.",
    "START",
    "HELP",
    "AYUDA",
    "BAJA",
    "5 STOP",
])
def test_what_is_not_clearly_an_answer_is_a_normal_message(text):
    assert parse(text) is None


def test_the_paragraph_of_the_test_is_over_forty_words():
    assert len(PARAGRAPH.split()) == 61


def test_a_digit_may_carry_a_long_comment_but_a_phrase_only_a_short_one():
    comment = " ".join(["lento"] * 30)
    assert parse(f"3 {comment}") == Answer(3, comment)
    assert parse(f"regular, {comment}") is None
    assert parse("regular, " + " ".join(["lento"] * 12)) == Answer(3, " ".join(["lento"] * 12))


def test_the_comment_keeps_the_customers_case_accents_and_spacing():
    assert parse("  5 -  Atención EXCELENTE,  gracias Álvaro  ") == Answer(5, "Atención EXCELENTE,  gracias Álvaro")


def test_a_comment_longer_than_1000_characters_is_cut():
    answer = parse("5 " + "muy bien " + "a" * 3000)
    assert answer is not None and answer.score == 5
    assert answer.comment == ("muy bien " + "a" * 3000)[:MAX_COMMENT_CHARS]
    assert len(parse("⭐⭐⭐⭐ " + "ñ" * 5000).comment) == MAX_COMMENT_CHARS


def test_an_answer_is_only_ever_a_score_from_1_to_5():
    with pytest.raises(ValueError):
        Answer(6, None)
    with pytest.raises(ValueError):
        Answer(0, None)


ODD = [
    "\x00", "5\x00", "\x1b[31m5", "\u200f5\u200e", "\ufeff5", "\u0301", "5\u0301", "👍", "🙂🙂🙂",
    "👨‍👩‍👧", "مرحبا، الخدمة ممتازة", "٥", "שירות מצוין 5", "\ud800", "5\udfff", "⭐\ufe0f" * 3,
    "x" * 10_240, "5" * 10_240, "5 " * 5_120, "⭐" + "y" * 10_240, "bien, " + "z" * 10_240,
    "\u202e5 bien", "İ", "ß", "ﬁ", "Ⅴ", "5\u00a0estrellas", "5\u2028ok", "\r\n5\r\n",
]


@pytest.mark.parametrize("text", ODD, ids=range(len(ODD)))
def test_parse_never_raises_and_answers_only_with_valid_answers(text):
    answer = parse(text)
    assert answer is None or (1 <= answer.score <= 5
                              and (answer.comment is None or 0 < len(answer.comment) <= MAX_COMMENT_CHARS))
