"""The survey pages the one-click links of the survey mail open (a thin shell over
`links.py` and the `answer` callback that records answers).

    GET  /survey/{token}               the chosen score, an optional comment, a Send button
    POST /survey/{token}               records the answer (once per survey), thanks the customer
    GET  /survey/static/survey.css     the pages' only style sheet

GET never records anything: mail scanners and link previews fetch every link in a mail,
so a "one-click" answer on GET would record whatever score the scanner fetched first.
Only the customer's POST from the page does.

Why the POST needs no CSRF token: the signed token in the URL *is* the capability to
answer, and there are no cookies, so a forged cross-site request has no ambient
authority to ride; anyone who can build the request already holds the link and could
send it with curl. SameSite plays no part for the same reason. What remains is a page
elsewhere that knows a link making the customer's browser submit it; we refuse a POST
whose `Origin` names another origin, or whose `Sec-Fetch-Site` (set by the browser,
not by pages) says it did not come from our own page. `Origin: null` is taken as "not
said": our pages send `Referrer-Policy: no-referrer` (the token is in the URL), and a
browser then serialises the origin of a same-origin form post as "null".

Every page is built from fixed text plus values passed through html.escape, and the
Content-Security-Policy allows no script at all, so a comment or a token's ids
cannot run or restyle anything.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from deskstream.http import RouteSetup
from deskstream.pipeline import NotStored
from deskstream.sensitive import mask

from services.feedback.links import InvalidLink, SurveyLinks

Answer = Callable[[dict[str, Any], str | None], Awaitable[str]]  # -> one of OUTCOMES

RECORDED = "recorded"
ALREADY_ANSWERED = "already answered"
CLOSED = "closed"
OUTCOMES = (RECORDED, ALREADY_ANSWERED, CLOSED)

MAX_COMMENT_CHARS = 1000
MAX_FORM_BYTES = 16 * 1024  # 1000 characters, percent-encoded, fit several times over
LANGUAGES = ("es", "en")
STATIC = Path(__file__).resolve().parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Control characters (but newline and tab) and the bidirectional overrides and isolates
# that would let a comment display as something other than what it says.
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class UnexpectedOutcome(ValueError):
    """`answer` returned something other than RECORDED, ALREADY_ANSWERED or CLOSED."""


TEXT: dict[str, dict[str, str]] = {
    "en": {
        "survey_title": "How did we do?",
        "chosen": "You chose {score} of 5.",
        "about": "About your request {ticket}.",
        "why": "Your answer goes to the team that helped you, and shows us what to keep doing and what to fix.",
        "comment": "Anything you would like to add? (optional)",
        "send": "Send my answer",
        "note": "Nothing is sent until you press the button. To choose another score, use another link in the e-mail.",
        "thanks_title": "Thank you",
        "thanks": "Your answer has been recorded. You can close this page.",
        "already_title": "You have already answered",
        "already": "We already have this answer. To change it, use another score's link in the mail: your last answer counts. Thank you.",
        "closed_title": "This survey is closed",
        "closed": "This survey no longer takes answers. Thank you all the same.",
        "expired_title": "This link has expired",
        "expired": "Survey links stop working after a while, so that nobody can use an old mail later. Thank you all the same.",
        "forged_title": "This link is not valid",
        "forged": "This link does not match one we sent. Please open it again from the e-mail, without changing it.",
        "malformed_title": "Link not found",
        "malformed": "This is not a survey link we know. If you copied it from the e-mail, check that it is complete.",
        "origin_title": "Answer not accepted",
        "origin": "Answers are only accepted from our survey page. Please open the link in the e-mail and send it from there.",
        "too_long_title": "Comment too long",
        "too_long": "Please go back and shorten your comment (at most 1000 characters).",
        "unavailable_title": "Please try again",
        "unavailable": "We could not save your answer just now. Please go back and send it again in a few minutes.",
    },
    "es": {
        "survey_title": "¿Cómo lo hicimos?",
        "chosen": "Elegiste {score} de 5.",
        "about": "Sobre tu solicitud {ticket}.",
        "why": "Tu respuesta llega al equipo que te atendió y nos muestra qué mantener y qué mejorar.",
        "comment": "¿Quieres añadir algo? (opcional)",
        "send": "Enviar mi respuesta",
        "note": "No se envía nada hasta que pulses el botón. Para elegir otra puntuación, usa otro enlace del correo.",
        "thanks_title": "Gracias",
        "thanks": "Hemos registrado tu respuesta. Ya puedes cerrar esta página.",
        "already_title": "Ya has respondido",
        "already": "Ya tenemos esta respuesta. Para cambiarla, usa el enlace de otra puntuación del correo: cuenta la última. Gracias.",
        "closed_title": "Esta encuesta está cerrada",
        "closed": "Esta encuesta ya no admite respuestas. Gracias de todos modos.",
        "expired_title": "Este enlace ha caducado",
        "expired": "Los enlaces de la encuesta dejan de funcionar pasado un tiempo, para que nadie pueda usar un correo antiguo. "
                   "Gracias de todos modos.",
        "forged_title": "Este enlace no es válido",
        "forged": "Este enlace no coincide con ninguno de los que enviamos. Ábrelo de nuevo desde el correo, sin modificarlo.",
        "malformed_title": "Enlace no encontrado",
        "malformed": "Esta no es una dirección de encuesta que conozcamos. Si la copiaste del correo, comprueba que esté completa.",
        "origin_title": "Respuesta no aceptada",
        "origin": "Solo aceptamos respuestas desde nuestra página de la encuesta. Abre el enlace del correo y envíala desde allí.",
        "too_long_title": "Comentario demasiado largo",
        "too_long": "Vuelve atrás y acorta tu comentario (como máximo 1000 caracteres).",
        "unavailable_title": "Inténtalo de nuevo",
        "unavailable": "No hemos podido guardar tu respuesta ahora. Vuelve atrás y envíala de nuevo en unos minutos.",
    },
}
_REFUSALS = {"forged": 403, "expired": 410, "malformed": 404}
_OUTCOME_PAGES = {RECORDED: ("thanks", 200), ALREADY_ANSWERED: ("already", 409), CLOSED: ("closed", 410)}


def page_language(link_language: str | None, accept_language: str | None = None) -> str:
    """The pages' language: the link's (the customer's own) when known, else the first
    of ours the browser asks for, else English."""
    if link_language:
        return "es" if _primary(link_language) == "es" else "en"
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if quality > 0 and _primary(tag) in LANGUAGES:
            ranked.append((-quality, position, _primary(tag)))
    return min(ranked)[2] if ranked else "en"


def _primary(tag: str) -> str:
    return tag.strip().lower().replace("_", "-").split("-")[0]


def clean_comment(value: Any) -> str | None:
    """The comment as it is kept: text only (a file field counts as none), line ends
    as "\\n", no control or direction-override characters, card numbers, passwords and
    national ids masked as intake masks messages (deskstream.sensitive; before the cut,
    so that no number is cut into a part that passes unmasked), at most
    MAX_COMMENT_CHARS, and None when nothing is left."""
    if not isinstance(value, str):
        return None
    text = mask(_UNWANTED.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))).text
    return text[:MAX_COMMENT_CHARS].strip() or None


def allowed_origins(request: web.Request, base_url: str) -> set[str]:
    """Our own origin as the request reached us and as the links name it (behind a
    proxy that ends TLS the two differ: http here, https in the customer's browser)."""
    public = urlsplit(base_url)
    origins = {f"{request.scheme}://{request.host}".lower()}
    if public.scheme and public.netloc:
        origins.add(f"{public.scheme}://{public.netloc}".lower())
    return origins


def from_our_page(request: web.Request, base_url: str) -> bool:
    """Whether a POST may have come from our own survey page (see the module docstring)."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null" and origin.lower() not in allowed_origins(request, base_url):
        return False
    fetched_from = request.headers.get("Sec-Fetch-Site")
    return fetched_from is None or fetched_from == "same-origin"


def render(language: str, title: str, body: str, status: int = 200) -> web.Response:
    """A whole page; `title` is escaped here, `body` must already be escaped HTML."""
    page = (
        "<!doctype html>\n"
        f'<html lang="{language}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{html.escape(title)}</title>\n"
        # Relative, so that the pages also work under a path prefix in base_url.
        '<link rel="stylesheet" href="static/survey.css">\n'
        f"</head>\n<body>\n<main>\n<h1>{html.escape(title)}</h1>\n{body}</main>\n</body>\n</html>\n"
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)


def message_page(language: str, key: str, status: int) -> web.Response:
    """A page of one short paragraph: `TEXT[language][key]` under its `…_title`."""
    words = TEXT[language]
    return render(language, words[f"{key}_title"], f"<p>{html.escape(words[key])}</p>\n", status)


def survey_page(language: str, payload: dict[str, Any]) -> web.Response:
    """The chosen score, why the answer matters, the comment box and the Send button.
    The form has no action: it posts back to this very URL, token included."""
    words = TEXT[language]
    score = int(payload["score"])
    scale = "".join(f'<span class="{"chosen" if n == score else "other"}">{n}</span>' for n in range(1, 6))
    body = (
        f'<p class="chosen-score">{html.escape(words["chosen"].format(score=score))}</p>\n'
        f'<p class="scale" aria-hidden="true">{scale}</p>\n'
        f'<p class="about">{html.escape(words["about"].format(ticket=payload["ticket_id"]))}</p>\n'
        f'<p>{html.escape(words["why"])}</p>\n'
        '<form method="post">\n'
        f'<label for="comment">{html.escape(words["comment"])}</label>\n'
        f'<textarea id="comment" name="comment" rows="5" maxlength="{MAX_COMMENT_CHARS}"></textarea>\n'
        f'<button type="submit">{html.escape(words["send"])}</button>\n'
        "</form>\n"
        f'<p class="note">{html.escape(words["note"])}</p>\n'
    )
    return render(language, words["survey_title"], body)


def survey_routes(links: SurveyLinks, answer: Answer) -> RouteSetup:
    """The survey pages over `links` (which reads the tokens) and `answer` (which records
    an answer once per survey and says RECORDED, ALREADY_ANSWERED or CLOSED; it may
    raise NotStored when the answer could not be kept, and the customer is asked to
    try again)."""

    def read_link(request: web.Request) -> tuple[dict[str, Any], str] | web.Response:
        """The link's payload and page language, or the page that refuses the link."""
        try:
            payload = links.read(request.match_info["token"])
        except InvalidLink as invalid:
            language = page_language(invalid.language, request.headers.get("Accept-Language"))
            return message_page(language, invalid.reason, _REFUSALS[invalid.reason])
        return payload, page_language(payload["language"])

    async def show(request: web.Request) -> web.Response:
        read = read_link(request)
        if isinstance(read, web.Response):
            return read
        payload, language = read
        return survey_page(language, payload)

    async def submit(request: web.Request) -> web.Response:
        read = read_link(request)
        if isinstance(read, web.Response):
            return read
        payload, language = read
        if not from_our_page(request, links.base_url):
            return message_page(language, "origin", 403)
        if (request.content_length or 0) > MAX_FORM_BYTES:
            return message_page(language, "too_long", 413)
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            return message_page(language, "too_long", 413)
        try:
            outcome = await answer(payload, clean_comment(form.get("comment")))
        except NotStored:
            return message_page(language, "unavailable", 503)
        if outcome not in _OUTCOME_PAGES:
            raise UnexpectedOutcome(f"answer() returned {outcome!r}, expected one of {OUTCOMES}")
        key, status = _OUTCOME_PAGES[outcome]
        return message_page(language, key, status)

    async def style(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "survey.css", headers={"X-Content-Type-Options": "nosniff",
                                                                "Cache-Control": "public, max-age=86400"})

    def setup(application: web.Application) -> None:
        application.router.add_get("/survey/static/survey.css", style)
        application.router.add_get("/survey/{token}", show)
        application.router.add_post("/survey/{token}", submit)

    return setup
