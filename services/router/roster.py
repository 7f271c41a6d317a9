"""The agents who take tickets: skills, tier, languages and how many tickets each
can hold at once."""
from __future__ import annotations

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

    def can_take(self, skill: str, tier: str, language: str) -> bool:
        """L2 agents also take L1 work of their skills; L1 agents never take L2 work."""
        tier_ok = self.tier == "L2" or tier == "L1"
        return skill in self.skills and tier_ok and language in self.languages


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
            )
            for entry in raw["agents"]
        )
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise RosterError(f"cannot load the roster {path}: {error!r}") from None
