"""The support figures as Prometheus reads them."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from services.feedback.exported import SupportFigures


def test_csat_and_times_are_exported_per_channel_skill_and_priority():
    facts = [
        {"ticket_id": "T-AAAAAAAA", "channel": "sms", "created_at": "2026-12-02T09:00:00.000Z", "skill": "network",
         "priority": "P2", "first_reply_at": "2026-12-02T09:05:00.000Z",
         "survey": {"survey_id": "S-aaaaaaaaaaaa", "sent_at": "2026-12-02T10:00:00.000Z", "score": 5}},
        {"ticket_id": "T-BBBBBBBB", "channel": "sms", "created_at": "2026-12-02T09:00:00.000Z", "skill": "network",
         "priority": "P2", "survey": {"survey_id": "S-bbbbbbbbbbbb", "sent_at": "2026-12-02T10:00:00.000Z", "score": 2}},
    ]
    registry = CollectorRegistry()
    registry.register(SupportFigures(lambda: facts))
    text = generate_latest(registry).decode()
    assert 'deskstream_csat_ratio{by="channel",value="sms"} 0.5' in text
    assert 'deskstream_surveys_sent{by="skill",value="network"} 2.0' in text
    assert 'deskstream_first_response_median_seconds{by="priority",value="P2"} 300.0' in text
    assert "deskstream_resolution_median_seconds{" not in text  # nothing resolved: no figure rather than a zero
