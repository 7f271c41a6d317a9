"""Notifier's settings, read once from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from deskstream.settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    service: ServiceSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "NotifierSettings":
        env = os.environ if env is None else env
        return cls(service=ServiceSettings.from_env("notifier", 8082, env))
