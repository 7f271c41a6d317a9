"""The router's dispatcher in memory: its tables as dicts, and each record through
`routing.dispatch` with its writes applied, as the dispatch hop does with its tables.
Unit tests drive it directly; integration tests replay `router.dispatch` through it
and compare with what the workers published."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from services.router import routing
from services.router.roster import Agent


class Dispatcher:
    def __init__(self, roster: tuple[Agent, ...], policy: routing.Policy = routing.DEFAULT_POLICY,
                 tickets: dict[str, dict[str, Any]] | None = None) -> None:
        self.roster = roster
        self.policy = policy
        self.tables: dict[str, dict[str, Any]] = {"tickets": dict(tickets or {}), "agents": {}, "customers": {}, "handling": {}}

    @property
    def tickets(self) -> dict[str, Any]:
        return self.tables["tickets"]

    @property
    def agents(self) -> dict[str, Any]:
        return self.tables["agents"]

    def decide(self, command_type: str, data: dict[str, Any], now: datetime | None = None) -> routing.Dispatched:
        """What the dispatcher would do, without doing it."""
        return routing.dispatch(self.roster, routing.Boards(**self.tables), command_type, data, now, self.policy)

    def run(self, command_type: str, data: dict[str, Any], now: datetime | None = None) -> routing.Dispatched:
        outcome = self.decide(command_type, data, now)
        for table, writes in outcome.writes().items():
            for key, value in writes.items():
                if value is None:
                    self.tables[table].pop(key, None)
                else:
                    self.tables[table][key] = value
        return outcome
