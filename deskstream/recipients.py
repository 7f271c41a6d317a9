"""How a recipient is named across topics: ``<channel>:<address>``.

`notify.requests` and `notify.receipts` are keyed by it, and so are the consent
records (opt-outs) that intake publishes there: everything about one recipient lands
on one partition, in order, so a STOP is seen before any message requested after it.
"""
from __future__ import annotations

from typing import Mapping


def recipient_key(address: Mapping[str, str]) -> str:
    return f"{address['channel']}:{address['address']}"
