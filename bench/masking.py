"""What masking costs intake (issue 12): `masked_contact` on typical contacts, on a
16 KiB body of ordinary text and on a 16 KiB body of digit groups (the worst case the
chat API lets in), each as a ratio of the work the tickets hop does anyway for the same
contact in the same run (`normalise` into ticket events, and the contract's check of the
event it publishes). Logs: a JSON log line with an address and a number, masked, against
the same formatter with its masking replaced by the identity.

    PYTHONPATH=. .venv/bin/python -m bench.masking [--rounds 2000]
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from unittest.mock import patch

from deskstream.contract import default_contract
from deskstream.events import Event, utcnow
from deskstream import logs
from deskstream.logs import JsonFormatter

from services.intake.masking import masked_contact
from services.intake.normaliser import Thread, normalise

TYPICAL = (
    "No tengo internet desde ayer por la tarde, el router parpadea en rojo.",
    "I was charged twice for my subscription this month, card 4242 4242 4242 4242, can you refund one?",
    "Mi contraseña es hunter2 y no me deja entrar, mi DNI es 12345678Z.",
    "The app closes as soon as I open it on my phone, order 12345678901.",
)
ORDINARY_16K = ("El router se reinicia solo cada pocos minutos y pierdo la conexión. " * 300)[:16000]
DIGITS_16K = ("4242 4243 1234 5678 " * 900)[:16000]


def contact(text: str, n: int) -> dict[str, Any]:
    return {"contact_id": f"chat-bench-{n}", "channel": "chat", "thread_key": f"chat:bench-{n}", "received_at": utcnow(),
            "customer": {"id": f"cus-bench{n:012d}", "name": "Marta"}, "subject": None, "body_text": text,
            "reply_to": {"channel": "chat", "address": f"bench-session-{n:08d}"}}


def per_call_us(work: Callable[[int], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(3):  # the best of three: the least disturbed by the machine's other load
        started = time.perf_counter()
        for n in range(rounds):
            work(n)
        best = min(best, time.perf_counter() - started)
    return best / rounds * 1e6


def hop_work(texts: tuple[str, ...]) -> Callable[[int], object]:
    """What the tickets hop does for a contact besides masking: the ticket events, each
    checked against the contract as it is emitted."""
    contract = default_contract()

    def work(n: int) -> object:
        data = contact(texts[n % len(texts)], n)
        for ticket_event in normalise(data, Thread()):
            contract.check(Event(type=ticket_event.type, source="deskstream/intake", id=ticket_event.id,
                                 data=ticket_event.data, subject=ticket_event.ticket_id))
        return data
    return work


def masking_work(texts: tuple[str, ...]) -> Callable[[int], object]:
    return lambda n: masked_contact(contact(texts[n % len(texts)], n))


def log_line_us(rounds: int, mask: bool) -> float:
    """One JSON log line with an address and a number in it, through the services'
    formatter, with its masking (`mask_for_log`) on or replaced by the identity."""
    formatter = JsonFormatter()
    record = logging.LogRecord("services.intake.mailbox", logging.WARNING, __file__, 1,
                               "mail from %s not taken; reply number %s", ("ana.garcia@example.es", "+34 612 345 678"), None)
    record.__dict__.update(uid=4242, folder="INBOX")
    if mask:
        return per_call_us(lambda n: formatter.format(record), rounds)
    with patch.object(logs, "mask_for_log", lambda text: text):
        return per_call_us(lambda n: formatter.format(record), rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    results: dict[str, Any] = {}
    for name, texts, count in (("typical contact", TYPICAL, rounds), ("16 KiB ordinary text", (ORDINARY_16K,), rounds // 10),
                               ("16 KiB of digit groups", (DIGITS_16K,), rounds // 20)):
        baseline = per_call_us(hop_work(texts), count)
        masking = per_call_us(masking_work(texts), count)
        results[name] = {"masking_us": round(masking, 1), "hop_work_us": round(baseline, 1),
                         "masking_over_hop_work": round(masking / baseline, 3)}
    masked_line, plain_line = log_line_us(rounds, True), log_line_us(rounds, False)
    results["log line"] = {"masked_us": round(masked_line, 1), "unmasked_us": round(plain_line, 1),
                           "ratio": round(masked_line / plain_line, 2)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
