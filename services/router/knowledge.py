"""Suggested help articles for the agent console: the knowledge base articles that
best match a ticket's text, in the ticket's language, ranked by SQLite FTS5's bm25.

The articles are Markdown files (`knowledge/<language>/<slug>.md`, first line
`# Title`) because support leads write them, not developers. Both sides of the
match, articles and ticket, go through the same Snowball stemmer, so "crashing" finds
"crashes" and "cobraron" finds "cobro"; FTS5 only sees the stems. Customer text is
untrusted: every query term is a quoted FTS5 string, so nothing a customer writes is
read as query syntax, and `suggest` never raises on what it is given to read.
"""
from __future__ import annotations

import logging
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import snowballstemmer

from deskstream.logs import redact

from services.router.triage import fold

log = logging.getLogger(__name__)

DEFAULT_KNOWLEDGE = Path(__file__).resolve().parent / "knowledge"
LANGUAGES = ("es", "en")

SUGGEST_MIN_SCORE: float = 4.0
"""The score (minus bm25) from which the best article is trusted enough to go to the
customer on its own, with the acknowledgement (not built yet: today articles are only
offered to the agent). On the starter articles, tickets that describe their problem ("I was
charged twice this month, I want a refund", "olvidé mi contraseña y la cuenta está
bloqueada") score 5 to 18, while small talk and vague openers ("hola", "ok thanks",
"buenos días, quería hacer una consulta") match nothing or score 3 at most. A lone
keyword ("refund", "router") lands between 1.7 and 4.3: too thin a ticket to answer
blind, so the line sits above most of them. bm25 depends on the whole collection:
re-measure when the articles change much."""

MAX_QUERY_TERMS = 64  # a 16 KB ticket still makes a small query; the first words say most
TITLE_WEIGHT = 4.0  # a word in the title says more about an article than one in its body
BODY_WEIGHT = 1.0

_STEMMER_NAMES = {"es": "spanish", "en": "english"}
_WORD = re.compile(r"[^\W_]+")  # \w+ without "_", which FTS5's unicode61 treats as a separator
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

# Words that say nothing about the problem. Without them, "gracias por todo" would
# match every article that happens to contain "por" and "todo", and small talk would
# score like a real question. Listed unaccented and lower case, as they are compared.
_STOPWORDS = {
    "en": frozenset(
        """a about after afternoon again all also am an and any are as at be because been
        before being but by can could day days did do does doing done evening for from
        good had has have having he hello her here hi him his how i if in into is it its
        just me more morning most my night no nor not now of off ok okay on once only or
        other our out over please so some such than thank thanks that the their them
        then there these they this those to too up us very was we were what when where
        which while who why will with would yes you your yours""".split()
    ),
    "es": frozenset(
        """a al algo algun alguna algunas alguno algunos ante antes aqui asi aun bien
        buenas buenos cada como con contra cual cuando de del desde dia dias donde el
        ella ellas ellos en entre era eran es esa esas ese eso esos esta estaba estais
        estamos estan estar este esto estos estoy fue gracias ha habeis hace hacer han
        has hay he hola la las le les lo los mas me mi mis muchas mucho muchos muy nada
        ni no noches nos nosotros o os otra otro para pero poco por porque que quien se
        sea ser si sin sobre solo son su sus tambien tardes te tengo tiene tienen todo
        todos tu tus un una uno unos usted vosotros vuestra vuestro y ya yo""".split()
    ),
}


class KnowledgeError(ValueError):
    """A knowledge base that cannot be loaded: an unreadable file, one without a
    `# Title` first line, a bad slug, an unknown language directory or a duplicate.
    The console refuses to start on it rather than suggest from half the articles."""


@dataclass(frozen=True, slots=True)
class Article:
    id: str  # f"{language}/{slug}": stable across restarts, safe to log and to link
    language: str
    slug: str
    title: str
    body: str  # the Markdown after the title line, stripped


@dataclass(frozen=True, slots=True)
class Suggestion:
    article: Article
    score: float  # minus bm25, so higher is better; comparable within one collection only


def _words(text: str) -> Iterator[str]:
    """Words worth looking up (not one letter long, not a bare number), folded to
    lower case without accents. Folding comes before stemming, not after, because
    customers often leave accents out: 'garantia' and 'garantía' must reach the
    stemmer alike to come out as the same stem."""
    # NFC first: in decomposed text a combining accent is not \w and would split the word.
    for match in _WORD.finditer(unicodedata.normalize("NFC", text)):
        word = match.group()
        if len(word) >= 2 and not word.isdigit():
            yield fold(word)


class _Analyser:
    """Turns text into the stems that FTS5 indexes and searches. One per language;
    Snowball stemmers keep state between calls, so callers hold the base's lock."""

    def __init__(self, language: str) -> None:
        self._stemmer = snowballstemmer.stemmer(_STEMMER_NAMES[language])
        self._stopwords = _STOPWORDS[language]

    def stems(self, text: str) -> Iterator[str]:
        for word in _words(text):
            if word not in self._stopwords:
                yield self._stemmer.stemWord(word)

    def document(self, text: str) -> str:
        return " ".join(self.stems(text))

    def query(self, text: str) -> str:
        """An FTS5 query matching any of the text's stems. Each is a quoted string
        with its quotes doubled, so `NEAR(`, `*`, `^`, `-` or `"` stay plain words."""
        terms: dict[str, None] = {}
        for stem in self.stems(text):
            terms.setdefault(stem, None)
            if len(terms) >= MAX_QUERY_TERMS:
                break
        return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


class KnowledgeBase:
    """The articles and their full-text index, in a private in-memory SQLite
    database: a few dozen articles index in milliseconds at start-up, so there is no
    index file to build, ship or keep in step with the Markdown."""

    def __init__(self, articles: Iterable[Article]) -> None:
        self._articles: dict[str, Article] = {}
        for article in articles:
            _check(article)
            if article.id in self._articles:
                raise KnowledgeError(f"article {article.id} appears twice")
            self._articles[article.id] = article
        self._analysers = {language: _Analyser(language) for language in LANGUAGES}
        # One connection used from whichever thread calls; the lock keeps calls apart.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE articles USING fts5("
            "title, body, id UNINDEXED, language UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')"
        )
        rows = []
        for article in self._articles.values():
            analyser = self._analysers[article.language]
            rows.append((analyser.document(article.title), analyser.document(article.body), article.id, article.language))
        self._db.executemany("INSERT INTO articles (title, body, id, language) VALUES (?, ?, ?, ?)", rows)
        self._db.commit()

    @classmethod
    def load(cls, root: Path = DEFAULT_KNOWLEDGE) -> "KnowledgeBase":
        """Every `root/<language>/*.md`. A directory for a language we have no
        stemmer for is an error, not something to skip: its articles would silently
        never be suggested."""
        root = Path(root)
        if not root.is_dir():
            raise KnowledgeError(f"{root} is not a directory")
        articles = []
        for directory in sorted(root.iterdir()):
            if directory.name.startswith((".", "_")) or not directory.is_dir():
                continue
            if directory.name not in LANGUAGES:
                raise KnowledgeError(f"{directory}: unknown language, expected one of {', '.join(LANGUAGES)}")
            articles.extend(_read(path, directory.name) for path in sorted(directory.glob("*.md")))
        return cls(articles)

    def suggest(self, text: str, language: str, limit: int = 3) -> list[Suggestion]:
        """The articles in `language` that best match `text`, best first. An empty
        list, never an error, when nothing matches, the text has no words worth
        searching or we have no articles in that language: the console simply shows
        no suggestions."""
        analyser = self._analysers.get(language)
        if analyser is None or not text or limit < 1:
            return []
        with self._lock:
            query = analyser.query(text)
            if not query:
                return []
            try:
                rows = self._db.execute(
                    "SELECT id, bm25(articles, ?, ?) AS rank FROM articles"
                    " WHERE articles MATCH ? AND language = ? ORDER BY rank, id LIMIT ?",
                    (TITLE_WEIGHT, BODY_WEIGHT, query, language, limit),
                ).fetchall()
            except sqlite3.OperationalError:  # quoted terms leave FTS5 nothing to object to
                log.exception("knowledge query failed", extra={"query": redact(query)})  # made of the customer's words
                return []
        return [Suggestion(self._articles[article_id], -rank) for article_id, rank in rows]

    def get(self, article_id: str) -> Article | None:
        return self._articles.get(article_id)

    def articles(self) -> list[Article]:
        return list(self._articles.values())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _check(article: Article) -> None:
    if article.language not in LANGUAGES:
        raise KnowledgeError(f"article {article.id}: unknown language {article.language!r}")
    if not _SLUG.fullmatch(article.slug):
        raise KnowledgeError(f"article {article.id}: slug must be lower-case ascii words joined by hyphens")
    if article.id != f"{article.language}/{article.slug}":
        raise KnowledgeError(f"article {article.id}: id must be {article.language}/{article.slug}")
    if not article.title.strip():
        raise KnowledgeError(f"article {article.id}: no title")


def _read(path: Path, language: str) -> Article:
    """One article file. The title line is required because it is what the agent sees
    in the list and what weighs most in the ranking."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise KnowledgeError(f"{path}: cannot read: {error}") from None
    first, _, body = text.partition("\n")
    first = first.strip()
    if not first.startswith("# ") or not first[2:].strip():
        raise KnowledgeError(f"{path}: the first line must be the title, as '# Title'")
    slug = path.stem
    return Article(id=f"{language}/{slug}", language=language, slug=slug, title=first[2:].strip(), body=body.strip())
