"""Log lines are JSON objects, and customer text is only ever logged redacted."""
import json
import logging

from deskstream.logs import JsonFormatter, ServiceFilter, redact


def test_a_record_becomes_one_json_object_with_its_extras():
    record = logging.makeLogRecord({"name": "x", "levelname": "WARNING", "msg": "dead-lettered %s", "args": ("input",), "origin": "intake.raw"})
    ServiceFilter("intake").filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "dead-lettered input"
    assert (line["level"], line["origin"], line["service"]) == ("warning", "intake.raw", "intake")


def test_redaction_keeps_size_and_a_short_hash_only():
    shown = redact("mi contraseña es hunter2")
    assert "hunter2" not in shown and shown.startswith("<25 bytes sha256:")


def test_addresses_numbers_and_card_digits_are_masked_in_the_message_every_extra_and_the_traceback():
    try:
        raise ValueError("no mailbox for ana.garcia@example.com")
    except ValueError:
        import sys
        exc_info = sys.exc_info()
    record = logging.makeLogRecord({
        "name": "x", "levelname": "ERROR", "msg": "send to %s failed", "args": ("whatsapp:+34600111222",),
        "exc_info": exc_info, "recipient": {"channel": "email", "address": "ana.garcia@example.com"},
        "numbers": ["+34 612 345 678", 42], "error": ValueError("paid with 4242 4242 4242 4242"),
    })
    text = JsonFormatter().format(record)
    line = json.loads(text)
    for clear in ("ana.garcia@", "600111222", "612 345 678", "4242 4242"):
        assert clear not in text, clear
    assert line["msg"] == "send to whatsapp:+34******222 failed"
    assert line["recipient"] == {"channel": "email", "address": "a***@example.com"}
    assert line["numbers"] == ["+34******678", 42]
    assert line["error"] == "paid with [card ····4242]"
    assert "a***@example.com" in line["exc"]
