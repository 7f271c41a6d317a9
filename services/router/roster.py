"""The agents who take tickets: skills, tier, languages and how many tickets each
can hold at once."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

import orjson

DEFAULT_ROSTER = Path(__file__).resolve().parent / "roster.json"


class RosterError(ValueError):
    """A roster file that cannot be used."""


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str
    skills: frozenset[str]
    tier: str
    languages: frozenset[str]
    max_concurrent: int
    token_sha256: str | None = None  # the agent API's bearer token, hashed; no hash, no API access
    role: str = "agent"  # or "supervisor": sees every queue and may act on any ticket
    password_argon2: str | None = None  # the console's sign-in password, hashed; no hash, no sign-in

    @property
    def supervises(self) -> bool:
        return self.role == "supervisor"

    def can_take(self, skill: str, tier: str, language: str) -> bool:
        """L2 agents also take L1 work of their skills; L1 agents never take L2 work."""
        tier_ok = self.tier == "L2" or tier == "L1"
        return skill in self.skills and tier_ok and language in self.languages


def agent_with_token(roster: tuple[Agent, ...], token: str | None) -> Agent | None:
    """The agent whose API token this is. Tokens are long random strings, so a plain
    SHA-256 of them is safe to keep in the roster file; every agent is compared, in
    constant time, so the answer's timing says nothing about which one matched."""
    if not token:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    found = None
    for agent in roster:
        if agent.token_sha256 and hmac.compare_digest(agent.token_sha256, digest):
            found = agent
    return found


ROLES = ("agent", "supervisor")


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def load_roster(path: Path = DEFAULT_ROSTER) -> tuple[Agent, ...]:
    try:
        raw = orjson.loads(path.read_bytes())
        return tuple(
            Agent(
                id=entry["id"],
                name=entry["name"],
                skills=frozenset(entry["skills"]),
                tier=entry["tier"],
                languages=frozenset(entry["languages"]),
                max_concurrent=int(entry["max_concurrent"]),
                token_sha256=entry.get("token_sha256"),
                role=_role(entry.get("role", "agent")),
                password_argon2=entry.get("password_argon2"),
            )
            for entry in raw["agents"]
        )
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise RosterError(f"cannot load the roster {path}: {error!r}") from None
