"""The agent API's OpenAPI document is valid and describes exactly the routes the router serves."""
import json

from aiohttp import web
from openapi_spec_validator import validate

from services.router.console import Console, console_routes
from services.router.guides import load_guides
from services.router.knowledge import KnowledgeBase
from services.router.macros import load_macros
from services.router.roster import load_roster
from services.router.signin import Sessions
from services.router.web import OPENAPI, agent_routes

METHODS = {"get", "post", "put", "patch", "delete"}


def test_the_document_is_valid_openapi():
    validate(json.loads(OPENAPI.read_text()))


def test_the_document_and_the_routes_are_the_same():
    application = web.Application()
    sessions = Sessions("s" * 40, 3600)
    agent_routes(load_roster(), tables=None, pipeline=None, dispatch_key="dispatch", targets=None, sessions=sessions)(application)  # type: ignore[arg-type]
    console = Console(load_roster(), sessions, KnowledgeBase.load(), load_macros(), load_guides())
    console_routes(console, tables=None, targets=None)(application)  # type: ignore[arg-type]
    served = {(route.resource.canonical, route.method.lower()) for route in application.router.routes()
              if route.method.lower() in METHODS and route.resource.canonical.startswith("/api/")
              and route.resource.canonical != "/api/openapi.json"}
    paths = json.loads(OPENAPI.read_text())["paths"]
    described = {(path, method) for path, item in paths.items() for method in item if method in METHODS}
    assert served == described
