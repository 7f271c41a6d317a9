"""Who a customer is, across channels: the same e-mail address (or phone number) is
the same customer whether they write by chat, e-mail or SMS. Shared: intake derives
the ids, and every service derives the same ones to match an erasure to its rows
(deskstream/erasure.py)."""
from __future__ import annotations

from deskstream.events import stable_id


def customer_id(*, email: str | None = None, phone: str | None = None, fallback: str) -> str:
    """`cus-` and an id derived from the strongest identity known: the e-mail address,
    else the phone number, else `fallback` (a chat session, which is all we know)."""
    if email:
        return "cus-" + stable_id("email", email.strip().lower(), length=16)
    if phone:
        return "cus-" + stable_id("phone", phone.strip(), length=16)
    return "cus-" + stable_id("chat", fallback, length=16)
