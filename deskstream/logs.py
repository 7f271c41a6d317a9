"""JSON log lines, one object per line, for every service.

Customer text never goes into a log: log ids, sizes and hashes (see `redact`). And
whatever a line still carries (an error's text, a thread key, a provider's answer) has
its e-mail addresses, phone numbers, card numbers, national ids and written passwords
masked by the formatter (deskstream.sensitive), in the message, every extra field and
the traceback alike.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Any

import orjson

from deskstream.sensitive import mask_for_log

_STANDARD = frozenset(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON; `extra={...}` fields become top-level keys. Every text
    in it is masked (`masked`): the formatter is the one place every line passes."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_for_log(record.getMessage()),
        }
        line.update((key, masked(value)) for key, value in vars(record).items() if key not in _STANDARD)
        if record.exc_info:
            line["exc"] = mask_for_log(self.formatException(record.exc_info))
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def masked(value: Any) -> Any:
    """A log field with every text in it masked; values that are not JSON's own types are
    logged as their masked str (an exception, a path, a dataclass)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return mask_for_log(value)
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [masked(item) for item in value]
    return mask_for_log(str(value))


def logging_config(level: str, service: str) -> dict[str, Any]:
    """A dictConfig for Faust's `logging_config` setting."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "deskstream.logs.JsonFormatter"}},
        "filters": {
            "service": {"()": "deskstream.logs.ServiceFilter", "service": service},
            "verification_retries": {"()": "deskstream.logs.VerificationRetryFilter"},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["service"]},
        },
        "loggers": {
            "aiokafka.producer.sender": {"filters": ["verification_retries"]},
            # aioimaplib's DEBUG and INFO lines are the raw IMAP conversation: the mail it
            # fetches (customers' text) and the LOGIN command, whose password it masks
            # only as written, not once quoted (a password with " or \ shows). Never logged.
            "aioimaplib": {"level": "WARNING"},
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


class VerificationRetryFilter(logging.Filter):
    """Keeps the broker's routine transaction-verification retries out of the logs.

    Since Kafka 3.6 a broker checks that a transactional record's partition is in the
    transaction (KIP-890); while the previous transaction's markers are still being
    written it answers CONCURRENT_TRANSACTIONS, which it reports to clients of
    aiokafka's produce version as NOT_ENOUGH_REPLICAS, a retriable error (KAFKA-14561).
    aiokafka retries and logs a warning each time: several per transaction, all
    expected. They are shown at DEBUG level only; a real shortage of in-sync replicas
    still shows, as transactions that time out and are logged by the processor.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "NotEnoughReplicasError" in record.getMessage():
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


class ServiceFilter(logging.Filter):
    """Stamps every record with the service name, so merged logs stay readable."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        return True


def redact(text: str | bytes) -> str:
    """What may be logged of customer content: its size and a short hash."""
    raw = text.encode() if isinstance(text, str) else text
    return f"<{len(raw)} bytes sha256:{hashlib.sha256(raw).hexdigest()[:12]}>"
