"""Feedback's settings, read once from the environment."""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import Mapping

from deskstream.settings import ServiceSettings, SettingsError, env_float, env_secret, env_str

from services.feedback.surveys import SurveyRules

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedbackSettings:
    service: ServiceSettings
    surveys: SurveyRules
    link_secret: str = field(repr=False)  # signs the survey links sent by e-mail
    link_secret_is_random: bool  # none was set: links sent before a restart stop working
    public_base_url: str  # where customers reach the survey pages (links in the mail)
    low_score_action: str  # a score of 1 or 2: "reopen" the ticket, or add a "note" for supervisors

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "FeedbackSettings":
        env = os.environ if env is None else env
        service = ServiceSettings.from_env("feedback", 8083, env)
        base = env_str(env, "FEEDBACK_PUBLIC_BASE_URL", f"http://127.0.0.1:{service.http_port}").rstrip("/")
        if not base.startswith(("https://", "http://")):
            raise SettingsError("FEEDBACK_PUBLIC_BASE_URL must be the URL customers open survey links on")
        secret = env_secret(env, "FEEDBACK_SURVEY_SECRET")
        low_score_action = env_str(env, "FEEDBACK_LOW_SCORE_ACTION", "reopen")
        if low_score_action not in ("reopen", "note"):
            raise SettingsError("FEEDBACK_LOW_SCORE_ACTION must be reopen or note")
        return cls(
            service=service,
            surveys=SurveyRules(
                delay_seconds=env_float(env, "FEEDBACK_SURVEY_DELAY_SECONDS", 3600.0),
                fatigue_days=env_float(env, "FEEDBACK_SURVEY_FATIGUE_DAYS", 30.0),
                answer_window_hours=env_float(env, "FEEDBACK_SURVEY_WINDOW_HOURS", 72.0),
            ),
            link_secret=secret or secrets.token_hex(32),
            link_secret_is_random=secret is None,
            public_base_url=base,
            low_score_action=low_score_action,
        )
