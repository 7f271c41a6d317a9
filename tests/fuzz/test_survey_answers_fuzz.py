"""`survey_answers.parse`, the rules of its module docstring as properties.

A false answer swallows a customer's new problem (intake opens no ticket for an
answer), so the "not an answer" rules matter as much as the answers: each rule of the
docstring is a property here, over generated texts rather than the unit tests' lists.
Only what the docstring promises is asserted.
"""
from __future__ import annotations

import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from deskstream import survey_answers
from deskstream.survey_answers import (COUNT_WORDS, KEYWORDS, MAX_COMMENT_CHARS, MAX_PHRASE_COMMENT_WORDS, MAX_WORDS, NOUNS,
                                       NUMBER_WORDS, PHRASES, Answer, parse)
from tests.fuzz.support import scaled

# Every character, lone surrogates, controls and format characters included.
any_text = st.text(st.characters(exclude_categories=()), max_size=300)
LEADING = "\"'“”‘’«»¡([{*_ "  # "surrounding punctuation (quotes, ¡, brackets, *) is accepted"
TRAILING = "-–—,:;.!|)]}>~=*_…\"'“”‘’«» "  # separators and quotes: nothing a comment is made of
leading = st.text(st.sampled_from(LEADING + "\t\n"), max_size=4)
trailing = st.text(st.sampled_from(TRAILING + "\t\n"), max_size=4)
spaces = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0"])
controls = st.characters(categories=("Cc",)).filter(lambda c: c not in "\t\n\r")


def without_controls(text: str) -> str:
    """The text parse reads: control characters are ignored (tabs and newlines are space)."""
    return "".join(c for c in text if c in "\t\n\r" or unicodedata.category(c) != "Cc")


def random_case(draw: st.DrawFn, word: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c for c in word)


# Plain words for comments: no digits, and none of the words the rules single out
# (counting nouns, count words, number words, compliance keywords).
SINGLED_OUT = NOUNS | COUNT_WORDS | set(NUMBER_WORDS) | KEYWORDS | {"cinco", "five"}
VOCABULARY = ("rápido pero la app sigue lenta fast but the app still lags amables gracias Álvaro muy lento atención "
              "servicio técnico vino tarde nobody called back never again good job router internet funciona ahora "
              "thanks everything works now excelente trato pésimo soporte").split()
plain_words = st.sampled_from([w for w in VOCABULARY if survey_answers.fold(w)[0] not in SINGLED_OUT]) | st.from_regex(
    r"[a-zA-ZáéíóúñÁÉÍÓÚÑü]{3,10}", fullmatch=True).filter(lambda word: survey_answers.fold(word)[0] not in SINGLED_OUT)


# -- it never fails, and what it returns is an answer ----------------------------------------


@settings(max_examples=scaled(4))
@given(any_text | st.text(st.sampled_from("12345 ⭐★☆/-,.!?¿de out of stars muy bien ok\u200b\ufe0f\x00"), max_size=60))
@example("\ud800")
@example("5\udfff")
@example("⭐" + "y" * 10_240)
def test_parse_never_raises_and_an_answer_is_a_score_from_1_to_5_with_the_customers_own_words(text: str) -> None:
    answer = parse(text)
    if answer is None:
        return
    assert 1 <= answer.score <= 5
    if answer.comment is not None:
        assert 0 < len(answer.comment) <= MAX_COMMENT_CHARS
        assert answer.comment in without_controls(text)  # "the comment keeps the customer's own text"


@settings(max_examples=scaled(1))
@given(any_text, st.lists(st.tuples(st.integers(0, 300), controls), max_size=6))
def test_control_characters_change_nothing(text: str, inserted: list[tuple[int, str]]) -> None:
    noisy = text
    for at, control in inserted:
        noisy = noisy[:at] + control + noisy[at:]
    assert parse(noisy) == parse(text)


# -- what is an answer ------------------------------------------------------------------------


@st.composite
def bare_scores(draw: st.DrawFn) -> tuple[str, int]:
    """A score on its own: a digit, a number word or a phrase in any case (phrases with
    any whitespace between their words), or filled stars padded with empty ones."""
    kind = draw(st.sampled_from(["digit", "number", "phrase", "stars"]))
    if kind == "digit":
        score = draw(st.integers(1, 5))
        return str(score), score
    if kind == "number":
        word = draw(st.sampled_from(sorted(NUMBER_WORDS)))
        return random_case(draw, word), NUMBER_WORDS[word]
    if kind == "phrase":
        phrase = draw(st.sampled_from(sorted(PHRASES)))
        return "".join(draw(spaces) if c == " " else c for c in random_case(draw, phrase)), PHRASES[phrase]
    filled = draw(st.integers(1, 5))
    stars = [draw(st.sampled_from(["⭐", "⭐\ufe0f", "★"])) for _ in range(filled)] + ["☆"] * draw(st.integers(0, 5 - filled))
    return draw(st.sampled_from(["", " "])).join(stars), filled


@settings(max_examples=scaled(1))
@given(leading, bare_scores(), trailing)
def test_a_score_alone_with_surrounding_punctuation_is_that_score_without_comment(before: str, score: tuple[str, int],
                                                                                  after: str) -> None:
    text, value = score
    if after.startswith("_") and text[-1].isalpha():
        after = " " + after  # "_" right after a word glues to it ("bien_"): the code says so, the docstring lists no "_"
    assert parse(before + text + after) == Answer(value, None)


SEPARATORS = [" ", " - ", ", ", ": ", ". ", "! ", " — ", " -- ", " | "]


@settings(max_examples=scaled(1))
@given(st.integers(1, 5), st.sampled_from(SEPARATORS), st.lists(plain_words, min_size=1, max_size=MAX_WORDS - 3))
def test_a_digit_then_a_comment_of_up_to_forty_words_is_that_score_with_that_comment(score: int, separator: str,
                                                                                       words: list[str]) -> None:
    comment = " ".join(words)
    if len(words) == 1 and survey_answers.fold(comment)[0] in KEYWORDS:
        return
    assert parse(f"{score}{separator}{comment}") == Answer(score, comment)


@settings(max_examples=scaled(1))
@given(st.sampled_from(sorted((set(PHRASES) | set(NUMBER_WORDS)) - {"ok", "okay"})),
       st.sampled_from([", ", ": ", ". ", " - ", "! "]), st.lists(plain_words, min_size=1, max_size=MAX_WORDS - 4))
def test_a_phrase_or_number_word_takes_a_comment_of_at_most_twelve_words(phrase: str, separator: str, words: list[str]) -> None:
    comment = " ".join(words)
    expected = Answer(PHRASES.get(phrase) or NUMBER_WORDS[phrase], comment)
    assert parse(f"{phrase}{separator}{comment}") == (expected if len(words) <= MAX_PHRASE_COMMENT_WORDS else None)


# -- what is not an answer ----------------------------------------------------------------------


@settings(max_examples=scaled(1))
@given(any_text, st.integers(0, 300), st.sampled_from("?¿"))
def test_a_question_mark_anywhere_makes_it_a_message(text: str, at: int, mark: str) -> None:
    assert parse(text[:at] + mark + text[at:]) is None


words_of_anything = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=8)


@settings(max_examples=scaled(1))
@given(st.lists(words_of_anything, min_size=MAX_WORDS + 1, max_size=MAX_WORDS + 20), bare_scores())
def test_more_than_forty_words_are_a_message_even_after_a_score(words: list[str], score: tuple[str, int]) -> None:
    text = " ".join([score[0], *words])
    if len(text.split()) > MAX_WORDS:
        assert parse(text) is None


@settings(max_examples=scaled(1))
@given(leading, st.one_of(st.integers(0, 10**6).filter(lambda n: not 1 <= n <= 5).map(str),
                          st.from_regex(r"[0-9]{2,6}", fullmatch=True)), any_text)
@example("", "10", "")
@example("", "6", " estrellas")
@example("¡", "05", "!")
def test_zero_six_and_more_and_multi_digit_numbers_are_not_a_score(before: str, number: str, after: str) -> None:
    assert parse(before + number + after) is None


@settings(max_examples=scaled(1))
@given(leading, st.integers(1, 5), st.from_regex(r"[a-zA-Z0-9]", fullmatch=True), any_text)
def test_a_digit_glued_to_a_letter_or_digit_is_not_a_score(before: str, score: int, glued: str, after: str) -> None:
    assert parse(f"{before}{score}{glued}{after}") is None


@settings(max_examples=scaled(1))
@given(st.integers(1, 5), st.sampled_from(sorted(NOUNS)), st.lists(plain_words, max_size=5))
def test_a_digit_before_a_counting_noun_is_a_count_not_a_score(score: int, noun: str, rest: list[str]) -> None:
    assert parse(" ".join([f"{score}", noun, *rest])) is None


@settings(max_examples=scaled(1))
@given(st.integers(1, 5), st.sampled_from(sorted(COUNT_WORDS)), st.lists(plain_words, max_size=5))
def test_a_digit_before_a_count_word_is_a_count_not_a_score(score: int, word: str, rest: list[str]) -> None:
    assert parse(" ".join([f"{score}", word, *rest])) is None


@st.composite
def keyword_texts(draw: st.DrawFn) -> str:
    keyword = random_case(draw, draw(st.sampled_from(sorted(KEYWORDS))))
    if draw(st.booleans()):
        return draw(leading) + keyword + draw(trailing)
    return f"{draw(st.integers(1, 5))}{draw(st.sampled_from(SEPARATORS))}{keyword}{draw(trailing)}"


@settings(max_examples=scaled(1))
@given(keyword_texts())
def test_a_compliance_keyword_alone_or_as_the_whole_comment_is_intakes_to_act_on(text: str) -> None:
    assert parse(text) is None
