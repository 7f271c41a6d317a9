"""Intake's settings, read once from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from deskstream.settings import ServiceSettings, SettingsError, env_list, env_str


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    service: ServiceSettings
    chat_session_secret: bytes
    allowed_origins: tuple[str, ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "IntakeSettings":
        env = os.environ if env is None else env
        secret = env_str(env, "CHAT_SESSION_SECRET", "")
        if len(secret) < 32:
            raise SettingsError("CHAT_SESSION_SECRET must be set to at least 32 characters (make run writes one)")
        return cls(
            service=ServiceSettings.from_env("intake", 8080, env),
            chat_session_secret=secret.encode(),
            allowed_origins=env_list(env, "CHAT_ALLOWED_ORIGINS"),
        )
