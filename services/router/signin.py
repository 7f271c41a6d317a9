"""Who is at the console: password checks, the session cookie, the CSRF token and the
brake on guessing.

Sessions are signed cookies rather than rows in a table, so that every router
worker honours a session another one opened (they share ROUTER_SESSION_SECRET) and a
restart signs nobody out. A session carries a random nonce; the CSRF token is an HMAC
of that nonce, so a page can only send a valid token if it could read our answers,
which a page on another origin cannot. Before sign-in a visitor gets a pre-session
nonce the same way, so that the sign-in form itself cannot be posted from elsewhere.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from deskstream.limits import LruTable

from services.router.roster import Agent

SESSION_COOKIE = "deskstream_session"
PRESESSION_COOKIE = "deskstream_presession"
CSRF_HEADER = "X-CSRF-Token"

_hasher = PasswordHasher()
# Checked when the agent id is unknown, so that the answer takes as long as for a
# known agent with a wrong password and does not tell which ids exist.
_DECOY = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """The roster's `password_argon2` for `password` (argon2id, the library's defaults)."""
    return _hasher.hash(password)


def password_matches(agent: Agent | None, password: str) -> bool:
    """Slow on purpose (argon2): run it off the event loop."""
    stored = agent.password_argon2 if agent is not None else None
    try:
        return _hasher.verify(stored or _DECOY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Session:
    agent_id: str
    nonce: str


class Sessions:
    """Signs and reads the session and pre-session cookies, and derives CSRF tokens."""

    def __init__(self, secret: str, max_age_seconds: float) -> None:
        self._secret = secret.encode()
        self._serializer = URLSafeTimedSerializer(secret, salt="deskstream.console.session")
        self.max_age_seconds = max_age_seconds

    def open(self, agent_id: str) -> tuple[str, Session]:
        """A new session (a fresh nonce, so a token seen before sign-in is worth nothing after)."""
        session = Session(agent_id, secrets.token_urlsafe(18))
        return self._serializer.dumps({"a": agent_id, "n": session.nonce}), session

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            payload: Any = self._serializer.loads(cookie, max_age=self.max_age_seconds)
        except BadSignature:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("a"), str) or not isinstance(payload.get("n"), str):
            return None
        return Session(payload["a"], payload["n"])

    def csrf_token(self, nonce: str) -> str:
        return hmac.new(self._secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(self.csrf_token(str(nonce)), str(token))


@dataclass(slots=True)
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass(slots=True)
class SignInThrottle:
    """Slows down guessing: after `free` failed sign-ins for an agent id, or from one
    client address, each further try must wait twice as long as the one before (from
    one second up to `ceiling`), and a success clears the agent's count. Kept in
    memory per worker: a guesser who spreads over workers gets at most their number
    times the rate, which argon2's cost already keeps slow. At most `max_keys` agent ids
    and addresses are remembered (deskstream.limits.LruTable: the longest quiet first), so
    a flood of made-up ids cannot grow memory without end."""

    free: int = 3
    ceiling: float = 300.0
    forget_after: float = 3600.0
    max_keys: int = 10_000
    _failures: LruTable[_Failures] = field(init=False)

    def __post_init__(self) -> None:
        self._failures = LruTable(self.max_keys, lambda failures, now: now - failures.last > self.forget_after)

    def wait(self, keys: tuple[str, ...], now: float) -> float:
        """Seconds before another try for these keys is heard (0: now)."""
        return max((self._wait(key, now) for key in keys), default=0.0)

    def _wait(self, key: str, now: float) -> float:
        failures = self._failures.get(key)
        if failures is None or failures.count < self.free:
            return 0.0
        delay = min(self.ceiling, 2.0 ** (failures.count - self.free))
        return max(0.0, failures.last + delay - now)

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        for key in keys:
            failures = self._failures.touch(key, now, _Failures)
            failures.count += 1
            failures.last = now

    def succeeded(self, key: str) -> None:
        self._failures.pop(key)

