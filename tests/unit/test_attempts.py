"""The life of a requested message in the outbox: claimed once, retried with backoff,
settled once."""
from __future__ import annotations

from datetime import datetime, timezone

from services.notifier import attempts
from services.notifier.attempts import RetryPolicy
from services.notifier.outcomes import Outcome

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
POLICY = RetryPolicy(max_attempts=3, backoff_seconds=2.0, max_backoff_seconds=5.0)
REQUEST = {"request_id": "T-AAAAAAAA.ack"}


def test_a_claim_counts_an_attempt_and_is_no_longer_pending():
    record = attempts.claimed(attempts.pending(REQUEST, None), NOW, "c1")
    assert attempts.is_claimed(record) and not attempts.is_pending(record)
    assert record["attempts"] == 1 and record["claimed_at"] == "2026-12-02T10:00:00.000Z"


def test_a_temporary_failure_is_pending_again_after_a_doubling_backoff_until_the_attempts_run_out():
    record = attempts.claimed(attempts.pending(REQUEST, None), NOW, "c1")
    after, status, _ = attempts.finished(record, Outcome("retry", "Twilio 429"), NOW, POLICY)
    assert status is None and attempts.not_before(after) == datetime(2026, 12, 2, 10, 0, 2, tzinfo=timezone.utc)
    after, status, _ = attempts.finished(attempts.claimed(after, NOW, "c2"), Outcome("retry", "Twilio 429"), NOW, POLICY)
    assert status is None and attempts.not_before(after) == datetime(2026, 12, 2, 10, 0, 4, tzinfo=timezone.utc)
    after, status, detail = attempts.finished(attempts.claimed(after, NOW, "c2"), Outcome("retry", "Twilio 429"), NOW, POLICY)
    assert (after["state"], status) == ("failed", "failed") and "gave up after 3 attempts" in detail
    assert "request" not in after  # a settled record keeps only its state


def test_the_backoff_is_capped():
    assert [POLICY.backoff(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 5.0, 5.0]


def test_sent_failed_and_in_doubt_are_final_and_remembered():
    for status in ("sent", "failed", "in_doubt"):
        record = attempts.claimed(attempts.pending(REQUEST, None), NOW, "c1")
        after, receipt, detail = attempts.finished(record, Outcome(status, "detail"), NOW, POLICY)
        assert (after["state"], receipt) == (status, status)
        assert detail == {"sent": "detail (attempt 1)", "failed": "detail (permanent, attempt 1)", "in_doubt": "detail"}[status]
        assert attempts.known(after) and not attempts.is_pending(after) and not attempts.is_claimed(after)


def test_a_claim_whose_send_never_started_is_pending_again_without_counting():
    record = attempts.unclaimed(attempts.claimed(attempts.pending(REQUEST, None), NOW, "c1"))
    assert attempts.is_pending(record) and record["attempts"] == 0


def test_a_record_of_the_older_notifier_counts_as_seen():
    assert attempts.known({"status": "sent"}) and not attempts.known(None)
