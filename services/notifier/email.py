"""A requested message as an e-mail: a proper threaded reply to the customer's mail.

It answers the customer's message (In-Reply-To, References), names its ticket twice
(the subject tag and the Message-ID, deskstream.mailthread) so that the reply finds
its way back, says it is automatic (RFC 3834 `Auto-Submitted`, so that
out-of-office robots do not answer it), and has a plain-text and an HTML part.
"""
from __future__ import annotations

import html
from email.message import EmailMessage
from email.utils import formataddr, format_datetime
from datetime import datetime, timezone
from typing import Any

from deskstream.mailthread import message_id, reply_subject

from services.notifier.templates import subject


def html_part(text: str) -> str:
    """The text as HTML: escaped (customer-supplied names are in it), one paragraph per line."""
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())
    return f"<!doctype html><html><body>{paragraphs}</body></html>"


def compose(request: dict[str, Any], text: str, *, from_address: str, from_name: str, domain: str,
            now: datetime | None = None) -> EmailMessage:
    thread = request["params"].get("thread") or {}
    ticket_id = request.get("ticket_id")
    answered = thread.get("message_id")
    message = EmailMessage()
    message["From"] = formataddr((from_name, from_address))
    message["To"] = request["recipient"]["address"]
    if ticket_id and request["reason"] == "survey":  # not in the thread: its own subject, still tagged
        message["Subject"] = subject("survey", request["language"], request["params"])
        message["Message-ID"] = message_id(ticket_id, request["request_id"], domain)
    elif ticket_id:
        message["Subject"] = reply_subject(thread.get("subject"), ticket_id)
        message["Message-ID"] = message_id(ticket_id, request["request_id"], domain)
    else:  # a notice to a subscriber: about an incident, in no ticket's thread
        message["Subject"] = subject(request["reason"], request["language"], request["params"])
        message["Message-ID"] = message_id(request["incident_id"], request["request_id"], domain)
    message["Date"] = format_datetime(now or datetime.now(timezone.utc))
    if answered:
        message["In-Reply-To"] = f"<{answered}>"
        chain = [*thread.get("references", []), answered]
        kept = chain if len(chain) <= 20 else [chain[0], *chain[-19:]]  # the root threads the reply
        message["References"] = " ".join(f"<{ref}>" for ref in kept)
    message["Auto-Submitted"] = {"acknowledgement": "auto-replied", "incident": "auto-generated"}.get(request["reason"], "no")
    if ticket_id:
        message["X-Deskstream-Ticket"] = ticket_id
    if request.get("incident_id"):
        message["X-Deskstream-Incident"] = request["incident_id"]
    message["Content-Language"] = request["language"]
    message.set_content(text)
    message.add_alternative(html_part(text), subtype="html")
    return message
