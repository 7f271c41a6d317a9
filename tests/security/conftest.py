"""The attack suite (issue 12, docs/SECURITY.md): each test plays an attacker against
the real services over loopback and requires a precise refusal, a dead letter with its
reason, or nothing readable left behind.

The session-wide fixtures (`kafka`, `topics`, `dovecot`, `smtp_server`, `twilio_api`,
`pipeline_services`) come from tests/conftest.py. A test that floods an entry point
runs its own intake with low limits, so that the shared services stay usable.
"""
