"""Router's settings, read once from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Mapping

import secrets

from deskstream.limits import IPNetwork
from deskstream.settings import ServiceSettings, SettingsError, env_flag, env_float, env_networks, env_secret, env_str

from services.router.guides import DEFAULT_GUIDES
from services.router.knowledge import DEFAULT_KNOWLEDGE
from services.router.macros import DEFAULT_MACROS
from services.router.roster import DEFAULT_ROSTER
from services.router.routing import Policy
from services.router.sla import Targets, TargetsError
from services.router.triage import DEFAULT_RULES


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The agent console: its sessions and the help it offers beside the reply box."""

    session_secret: str = field(repr=False)  # signs session cookies; every router worker needs the same one
    session_secret_generated: bool  # none was set: sessions end with this worker
    session_hours: float
    cookie_secure: bool  # send cookies over HTTPS only (behind TLS in production)
    knowledge_path: Path
    macros_path: Path
    guides_path: Path
    trusted_proxies: tuple[IPNetwork, ...] = ()  # TRUSTED_PROXIES: the sign-in throttle's client address

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ConsoleSettings":
        secret = env_secret(env, "ROUTER_SESSION_SECRET")
        return cls(
            session_secret=secret or secrets.token_urlsafe(32),
            session_secret_generated=not secret,
            session_hours=env_float(env, "ROUTER_SESSION_HOURS", 8.0),
            cookie_secure=env_flag(env, "ROUTER_COOKIE_SECURE", False),
            knowledge_path=Path(env_str(env, "ROUTER_KNOWLEDGE_PATH", str(DEFAULT_KNOWLEDGE))),
            macros_path=Path(env_str(env, "ROUTER_MACROS_PATH", str(DEFAULT_MACROS))),
            guides_path=Path(env_str(env, "ROUTER_GUIDES_PATH", str(DEFAULT_GUIDES))),
            trusted_proxies=env_networks(env, "TRUSTED_PROXIES"),
        )


@dataclass(frozen=True, slots=True)
class RouterSettings:
    service: ServiceSettings
    rules_path: Path
    roster_path: Path
    rules_reload_seconds: float
    policy: Policy
    sla_tick_seconds: float
    console: ConsoleSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "RouterSettings":
        env = os.environ if env is None else env
        return cls(
            service=ServiceSettings.from_env("router", 8081, env),
            rules_path=Path(env_str(env, "ROUTER_RULES_PATH", str(DEFAULT_RULES))),
            roster_path=Path(env_str(env, "ROUTER_ROSTER_PATH", str(DEFAULT_ROSTER))),
            rules_reload_seconds=env_float(env, "ROUTER_RULES_RELOAD_SECONDS", 5.0),
            policy=Policy(
                targets=targets(env),
                repeat_window=timedelta(days=env_float(env, "ROUTER_REPEAT_WINDOW_DAYS", 7.0)),
                keep_resolved=timedelta(days=env_float(env, "ROUTER_KEEP_RESOLVED_DAYS", 14.0)),
            ),
            sla_tick_seconds=env_float(env, "ROUTER_SLA_TICK_SECONDS", 15.0),
            console=ConsoleSettings.from_env(env),
        )


def targets(env: Mapping[str, str]) -> Targets:
    try:
        return Targets.parse(
            env_str(env, "ROUTER_SLA_FIRST_RESPONSE_MINUTES", ""),
            env_str(env, "ROUTER_SLA_RESOLUTION_MINUTES", ""),
            env_str(env, "ROUTER_SLA_BUSINESS_HOURS", ""),
            env_str(env, "ROUTER_SLA_AROUND_THE_CLOCK", "P1"),
        )
    except TargetsError as error:
        raise SettingsError(f"ROUTER_SLA_*: {error}") from None
