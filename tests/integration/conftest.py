"""Fixtures for the integration tests only.

The session-wide `dovecot` (the support mailbox) and `smtp_server` live in
tests/conftest.py, because `pipeline_services` there needs them. A test that checks
what was sent, and nothing else, takes `smtp_capture` instead: its own SMTP server,
so it sees only its own mail.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.mailserver import SmtpCapture


@pytest.fixture
def smtp_capture() -> Iterator[SmtpCapture]:
    with SmtpCapture() as server:
        yield server
