"""The ops dashboard's page (feedback, port 8083): live queues by skill and priority,
SLA breaches, active and suspected incidents, CSAT and response times per day.

    GET /dashboard                      the page (English; Spanish with ?lang=es)
    GET /dashboard/static/{name}        dashboard.js and dashboard.css, nothing else

The page is static files; everything it shows comes as JSON from GET /api/dashboard
and then from the live feed GET /api/dashboard/events (server-sent `dashboard` events
carrying the same JSON), both served elsewhere in the feedback service. dashboard.js
puts every value on the page as text (textContent, SVG text nodes), never as HTML,
and the Content-Security-Policy allows no inline script or style, so an ops message
or a customer's word that reaches the dashboard cannot run or restyle anything.

The page's language is decided here, so that `<html lang>` is right before any script
runs; dashboard.js translates the labels from it.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from deskstream.http import RouteSetup

STATIC = Path(__file__).resolve().parent / "static"
PAGE = "dashboard.html"
ASSETS = {"dashboard.js": "application/javascript", "dashboard.css": "text/css"}
LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"
LANG_MARKER = '<html lang="en">'
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The script and style sheet change with a deploy and are fetched once per page load;
# a short cache, revalidated, is enough and never serves yesterday's script for long.
ASSET_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_language(requested: str | None) -> str:
    """`?lang=es` asks for Spanish; anything else (or nothing) is English."""
    value = (requested or "").strip().lower()
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def page_in(language: str, template: str) -> str:
    """The page with `<html lang>` set to `language` (the template says English)."""
    if LANG_MARKER not in template:
        raise ValueError(f"{PAGE} must contain {LANG_MARKER!r}")
    return template.replace(LANG_MARKER, f'<html lang="{language}">', 1)


def dashboard_page_routes() -> RouteSetup:
    """GET /dashboard and its two static files (read once, when the routes are set up)."""
    template = (STATIC / PAGE).read_text(encoding="utf-8")
    pages = {language: page_in(language, template).encode("utf-8") for language in LANGUAGES}
    assets = {name: (STATIC / name).read_bytes() for name in ASSETS}

    async def page(request: web.Request) -> web.Response:
        language = page_language(request.query.get("lang"))
        return web.Response(body=pages[language], content_type="text/html", charset="utf-8",
                            headers={**PAGE_HEADERS, "Content-Language": language})

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound(headers={"X-Content-Type-Options": "nosniff"})
        return web.Response(body=assets[name], content_type=ASSETS[name], charset="utf-8", headers=ASSET_HEADERS)

    def setup(application: web.Application) -> None:
        application.router.add_get("/dashboard", page)
        application.router.add_get("/dashboard/", page)
        application.router.add_get("/dashboard/static/{name}", asset)

    return setup
