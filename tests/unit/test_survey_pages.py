"""The survey pages: looking never answers, answering happens once, and nothing a
customer or a token says can run on the page."""
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from deskstream.pipeline import NotStored
from services.feedback.links import SurveyLinks
from services.feedback.survey_pages import (
    ALREADY_ANSWERED, CLOSED, MAX_COMMENT_CHARS, PAGE_HEADERS, RECORDED, clean_comment, page_language, survey_routes,
)

SECRET = "s" * 40
DAY = 86400.0
SCRIPT = "<script>alert(1)</script>"


class Recorder:
    """An `answer` that keeps single use per survey, as feedback does."""

    def __init__(self, closed: bool = False, fails: bool = False) -> None:
        self.calls: list[tuple[dict[str, Any], str | None]] = []
        self.answered: set[str] = set()
        self.closed = closed
        self.fails = fails

    async def __call__(self, payload: dict[str, Any], comment: str | None) -> str:
        self.calls.append((payload, comment))
        if self.fails:
            raise NotStored("kafka did not answer")
        if self.closed:
            return CLOSED
        if payload["survey_id"] in self.answered:
            return ALREADY_ANSWERED
        self.answered.add(payload["survey_id"])
        return RECORDED


@asynccontextmanager
async def serving(answer, max_age: float = 30 * DAY, secret: str = SECRET):
    """A client for the survey pages, and the links whose base URL is the test server's."""
    application = web.Application()
    server = TestServer(application)
    links = SurveyLinks(secret, max_age, "http://placeholder")
    survey_routes(links, answer)(application)
    async with TestClient(server) as client:
        links.base_url = str(server.make_url("")).rstrip("/")
        yield client, links


def path_of(links: SurveyLinks, score: int = 4, language: str = "en", survey_id: str = "sv-1",
            ticket_id: str = "T-42", secret: str | None = None) -> str:
    maker = links if secret is None else SurveyLinks(secret, DAY, links.base_url)
    return maker.url(survey_id, ticket_id, score, language).removeprefix(links.base_url)


def assert_page_headers(response) -> None:
    for name, value in PAGE_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.content_type == "text/html" and response.charset == "utf-8"


async def test_opening_a_link_shows_the_chosen_score_and_a_form_but_records_nothing():
    answer = Recorder()
    async with serving(answer) as (client, links):
        for _ in range(3):  # a mail scanner, a preview, the customer
            response = await client.get(path_of(links, score=4))
            assert response.status == 200
            page = await response.text()
        assert answer.calls == []
    assert "You chose 4 of 5." in page and "T-42" in page
    assert '<form method="post">' in page and 'name="comment"' in page and f'maxlength="{MAX_COMMENT_CHARS}"' in page
    assert 'class="chosen">4<' in page
    assert_page_headers(response)


async def test_the_page_is_in_the_links_language():
    async with serving(Recorder()) as (client, links):
        spanish = await (await client.get(path_of(links, score=2, language="es-MX"))).text()
        english = await (await client.get(path_of(links, score=2, language="fr"))).text()
    assert 'lang="es"' in spanish and "Elegiste 2 de 5." in spanish and "Enviar mi respuesta" in spanish
    assert 'lang="en"' in english and "You chose 2 of 5." in english  # a language we have no page in: English


async def test_sending_the_form_records_the_answer_once_with_the_cleaned_comment():
    answer = Recorder()
    async with serving(answer) as (client, links):
        response = await client.post(path_of(links, score=5), data={"comment": "  Muy bien\x00 hecho\r\ngracias \u202e "})
        assert response.status == 200
        assert "Your answer has been recorded" in await response.text()
        assert_page_headers(response)
    [(payload, comment)] = answer.calls
    assert (payload["survey_id"], payload["ticket_id"], payload["score"], payload["language"]) == ("sv-1", "T-42", 5, "en")
    assert comment == "Muy bien hecho\ngracias"


async def test_a_form_without_a_comment_records_the_score_with_no_comment():
    answer = Recorder()
    async with serving(answer) as (client, links):
        assert (await client.post(path_of(links), data={})).status == 200
        assert (await client.post(path_of(links, survey_id="sv-2"), data={"comment": " \n\t "})).status == 200
    assert [comment for _, comment in answer.calls] == [None, None]


async def test_a_long_comment_is_cut_to_the_limit():
    answer = Recorder()
    async with serving(answer) as (client, links):
        assert (await client.post(path_of(links), data={"comment": "x" * 5000})).status == 200
    assert answer.calls[0][1] == "x" * MAX_COMMENT_CHARS


async def test_a_second_answer_to_the_same_survey_gets_the_already_answered_page():
    answer = Recorder()
    async with serving(answer) as (client, links):
        assert (await client.post(path_of(links, score=4), data={"comment": "first"})).status == 200
        again = await client.post(path_of(links, score=4), data={"comment": "second"})
        other_score = await client.post(path_of(links, score=1, language="es"), data={})
        assert again.status == 409 and "You have already answered" in await again.text()
        assert other_score.status == 409 and "Ya has respondido" in await other_score.text()
        assert_page_headers(again)
    assert len(answer.calls) == 3  # answer() decides; the page only reports what it says


async def test_a_closed_survey_gets_the_closed_page():
    async with serving(Recorder(closed=True)) as (client, links):
        response = await client.post(path_of(links, language="es"), data={})
        assert response.status == 410 and "Esta encuesta está cerrada" in await response.text()


async def test_an_answer_that_could_not_be_stored_asks_the_customer_to_try_again():
    async with serving(Recorder(fails=True)) as (client, links):
        response = await client.post(path_of(links), data={})
        assert response.status == 503 and "try again" in (await response.text()).lower()
        assert_page_headers(response)


async def test_an_answer_callback_that_says_something_else_is_a_server_error_not_a_page():
    async def confused(payload, comment):
        return "maybe"

    async with serving(confused) as (client, links):
        response = await client.post(path_of(links), data={})
        assert response.status == 500


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_forged_link_gets_403_an_expired_one_410_a_mangled_one_404_and_none_is_answered(method):
    answer = Recorder()
    data = {} if method == "POST" else None
    async with serving(answer) as (client, links):
        forged = await client.request(method, path_of(links, secret="t" * 40), data=data)
        mangled = await client.request(method, "/survey/not-a-token", data=data)
        expiring = path_of(links, language="es")
        links.max_age_seconds = -1  # every link is now past its lifetime
        expired = await client.request(method, expiring, data=data)
        assert forged.status == 403 and "This link is not valid" in await forged.text()
        assert mangled.status == 404 and "Link not found" in await mangled.text()
        assert expired.status == 410 and "Este enlace ha caducado" in await expired.text()  # the link's language
        for response in (forged, mangled, expired):
            assert_page_headers(response)
    assert answer.calls == []


async def test_a_refused_link_whose_language_is_unknown_follows_the_browser_else_english():
    async with serving(Recorder()) as (client, links):
        spanish = await client.get("/survey/garbage", headers={"Accept-Language": "fr;q=0.9, es-ES;q=0.8, en;q=0.5"})
        english = await client.get("/survey/garbage")
        assert "Enlace no encontrado" in await spanish.text()
        assert "Link not found" in await english.text()


async def test_a_script_in_the_comment_or_in_the_token_never_reaches_a_page_unescaped():
    answer = Recorder()
    async with serving(answer) as (client, links):
        pages = [await (await client.get(path_of(links, ticket_id=SCRIPT))).text()]
        for _ in range(2):  # recorded, then already answered
            pages.append(await (await client.post(path_of(links, ticket_id=SCRIPT), data={"comment": SCRIPT})).text())
        pages.append(await (await client.get(f"/survey/{SCRIPT}")).text())
    assert answer.calls[0][1] == SCRIPT  # kept as the customer wrote it; escaping is the page's job
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    for page in pages:
        assert "<script" not in page.lower()


async def test_the_page_headers_keep_the_token_out_of_referers_caches_and_frames():
    async with serving(Recorder()) as (client, links):
        response = await client.get(path_of(links))
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_style_sheet_is_served_where_the_pages_link_it():
    async with serving(Recorder()) as (client, links):
        page = await (await client.get(path_of(links))).text()
        response = await client.get("/survey/static/survey.css")
        assert response.status == 200 and response.content_type == "text/css"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert 'href="static/survey.css"' in page  # relative to /survey/{token}


async def test_a_post_from_another_origin_is_refused_and_not_answered():
    answer = Recorder()
    async with serving(answer) as (client, links):
        foreign = await client.post(path_of(links), data={"comment": "x"}, headers={"Origin": "https://evil.example"})
        cross_site = await client.post(path_of(links), data={}, headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"})
        assert foreign.status == 403 and "Answer not accepted" in await foreign.text()
        assert cross_site.status == 403
        assert_page_headers(foreign)
    assert answer.calls == []


async def test_a_post_from_our_own_page_is_accepted_whatever_its_browser_says_of_the_origin():
    answer = Recorder()
    async with serving(answer) as (client, links):
        own = links.base_url
        for survey_id, headers in [
            ("sv-1", {"Origin": own, "Sec-Fetch-Site": "same-origin"}),
            ("sv-2", {"Origin": "null", "Sec-Fetch-Site": "same-origin"}),  # what no-referrer makes a browser send
            ("sv-3", {}),  # curl, old browsers: the token is the capability
        ]:
            response = await client.post(path_of(links, survey_id=survey_id), data={}, headers=headers)
            assert response.status == 200, headers
    assert len(answer.calls) == 3


async def test_a_post_through_a_proxy_that_ends_tls_is_accepted_from_the_public_origin():
    answer = Recorder()
    async with serving(answer) as (client, links):
        path = path_of(links)
        links.base_url = "https://help.example.com/feedback"
        response = await client.post(path, data={}, headers={"Origin": "https://help.example.com"})
        assert response.status == 200
        refused = await client.post(path, data={}, headers={"Origin": "https://help.example.com.evil.example"})
        assert refused.status == 403


def test_a_comment_keeps_its_words_and_lines_and_loses_control_and_direction_characters():
    assert clean_comment("a\tb\r\nc\rd\x07\x1b[31m\u2066e\u2069") == "a\tb\nc\nd[31me"
    assert clean_comment(None) is None and clean_comment("   ") is None
    assert clean_comment(b"bytes") is None  # a file field is not a comment


def test_the_page_language_is_the_links_then_the_browsers_then_english():
    assert page_language("es-AR") == "es" and page_language("EN") == "en" and page_language("pt") == "en"
    assert page_language(None, "es;q=0.5, en;q=0.9") == "en"
    assert page_language(None, "de, es-419") == "es"
    assert page_language(None, "es;q=0, de") == "en"
    assert page_language(None, "es;q=abc") == "en"
    assert page_language(None, None) == "en"


def test_a_comment_has_card_numbers_and_passwords_masked_before_it_is_cut():
    assert clean_comment("cobrado en 4242 4242 4242 4242, clave: gato") == "cobrado en [card ····4242], clave: [secret ····]"
    near_the_limit = "x" * (MAX_COMMENT_CHARS - 10) + " 4242424242424242"
    kept = clean_comment(near_the_limit)
    assert kept is not None and len(kept) == MAX_COMMENT_CHARS and "42424" not in kept
