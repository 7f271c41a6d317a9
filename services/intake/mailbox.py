"""The support mailbox, read over IMAP (aioimaplib): every message in, none twice.

The mailbox itself records what has been taken: a message is flagged with the
keyword `$DeskstreamTaken` (or moved to the taken folder) only after Kafka has
acknowledged its `contact.received`. A crash before that leaves it untaken, so it is
read again; its event id derives from its Message-ID (or its bytes), so reading it
twice makes no second ticket. UIDs only say where to look: when UIDVALIDITY changes
the mailbox is searched from the start, and the flags still tell what was taken.

New mail is awaited with IDLE, or by polling where the server has no IDLE; a
dropped connection is reopened with growing backoff. A message that cannot be
parsed, or whose publication fails `max_attempts` times, goes to the quarantine
folder with its reason in `deadletter`, so it never blocks the mail behind it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
from pathlib import Path
from typing import Any

import aioimaplib
from mode import Service

from deskstream.events import Event, utcnow
from deskstream.pipeline import Pipeline, deadletter_event
from deskstream.topics import DEADLETTER, INTAKE_RAW

from services.intake.attachments import AttachmentStore
from services.intake.email_contacts import MailOutcome, read_mail
from services.intake.masking import as_published
from services.intake.senders import MailSenders
from services.intake.settings import MailboxSettings

log = logging.getLogger(__name__)

TAKEN_KEYWORD = "$DeskstreamTaken"
MAX_BACKOFF_SECONDS = 30.0
# What of an unusable message goes into its dead letter; the whole of it stays in
# the quarantine folder (a 20 MB message would not fit in a Kafka record).
DEADLETTER_KEEP_BYTES = 256 * 1024
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_FETCHED_UID = re.compile(rb"FETCH \(.*\bUID (\d+)")
# Messages fetched, published (concurrently) and marked taken together.
BATCH = 50


class MailboxError(RuntimeError):
    """The IMAP server refused a command deskstream needs."""


def _ok(response: Any, what: str) -> Any:
    if response.result != "OK":
        raise MailboxError(f"{what}: {response.result} {response.lines[-1:]!r}")
    return response


class MailboxIntake(Service):
    """Takes every message of one IMAP folder into `intake.raw`."""

    def __init__(self, settings: MailboxSettings, pipeline: Pipeline, attachments: AttachmentStore,
                 keep_original_text: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.keep_original_text = keep_original_text  # INTAKE_KEEP_ORIGINAL_TEXT (services/intake/masking.py)
        self.pipeline = pipeline
        self.attachments = attachments
        self.origin = f"imap:{settings.folder}"
        self._uidvalidity: int | None = None
        self._attempts: dict[int, int] = {}
        self.senders = MailSenders(settings.sender_limit)  # one sender's flood, quarantined past the limit
        self.connected = False

    async def on_start(self) -> None:
        self.add_future(self._keep_reading())

    async def _keep_reading(self) -> None:
        backoff = 1.0
        while not self.should_stop:
            try:
                await self._session()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the server or the network dropped: reconnect, later
                self.connected = False
                log.warning("mailbox session ended; reconnecting", extra={"error": repr(error)[:300], "in_s": backoff})
                await self.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _connect(self) -> aioimaplib.IMAP4:
        s = self.settings
        if s.ssl:
            imap = aioimaplib.IMAP4_SSL(host=s.host, port=s.port, ssl_context=ssl.create_default_context())
        else:
            imap = aioimaplib.IMAP4(host=s.host, port=s.port)
        await imap.wait_hello_from_server()
        _ok(await imap.login(s.user, s.password), "LOGIN")
        await imap.protocol.capability()  # many servers list MOVE and IDLE only after login
        if s.taken == "move":
            await imap.create(s.taken_folder)  # "already exists" is fine
        await imap.create(s.quarantine_folder)
        selected = _ok(await imap.select(s.folder), f"SELECT {s.folder}")
        validity = next((int(m.group(1)) for line in selected.lines if (m := _UIDVALIDITY.search(bytes(line)))), None)
        if validity != self._uidvalidity:
            if self._uidvalidity is not None:
                log.warning("UIDVALIDITY changed; searching the whole folder", extra={"folder": s.folder})
            self._uidvalidity = validity
            self._attempts.clear()
        return imap

    async def _session(self) -> None:
        imap = await self._connect()
        self.connected = True
        log.info("mailbox connected", extra={"host": self.settings.host, "folder": self.settings.folder})
        try:
            while not self.should_stop:
                await self._take_pending(imap)
                await self._wait_for_mail(imap)
        finally:
            self.connected = False
            try:
                await asyncio.wait_for(imap.logout(), 2)
            except Exception:  # nosec B110  # a courtesy logout on a connection being dropped anyway
                pass

    async def _wait_for_mail(self, imap: aioimaplib.IMAP4) -> None:
        if not imap.has_capability("IDLE"):
            await self.sleep(self.settings.poll_seconds)
            return
        idle = await imap.idle_start(timeout=self.settings.poll_seconds)
        try:
            while not self.should_stop:
                pushed = await imap.wait_server_push(timeout=self.settings.poll_seconds + 5)
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH or any(b"EXISTS" in bytes(line) for line in pushed):
                    break
        except asyncio.TimeoutError:
            pass
        finally:
            imap.idle_done()
            await asyncio.wait_for(idle, 10)

    async def _take_pending(self, imap: aioimaplib.IMAP4) -> None:
        criteria = "ALL" if self.settings.taken == "move" else f"UNKEYWORD {TAKEN_KEYWORD}"
        found = _ok(await imap.uid_search(criteria), "UID SEARCH")
        uids = sorted(int(uid) for line in found.lines[:-1] for uid in bytes(line).split() if uid.isdigit())
        for start in range(0, len(uids), BATCH):
            if self.should_stop:
                return
            await self._take(imap, uids[start:start + BATCH])

    async def _fetch(self, imap: aioimaplib.IMAP4, uids: list[int]) -> dict[int, bytes]:
        """The raw bytes of these messages (one UID FETCH), by UID."""
        fetched = _ok(await imap.uid("fetch", ",".join(map(str, uids)), "(UID BODY.PEEK[])"), "UID FETCH")
        messages: dict[int, bytes] = {}
        uid: int | None = None
        for line in fetched.lines:
            if isinstance(line, bytearray):
                if uid is not None:
                    messages[uid] = bytes(line)
                uid = None
            elif (m := _FETCHED_UID.search(bytes(line))) is not None:
                uid = int(m.group(1))
        return messages

    async def _take(self, imap: aioimaplib.IMAP4, uids: list[int]) -> None:
        """Take a batch: publish every contact (concurrently, each acknowledged), then
        mark the published and the noise as taken in one command."""
        raws = await self._fetch(imap, uids)
        self._crash_point("after-fetch")
        received_at = utcnow()
        taken: list[int] = []
        publishing: dict[int, MailOutcome] = {}
        for uid, raw in raws.items():
            outcome = await asyncio.to_thread(read_mail, raw, self.settings.own_addresses, received_at)
            if outcome.unusable is not None:
                await self._quarantine(imap, uid, outcome.unusable, raw)
            elif outcome.noise is not None:
                self.pipeline.metrics.failed(f"mail {outcome.noise}")
                log.info("mail taken without a ticket", extra={"uid": uid, "noise": outcome.noise})
                taken.append(uid)
            elif uid not in self._attempts and (over := self.senders.over(outcome.contact["customer"]["email"])):
                await self._quarantine(imap, uid, over, raw)  # a retried publication was counted the first time
            else:
                publishing[uid] = outcome
        results = await asyncio.gather(*(self._publish(o) for o in publishing.values()), return_exceptions=True)
        for uid, result in zip(publishing, results):
            if not isinstance(result, BaseException):
                taken.append(uid)
                self._attempts.pop(uid, None)
                continue
            attempts = self._attempts[uid] = self._attempts.get(uid, 0) + 1
            log.warning("mail not published", extra={"uid": uid, "attempt": attempts, "error": repr(result)[:300]})
            if attempts >= self.settings.max_attempts:
                await self._quarantine(imap, uid, f"not published after {attempts} attempts: {type(result).__name__}", raws[uid])
        if taken:
            self._crash_point("after-publish")
            await self._mark_taken(imap, sorted(taken))

    def _crash_point(self, name: str) -> None:
        """For the crash tests: die here, once (the marker file remembers), as a
        power cut would: no cleanup, no flush."""
        s = self.settings
        if s.crash_at == name and s.crash_marker and not Path(s.crash_marker).exists():
            Path(s.crash_marker).write_text(name)
            log.warning("crash test: dying %s", name)
            os._exit(137)

    async def _publish(self, outcome: MailOutcome) -> None:
        for attachment in outcome.attachments:
            await asyncio.to_thread(self.attachments.put, attachment.sha256, attachment.content)
        assert outcome.contact is not None
        data = as_published(outcome.contact, self.keep_original_text)
        event = self.pipeline.event("contact.received", data["contact_id"], data, data["thread_key"])
        await self.pipeline.publish(INTAKE_RAW, data["thread_key"], event)

    async def _mark_taken(self, imap: aioimaplib.IMAP4, uids: list[int]) -> None:
        uid_set = ",".join(map(str, uids))
        if self.settings.taken == "move":
            _ok(await imap.uid("move", uid_set, self.settings.taken_folder), "UID MOVE")
        else:
            _ok(await imap.uid("store", uid_set, "+FLAGS", f"({TAKEN_KEYWORD})"), "UID STORE")

    async def _quarantine(self, imap: aioimaplib.IMAP4, uid: int, reason: str, raw: bytes) -> None:
        """Dead-letter first (if Kafka is down, the message stays where it is and is
        tried again later), then move the message out of the way. A message too big for
        a record keeps its start in the dead letter, whose reason says so: its size and
        digest are of the bytes it holds, not of the message."""
        if len(raw) > DEADLETTER_KEEP_BYTES:
            reason += (f" (the first {DEADLETTER_KEEP_BYTES} of its {len(raw)} bytes are kept here;"
                       f" the whole message is in {self.settings.quarantine_folder})")
        event: Event = deadletter_event(self.pipeline.source, self.origin, reason, raw[:DEADLETTER_KEEP_BYTES])
        await self.pipeline.publish(DEADLETTER, self.origin, event)
        self.pipeline.metrics.failed(reason.split(":", 1)[0][:60])
        log.warning("mail quarantined", extra={"uid": uid, "reason": reason[:200], "dl_id": event.id})
        _ok(await imap.uid("move", str(uid), self.settings.quarantine_folder), "UID MOVE")
        self._attempts.pop(uid, None)
