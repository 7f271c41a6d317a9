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
