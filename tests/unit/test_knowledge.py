"""Suggested help articles: the shipped knowledge base, and how tickets find articles in it."""
import re
import threading

import pytest

from services.router.knowledge import (
    DEFAULT_KNOWLEDGE, LANGUAGES, SUGGEST_MIN_SCORE, Article, KnowledgeBase, KnowledgeError,
)

# One article per triage skill, plus outages, in each language.
TOPICS = {
    "network": ("en/no-internet", "es/sin-internet"),
    "account": ("en/password-and-locked-account", "es/contrasena-y-cuenta-bloqueada"),
    "billing": ("en/charges-refunds-invoices", "es/cobros-devoluciones-y-facturas"),
    "software": ("en/app-crashes-and-errors", "es/la-app-falla"),
    "hardware": ("en/device-will-not-turn-on", "es/el-equipo-no-enciende"),
    "general": ("en/contacting-support", "es/horario-y-contacto"),
    "outage": ("en/is-it-down", "es/caida-general"),
}

TICKETS = [
    ("es", "no tengo internet desde ayer, la luz del router parpadea en rojo", "es/sin-internet"),
    ("es", "no tengo conexion, el router tiene una luz roja", "es/sin-internet"),
    ("es", "olvidé mi contraseña y la cuenta está bloqueada", "es/contrasena-y-cuenta-bloqueada"),
    ("es", "olvide mi contrasena", "es/contrasena-y-cuenta-bloqueada"),
    ("es", "me habéis cobrado dos veces la factura de este mes, quiero que me devolváis el dinero",
     "es/cobros-devoluciones-y-facturas"),
    ("es", "la aplicación se cierra sola desde la última actualización y me sale un mensaje de error",
     "es/la-app-falla"),
    ("es", "mi portátil no enciende ni enchufado al cargador, ¿me lo cubre la garantía?", "es/el-equipo-no-enciende"),
    ("es", "¿cuál es vuestro horario? ¿os puedo escribir por whatsapp?", "es/horario-y-contacto"),
    ("es", "¿hay una caída general? a mis vecinos tampoco les funciona", "es/caida-general"),
    ("en", "I was charged twice this month, I want a refund", "en/charges-refunds-invoices"),
    ("en", "the app keeps crashing after the update", "en/app-crashes-and-errors"),
    ("en", "no internet since this morning and the router light is blinking red", "en/no-internet"),
    ("en", "my connection is really slow in the evenings", "en/no-internet"),
    ("en", "I forgot my password and now my account is locked", "en/password-and-locked-account"),
    ("en", "my laptop won't turn on, even plugged into the charger. Is it under warranty?",
     "en/device-will-not-turn-on"),
    ("en", "what are your support hours? can I contact you on WhatsApp?", "en/contacting-support"),
    ("en", "is the service down for everyone? my neighbours have the same problem", "en/is-it-down"),
]

SMALL_TALK = [
    ("es", "hola"), ("es", "gracias por todo"), ("es", "buenos días, quería hacer una consulta"),
    ("en", "ok thanks"), ("en", "what is the weather"), ("en", "great, that worked, thanks for your help"),
]

HOSTILE = [
    'NEAR( "a" OR * ^ -',
    '"router" OR "luz',
    'title:router AND NOT body:luz {title body}: ^wifi* + ( ) \\ \' ; DROP TABLE articles; --',
    '"""""' * 100,
    "router_luz __ _ " + "NEAR(" * 500,
    "\x00 router \ud800 😀 conexio\u0301n",
    "a" * 16384,
    ("the app crashes NEAR( * " * 700)[:16384],
]


@pytest.fixture(scope="module")
def kb():
    base = KnowledgeBase.load()
    yield base
    base.close()


@pytest.mark.parametrize("language, text, expected", TICKETS)
def test_a_ticket_finds_the_article_for_its_problem(kb, language, text, expected):
    suggestions = kb.suggest(text, language)
    assert suggestions, text
    assert suggestions[0].article.id == expected, [(s.article.id, round(s.score, 2)) for s in suggestions]


@pytest.mark.parametrize("language, text, expected", TICKETS)
def test_a_clear_ticket_scores_above_the_line_for_sending_the_article(kb, language, text, expected):
    assert kb.suggest(text, language)[0].score >= SUGGEST_MIN_SCORE


@pytest.mark.parametrize("language, text", SMALL_TALK)
def test_small_talk_stays_below_the_line(kb, language, text):
    assert all(s.score < SUGGEST_MIN_SCORE for s in kb.suggest(text, language))


def test_suggestions_come_best_first_and_up_to_the_limit(kb):
    suggestions = kb.suggest("el router no tiene internet y la app da error al actualizar", "es", limit=5)
    assert 1 < len(suggestions) <= 5
    assert [s.score for s in suggestions] == sorted((s.score for s in suggestions), reverse=True)
    assert len(kb.suggest("router internet error app factura contraseña", "es", limit=2)) == 2
    assert kb.suggest("router", "es", limit=0) == []


@pytest.mark.parametrize("language, text, expected", TICKETS)
def test_suggestions_never_cross_languages(kb, language, text, expected):
    other = "en" if language == "es" else "es"
    assert all(s.article.language == language for s in kb.suggest(text, language, limit=20))
    assert all(s.article.language == other for s in kb.suggest(text, other, limit=20))


def test_words_shared_by_both_languages_stay_in_the_tickets_language(kb):
    for language in LANGUAGES:
        suggestions = kb.suggest("router wifi app WhatsApp SMS chat", language, limit=20)
        assert suggestions and {s.article.language for s in suggestions} == {language}


@pytest.mark.parametrize("text", ["", "   ", "asdf qwerty zxcv", "12345 678", "a b c ? ! ...", "😀🙏", "---"])
def test_text_without_searchable_words_gives_nothing(kb, text):
    for language in LANGUAGES:
        assert kb.suggest(text, language) == []


def test_a_language_without_articles_gives_nothing(kb):
    assert kb.suggest("my router is blinking red", "fr") == []


@pytest.mark.parametrize("text", HOSTILE)
def test_fts5_syntax_in_customer_text_is_read_as_words(kb, text):
    for language in LANGUAGES:
        kb.suggest(text, language)  # must not raise


def test_quoted_operators_do_not_stop_real_words_from_matching(kb):
    suggestions = kb.suggest('NEAR( "router" OR * ^ - "luz', "es")
    assert suggestions[0].article.id == "es/sin-internet"


def test_accents_are_optional(kb):
    with_accents = kb.suggest("¿está caída la conexión? la garantía", "es")
    without = kb.suggest("esta caida la conexion? la garantia", "es")
    assert [s.article.id for s in with_accents] == [s.article.id for s in without]


def test_concurrent_callers_share_one_base(kb):
    failures = []

    def ask() -> None:
        for language, text, expected in TICKETS:
            if kb.suggest(text, language)[0].article.id != expected:
                failures.append(text)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_every_shipped_article_has_a_title_and_a_useful_body(kb):
    for article in kb.articles():
        assert article.title and not article.title.startswith("#")
        words = re.findall(r"\w+", article.body)
        assert 100 <= len(words) <= 320, (article.id, len(words))
        assert article.id == f"{article.language}/{article.slug}"
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", article.slug)


def test_each_language_covers_the_same_topics(kb):
    shipped = {article.id for article in kb.articles()}
    assert shipped == {article_id for pair in TOPICS.values() for article_id in pair}
    by_language = {language: [a for a in kb.articles() if a.language == language] for language in LANGUAGES}
    assert len(by_language["es"]) == len(by_language["en"]) == len(TOPICS)


def test_get_finds_an_article_by_its_id(kb):
    article = kb.get("en/no-internet")
    assert article is not None and article.language == "en" and article.slug == "no-internet"
    assert article.title == "No internet or a slow connection"
    assert not article.body.startswith("#") and article.body == article.body.strip()
    assert kb.get("en/nothing-like-this") is None
    assert kb.get("no-internet") is None


def test_the_default_path_is_the_shipped_base():
    assert (DEFAULT_KNOWLEDGE / "es").is_dir() and (DEFAULT_KNOWLEDGE / "en").is_dir()


def write(root, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_base_of_its_own_is_loaded_from_a_directory(tmp_path):
    write(tmp_path, "en/printer.md", "# The printer jams\n\nOpen the tray and take the paper out.\n")
    write(tmp_path, "es/impresora.md", "\ufeff# La impresora se atasca\r\n\r\nAbre la bandeja y saca el papel.\r\n")
    with KnowledgeBase.load(tmp_path) as base:
        assert [a.id for a in base.articles()] == ["en/printer", "es/impresora"]
        assert base.get("es/impresora").title == "La impresora se atasca"
        assert base.get("es/impresora").body == "Abre la bandeja y saca el papel."
        assert base.suggest("se me atasca la impresora", "es")[0].article.id == "es/impresora"


@pytest.mark.parametrize("first_line", ["The printer jams", "#The printer jams", "## The printer jams", "# ", ""])
def test_a_file_without_a_title_line_stops_the_load(tmp_path, first_line):
    write(tmp_path, "en/printer.md", f"{first_line}\n\nOpen the tray and take the paper out.\n")
    with pytest.raises(KnowledgeError, match="printer.md"):
        KnowledgeBase.load(tmp_path)


@pytest.mark.parametrize(
    "relative, content",
    [
        ("fr/imprimante.md", "# L'imprimante\n\nOuvrez le bac.\n"),  # no stemmer, no suggestions: say so
        ("en/Printer Jams.md", "# The printer jams\n\nOpen the tray.\n"),  # not a slug
        ("en/printer.md", b"# The printer jams\n\n\xff\xfe broken\n"),  # not UTF-8
    ],
)
def test_a_bad_file_or_directory_stops_the_load(tmp_path, relative, content):
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(KnowledgeError):
        KnowledgeBase.load(tmp_path)


def test_a_missing_directory_stops_the_load(tmp_path):
    with pytest.raises(KnowledgeError):
        KnowledgeBase.load(tmp_path / "nowhere")


def test_articles_given_directly_are_checked():
    good = Article("en/printer", "en", "printer", "The printer jams", "Open the tray.")
    with pytest.raises(KnowledgeError, match="twice"):
        KnowledgeBase([good, good])
    with pytest.raises(KnowledgeError):
        KnowledgeBase([Article("en/other", "en", "printer", "The printer jams", "Open the tray.")])
    with pytest.raises(KnowledgeError):
        KnowledgeBase([Article("pt/printer", "pt", "printer", "A impressora", "Abra a bandeja.")])
    with KnowledgeBase([good]) as base:
        assert base.suggest("the printer jammed", "en")[0].article == good
