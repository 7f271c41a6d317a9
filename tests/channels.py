"""Customers writing to support through deskstream's real entry points, and the four
services wired to the far ends of every channel on loopback.

Shared by the load benchmark (bench/load.py) and the chaos run through the entry points
(tests/delivery/contact_chaos.py): a chat customer opens a session and posts to the chat
API, an SMS arrives as Twilio's signed webhook, an e-mail is appended to the Dovecot
mailbox intake reads. Each call is one attempt; what an attempt that failed means (count
it, or retry it with the same ids as a real client would) is the caller's business.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aioimaplib
import orjson

from tests.harness import service_env
from tests.mailserver import Dovecot, SmtpCapture
from tests.twilio_api import SUPPORT_NUMBER, TwilioApi, inbound_sms, sign

SUPPORT_ADDRESS = "soporte@deskstream.test"
ROOT = Path(__file__).resolve().parent.parent


class Refused(Exception):
    """An entry point did not take the contact (its status, or what went wrong)."""

    def __init__(self, channel: str, status: int | str) -> None:
        super().__init__(f"{channel} {status}")
        self.channel = channel
        self.status = status


@dataclass(frozen=True)
class ChatSession:
    session_id: str
    token: str


def roomy_roster(folder: Path, source: Path = ROOT / "services" / "router" / "roster.json") -> Path:
    """`source` with room for every ticket of a long run, so that each ticket is assigned
    exactly once and at once (the agents' queues are the router's tests' business)."""
    roster = json.loads(source.read_text())
    for agent in roster["agents"]:
        agent["max_concurrent"] = 1_000_000
    path = folder / "roster.json"
    path.write_text(json.dumps(roster))
    return path


def channel_env(bootstrap: str, work: Path, dovecot: Dovecot, smtp: SmtpCapture, twilio: TwilioApi,
                **extra: str) -> dict[str, str]:
    """The four services' environment with every channel's far end on loopback: the
    mailbox on Dovecot, mail out to `smtp` (with the archive's Bcc when `smtp` files
    one, and the archive searched after a crash), SMS out to the Twilio stand-in; no
    quiet hours and no rate limits, so every acknowledgement goes at once."""
    if smtp.archive is not None:
        archive = smtp.archive
        extra = {"SMTP_ARCHIVE_BCC": archive.address, "SENT_MAIL_IMAP_HOST": archive.dovecot.host,
                 "SENT_MAIL_IMAP_PORT": str(archive.dovecot.port), "SENT_MAIL_IMAP_SSL": "false",
                 "SENT_MAIL_IMAP_USER": archive.dovecot.user, "SENT_MAIL_IMAP_PASSWORD": archive.dovecot.password,
                 "SENT_MAIL_IMAP_MAILBOX": archive.folder, "SENT_MAIL_ARRIVAL_SECONDS": "1", **extra}
    env = service_env(
        bootstrap, work, LOG_LEVEL="warning", ROUTER_ROSTER_PATH=str(roomy_roster(work)),
        IMAP_HOST=dovecot.host, IMAP_PORT=str(dovecot.port), IMAP_SSL="false", IMAP_USER=dovecot.user,
        IMAP_PASSWORD=dovecot.password, MAIL_OWN_ADDRESSES=SUPPORT_ADDRESS,
        SMTP_HOST=smtp.host, SMTP_PORT=str(smtp.port), SMTP_STARTTLS="false", MAIL_FROM=SUPPORT_ADDRESS,
        TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token, TWILIO_SMS_FROM=SUPPORT_NUMBER,
        TWILIO_API_URL=twilio.url, NOTIFIER_QUIET_HOURS="off", NOTIFIER_RATES="off", **extra,
    )
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['INTAKE_HTTP_PORT']}"
    env["NOTIFIER_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['NOTIFIER_HTTP_PORT']}"
    return env


class Customers:
    """The customers' side of every channel, one attempt a call:

        async with Customers(intake_url, dovecot) as customers:
            session = await customers.open_chat()
            await customers.chat(session, "Hola", client_message_id="m1")
    """

    def __init__(self, intake_url: str, dovecot: Dovecot) -> None:
        self.intake_url = intake_url
        self.dovecot = dovecot
        self.http: aiohttp.ClientSession | None = None
        self._imap: aioimaplib.IMAP4 | None = None
        self._imap_lock = asyncio.Lock()  # one APPEND at a time on the one connection

    async def start(self) -> "Customers":
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                          timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def stop(self) -> None:
        if self._imap is not None:
            try:
                await self._imap.logout()
            except Exception:  # noqa: BLE001 - the connection may already be gone
                pass
        if self.http is not None:
            await self.http.close()

    async def __aenter__(self) -> "Customers":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def open_chat(self) -> ChatSession:
        """What the chat page does before its first message."""
        assert self.http is not None
        async with self.http.post(f"{self.intake_url}/api/chat/sessions") as response:
            if response.status != 201:
                raise Refused("chat session", response.status)
            answer = await response.json()
        return ChatSession(answer["session_id"], answer["session_token"])

    async def chat(self, session: ChatSession, text: str, client_message_id: str, name: str = "Cliente") -> None:
        assert self.http is not None
        body = {"session_id": session.session_id, "client_message_id": client_message_id, "text": text,
                "customer": {"name": name, "language": "es"}}
        async with self.http.post(f"{self.intake_url}/api/chat/messages", json=body,
                                  headers={"Authorization": f"Bearer {session.token}"}) as response:
            await response.read()
            if response.status != 202:
                raise Refused("chat", response.status)

    async def chat_messages(self, session: ChatSession, quiet: float = 1.0) -> list[dict[str, Any]]:
        """Everything the session's page is sent, from the first message: read until
        nothing more comes for `quiet` seconds."""
        assert self.http is not None
        url = f"{self.intake_url}/api/chat/sessions/{session.session_id}/ws?token={session.token}&after=0"
        received = []
        async with self.http.ws_connect(url) as socket:
            while True:
                try:
                    frame = await socket.receive(timeout=quiet)
                except asyncio.TimeoutError:
                    return received
                if frame.type != aiohttp.WSMsgType.TEXT:
                    return received
                received.append(orjson.loads(frame.data))

    async def first_chat_message(self, session: ChatSession) -> float:
        """Wait for the session's first message (the acknowledgement); when it came (epoch s)."""
        assert self.http is not None
        url = f"{self.intake_url}/api/chat/sessions/{session.session_id}/ws?token={session.token}"
        async with self.http.ws_connect(url) as socket:
            async for frame in socket:
                if frame.type == aiohttp.WSMsgType.TEXT and orjson.loads(frame.data).get("type") == "message":
                    return time.time()
        raise Refused("chat page", "closed before any message")

    async def sms(self, sender: str, text: str, sid: str | None = None) -> None:
        """Twilio's webhook for one inbound SMS; the same `sid` repeats the same message."""
        assert self.http is not None
        url = f"{self.intake_url}/webhooks/twilio/sms"
        form = inbound_sms(sender=sender, body=text, sid=sid)
        async with self.http.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form)}) as response:
            await response.read()
            if response.status != 200:
                raise Refused("sms", response.status)

    async def email(self, address: str, text: str, message_id: str, subject: str = "Problema con mi servicio") -> None:
        """A mail from `address`, appended to the support mailbox."""
        mail = EmailMessage()
        mail["From"] = f"Cliente <{address}>"
        mail["To"] = SUPPORT_ADDRESS
        mail["Subject"] = subject
        mail["Message-ID"] = message_id
        mail.set_content(text)
        async with self._imap_lock:
            if self._imap is None:
                imap = aioimaplib.IMAP4(self.dovecot.host, self.dovecot.port, timeout=30)
                await imap.wait_hello_from_server()
                await imap.login(self.dovecot.user, self.dovecot.password)
                self._imap = imap
            response = await self._imap.append(mail.as_bytes(), mailbox="INBOX")
        if response.result != "OK":
            raise Refused("email", response.result)
