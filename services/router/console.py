"""The agent console: the page agents and supervisors work from (`/console`), its
sign-in, the live feed that keeps its queue current without a reload, and the help
shown beside the reply box (the guide for this customer, canned answers, articles).

The page is static files; everything it shows comes from the agent API as JSON and
is put on the page as text (console.js never assigns HTML), and the page's
Content-Security-Policy allows no inline script or style, so customer text cannot run.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from deskstream.http import request_client
from deskstream.limits import IPNetwork, retry_after
from deskstream.replica import watching

from services.router import guides, macros, sla
from services.router.knowledge import KnowledgeBase, Suggestion
from services.router.roster import Agent
from services.router.signin import (
    CSRF_HEADER, PRESESSION_COOKIE, SESSION_COOKIE, Sessions, SignInThrottle, password_matches,
)
from services.router.web import Action, Refused, Tables, agent_view, authenticated, may_see, queue_of, session_of

STATIC = Path(__file__).resolve().parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_PASSWORD_CHARS = 1024
MAX_QUERY_CHARS = 200
RANKED_TEXT_CHARS = 4000  # the ticket text the articles are ranked against: its subject and latest words
HEARTBEAT_SECONDS = 15.0
SETTLE_SECONDS = 0.2  # changes that arrive together go out as one update


@dataclass(slots=True)
class Console:
    """What the console needs besides the tables: who may sign in, and the help files."""

    roster: tuple[Agent, ...]
    sessions: Sessions
    knowledge: KnowledgeBase
    macros: tuple[macros.Macro, ...]
    guides: dict[tuple[str, str], guides.Guide]
    secure_cookies: bool = False
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    trusted_proxies: tuple[IPNetwork, ...] = ()  # TRUSTED_PROXIES: whose X-Forwarded-For names the client

    def set_cookie(self, response: web.StreamResponse, name: str, value: str, max_age: float | None) -> None:
        response.set_cookie(name, value, max_age=int(max_age) if max_age else None, path="/", httponly=True,
                            samesite="Strict", secure=self.secure_cookies)

    async def sign_in(self, agent_id: str, password: str, client: str) -> Agent:
        """The agent, if the password is theirs; slowed down after repeated failures."""
        keys = (f"agent:{agent_id}", f"client:{client}")
        wait = self.throttle.wait(keys, time.monotonic())
        if wait > 0:
            raise TooSoon(wait)
        agent = next((a for a in self.roster if a.id == agent_id), None)
        matched = await asyncio.get_running_loop().run_in_executor(None, password_matches, agent, password)
        if agent is None or not matched:
            self.throttle.failed(keys, time.monotonic())
            raise Refused(401, "wrong agent id or password")
        self.throttle.succeeded(keys[0])
        return agent

    def help_for(self, agent: Agent, conversation: dict[str, Any], query: str) -> dict[str, Any]:
        """The help beside the reply box: how to answer this kind of customer, the canned
        answers (filled in for this ticket) that match `query`, and the articles that
        best match what the customer wrote."""
        language = str(conversation["customer"].get("language") or "en")
        guide = guides.guide_for(self.guides, conversation.get("hint"), language)
        values = {"name": first_name(conversation["customer"].get("name")), "ticket": conversation["ticket_id"],
                  "agent": first_name(agent.name), "fix_time": None}
        found = macros.search(self.macros, query, language)
        said = " ".join([conversation.get("subject") or "",
                         *(e["text"] for e in conversation["entries"] if e["kind"] == "customer")])[-RANKED_TEXT_CHARS:]
        return {
            "language": language,
            "hint": conversation.get("hint", "unknown"),
            "guide": None if guide is None else {"title": guide.title, "lead_with": list(guide.lead_with), "avoid": list(guide.avoid)},
            "macros": [{"id": m.id, "title": m.title, "text": macros.fill(m.text, values, language)} for m in found],
            "articles": [{"id": s.article.id, "title": s.article.title, "body": s.article.body, "score": round(s.score, 2)}
                         for s in relevant(self.knowledge.suggest(said, language))],
        }


def relevant(suggestions: list[Suggestion]) -> list[Suggestion]:
    """The suggestions worth an agent's glance: an article that scores under a third of
    the best one matched a word or two in passing, not the customer's problem."""
    return [s for s in suggestions if s.score * 3 >= suggestions[0].score] if suggestions else []


class TooSoon(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry in {seconds:.0f} s")
        self.seconds = seconds


def first_name(name: str | None) -> str | None:
    return name.split()[0] if name and name.split() else None


def console_routes(console: Console, tables: Tables, targets: sla.Targets):
    roster, sessions = console.roster, console.sessions
    action = authenticated(roster, sessions)

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "console.html", headers=PAGE_HEADERS)

    async def session(request: web.Request) -> web.Response:
        """Who is signed in, with the CSRF token for their requests; for a visitor, the
        token that the sign-in form must send (tied to a pre-session cookie)."""
        signed_in = session_of(request, roster, sessions)
        if signed_in is not None:
            agent, current = signed_in
            return web.json_response({"signed_in": True, "agent": agent_view(agent, tables.agents.get(agent.id) or {}, 0),
                                      "csrf": sessions.csrf_token(current.nonce)}, headers=PAGE_HEADERS)
        nonce = request.cookies.get(PRESESSION_COOKIE) or secrets.token_urlsafe(18)
        response = web.json_response({"signed_in": False, "csrf": sessions.csrf_token(nonce)}, headers=PAGE_HEADERS)
        console.set_cookie(response, PRESESSION_COOKIE, nonce, None)
        return response

    async def sign_in(request: web.Request) -> web.Response:
        if not sessions.csrf_valid(request.cookies.get(PRESESSION_COOKIE), request.headers.get(CSRF_HEADER)):
            return web.json_response({"error": f"the {CSRF_HEADER} header is missing or wrong; reload the page"}, status=403)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        agent_id, password = (body.get("agent_id"), body.get("password")) if isinstance(body, dict) else (None, None)
        if not isinstance(agent_id, str) or not isinstance(password, str) or not agent_id or len(password) > MAX_PASSWORD_CHARS:
            return web.json_response({"error": "agent_id and password are required"}, status=400)
        try:
            agent = await console.sign_in(agent_id.strip(), password, request_client(request, console.trusted_proxies))
        except TooSoon as soon:
            return web.json_response({"error": "too many failed sign-ins; wait and try again"}, status=429,
                                     headers={"Retry-After": retry_after(soon.seconds)})
        except Refused as refused:
            return web.json_response({"error": refused.reason}, status=refused.status)
        cookie, opened = sessions.open(agent.id)
        response = web.json_response({"signed_in": True, "agent": agent_view(agent, tables.agents.get(agent.id) or {}, 0),
                                      "csrf": sessions.csrf_token(opened.nonce)}, headers=PAGE_HEADERS)
        console.set_cookie(response, SESSION_COOKIE, cookie, sessions.max_age_seconds)
        response.del_cookie(PRESESSION_COOKIE, path="/")
        return response

    @action
    async def sign_out(act: Action) -> web.Response:
        response = web.json_response({"signed_in": False})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    @action
    async def help_view(act: Action) -> web.Response:
        found = tables.seen_by(act.agent, act.ticket_id)
        conversation = tables.conversations.get(found["ticket_id"])
        if conversation is None:
            raise Refused(404, "no conversation yet for this ticket")
        query = act.request.query.get("q", "")[:MAX_QUERY_CHARS]
        return web.json_response(console.help_for(act.agent, conversation, query))

    @action
    async def events(act: Action) -> web.StreamResponse:
        """Server-sent events: `queue` (the caller's queue, whenever it changes) and
        `tickets` (the ids of visible tickets whose record or conversation changed, so
        an open ticket view refreshes)."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(act.request)
        last = b""
        with watching(tables.tickets, tables.conversations, tables.agents) as watch:
            changed: set[str] = set()
            while True:
                queue = orjson.dumps(queue_of(act.agent, tables, targets))
                if queue != last:
                    await response.write(b"event: queue\ndata: " + queue + b"\n\n")
                    last = queue
                seen = sorted(key for key in changed if (t := tables.tickets.get(key)) is not None and may_see(act.agent, t))
                if seen:
                    await response.write(b"event: tickets\ndata: " + orjson.dumps(seen) + b"\n\n")
                try:
                    changed = await asyncio.wait_for(watch.changed(), HEARTBEAT_SECONDS)
                    await asyncio.sleep(SETTLE_SECONDS)
                    changed |= watch.pending()
                except asyncio.TimeoutError:
                    changed = set()
                    await response.write(b": still here\n\n")

    def setup(application: web.Application) -> None:
        application.router.add_get("/console", page)
        application.router.add_get("/console/", page)
        application.router.add_static("/console/static/", STATIC)
        application.router.add_get("/console/session", session)
        application.router.add_post("/console/sign-in", sign_in)
        application.router.add_post("/console/sign-out", sign_out)
        application.router.add_get("/api/events", events)
        application.router.add_get("/api/tickets/{ticket_id}/help", help_view)

    return setup
