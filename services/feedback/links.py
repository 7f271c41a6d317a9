"""The one-click links of the satisfaction survey mail, and reading them back.

After a ticket is resolved the customer gets a mail with five links, one per score.
Each link carries a token signed with FEEDBACK_SURVEY_SECRET that names the survey,
the ticket, the score and the customer's language, and the time it was issued:

- it cannot be forged or edited: the score is inside the signed part, so changing
  a 2 into a 5 breaks the signature (the customer picks another score by following
  another of the five links, each signed on its own);
- it expires: a link older than `max_age_seconds` is refused, so an old mail found
  in a forwarded thread or a leaked mailbox is worth nothing;
- it is not a replay key by itself: the token is the same every time it is read, so
  single use is kept by whoever records the answer (feedback's facts keep which
  scores' links of the survey were used).

The token is a capability: whoever holds the link may answer that survey with that
score, and nothing else. It carries no personal data beyond the ids, and is compact
(a JSON list rather than an object) so that the mail's links stay short.
"""
from __future__ import annotations

import re
import time
from typing import Any

from itsdangerous import BadPayload, BadSignature, URLSafeTimedSerializer

# A new salt (…v2) is how a change of the payload's shape would retire every link
# signed with the old one, without a second secret.
SALT = "deskstream.feedback.survey-link.v1"
SCORES = range(1, 6)
MAX_TOKEN_CHARS = 1024
MAX_ID_CHARS = 128
MAX_LANGUAGE_CHARS = 35  # the longest sensible BCP 47 tag
# payload.timestamp.signature in URL-safe base64; a leading "." marks a compressed payload.
_TOKEN_SHAPE = re.compile(r"\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class InvalidLink(Exception):
    """A survey token that must not be honoured.

    `reason` is "forged" (the signature does not match: another secret, or an edited
    token), "expired" (ours, but older than the links live) or "malformed" (not the
    shape of a survey token at all, e.g. a link cut short by a mail client).
    `language` is the link's language when the link is known to be ours (only for
    "expired"), so that the page explaining the refusal can be in that language; an
    unverified token's language is never trusted.
    """

    def __init__(self, reason: str, language: str | None = None) -> None:
        super().__init__(f"survey link {reason}")
        self.reason = reason
        self.language = language


class SurveyLinks:
    """Signs survey links and reads them back, checking signature, shape and age."""

    def __init__(self, secret: str, max_age_seconds: float, base_url: str) -> None:
        if not secret:
            raise ValueError("survey links need a signing secret")
        if max_age_seconds <= 0:
            raise ValueError("max_age_seconds must be positive")
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.max_age_seconds = max_age_seconds
        self.base_url = base_url.rstrip("/")

    def url(self, survey_id: str, ticket_id: str, score: int, language: str) -> str:
        """The link for one score of one survey: `{base_url}/survey/{token}`.

        Raises ValueError for arguments no link should carry (a score outside 1..5,
        empty or overlong ids), so that a bad mail is caught when it is written rather
        than when the customer clicks and gets an error page.
        """
        if not _is_score(score):
            raise ValueError(f"a survey score is 1..5, got {score!r}")
        for name, value, limit in (("survey_id", survey_id, MAX_ID_CHARS), ("ticket_id", ticket_id, MAX_ID_CHARS),
                                   ("language", language, MAX_LANGUAGE_CHARS)):
            if not isinstance(value, str) or not value or len(value) > limit:
                raise ValueError(f"{name} must be a non-empty string of at most {limit} characters")
        return f"{self.base_url}/survey/{self.token(survey_id, ticket_id, score, language)}"

    def token(self, survey_id: str, ticket_id: str, score: int, language: str) -> str:
        """The signed token alone (what `url` puts after `/survey/`)."""
        return self._serializer.dumps([survey_id, ticket_id, score, language])

    def read(self, token: str, now: float | None = None) -> dict[str, Any]:
        """What a token says: {"survey_id", "ticket_id", "score", "language", "issued_at"}
        (`issued_at` in seconds since the epoch). Raises InvalidLink.

        `now` (seconds since the epoch) is for tests and replays; by default the clock.
        A token issued "in the future" (another worker's clock a little ahead) is
        accepted: only we can sign, so it is not an attack.
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN_SHAPE.fullmatch(token):
            raise InvalidLink("malformed")
        try:
            value, signed_at = self._serializer.loads(token, max_age=None, return_timestamp=True)
        except BadPayload:  # our signature over something that is not our JSON: an old format
            raise InvalidLink("malformed") from None
        except BadSignature:
            raise InvalidLink("forged") from None
        payload = _payload(value)
        if payload is None:
            raise InvalidLink("malformed")
        payload["issued_at"] = signed_at.timestamp()
        age = (time.time() if now is None else now) - payload["issued_at"]
        if age > self.max_age_seconds:
            raise InvalidLink("expired", language=payload["language"])
        return payload


def _is_score(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in SCORES


def _payload(value: Any) -> dict[str, Any] | None:
    """The signed list as a dict, or None if it is not the shape `token` writes."""
    if not isinstance(value, list) or len(value) != 4:
        return None
    survey_id, ticket_id, score, language = value
    if not all(isinstance(text, str) and text for text in (survey_id, ticket_id, language)) or not _is_score(score):
        return None
    return {"survey_id": survey_id, "ticket_id": ticket_id, "score": score, "language": language}
