"""Sending mail through the configured SMTP server (aiosmtplib).

`SmtpPool.deliver` keeps connections open across messages and makes one attempt
whose result is classified (services.notifier.outcomes) for the outbox, which
retries on its own schedule.
"""
from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import Default

from services.notifier.outcomes import Outcome, brief
from services.notifier.settings import SmtpSettings


class SmtpPoolClosed(RuntimeError):
    """`deliver` was called on a pool that has been closed (the worker is stopping)."""


def _reply(error: aiosmtplib.SMTPResponseException) -> str:
    return f"{error.code} {brief(error.message)}"


def classify_smtp_error(error: Exception, data_started: bool) -> Outcome:
    """An exception from one mail transaction (MAIL, RCPT, DATA) on an open connection,
    as an outcome. `data_started`: the DATA command had been sent when it was raised.

    A reply is the server's decision and says for itself whether the mail was taken:
    4xx (greylisting, a full queue, a rate limit) `retry`; 5xx (no such mailbox,
    refused as spam, too big) `failed`, with the code. Losing the connection or the
    answer is another matter: before DATA nothing of the message was handed over
    (`retry`); after it the server may have queued it and we cannot ask (`in_doubt`).
    aiosmtplib sends DATA and the content in one call, so a connection lost between the
    DATA command and its 354 counts as in doubt too: the safe side of a narrow window.
    A message that cannot be put in an envelope at all (no recipient, an address the
    server cannot take as UTF-8) is `failed`: it will not change."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refusals = error.recipients
        temporary = [r for r in refusals if 400 <= r.code < 500]
        first = (temporary or refusals)[0]
        detail = f"SMTP refused the recipient: {_reply(first)}" + (f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else "")
        return Outcome.retry(detail, first.code) if temporary else Outcome.failed(detail, first.code)
    if isinstance(error, aiosmtplib.SMTPResponseException) and 400 <= error.code < 600:
        stage = {aiosmtplib.SMTPSenderRefused: "the sender", aiosmtplib.SMTPRecipientRefused: "the recipient",
                 aiosmtplib.SMTPDataError: "the message"}.get(type(error), "the command")
        detail = f"SMTP refused {stage}: {_reply(error)}"
        return Outcome.retry(detail, error.code) if error.code < 500 else Outcome.failed(detail, error.code)
    if isinstance(error, (aiosmtplib.SMTPNotSupported, ValueError)):
        return Outcome.failed(f"SMTP cannot send this message: {brief(str(error))}")
    name = type(error).__name__
    if data_started:
        return Outcome.in_doubt(f"SMTP: no answer after the message was sent: {name}")
    return Outcome.retry(f"SMTP: connection lost before the message was sent: {name}")


class _Connection(aiosmtplib.SMTP):
    """An aiosmtplib connection that remembers whether the current transaction got as far
    as DATA, which is where "certainly not sent" ends (see `classify_smtp_error`)."""

    data_started: bool = False
    idle_since: float = 0.0

    async def data(self, message: str | bytes, /, *, timeout: Any = Default.token) -> SMTPResponse:
        self.data_started = True
        return await super().data(message, timeout=timeout)


class SmtpPool:
    """Up to `size` SMTP connections kept open and reused from one message to the next.

    Opening a connection per message (aiosmtplib.send) costs a TCP
    connect, EHLO and, with TLS, a handshake and AUTH every time: that round trip, not
    the server, is what bounds how fast an outage notice reaches a few thousand
    customers. A completed transaction leaves the session ready for the next MAIL (no
    RSET needed), so a connection goes back to the pool after each accepted message.

    A connection that raised is closed, never reused: after an error its state is not
    known (a lost answer, a half-done envelope). A connection the server has closed
    while idle, or idle longer than `max_idle_seconds` (servers drop idle sessions
    after a few minutes, Postfix after 300 s), is replaced by a fresh one before use.

    It has a lifetime (`close`, or `async with`), and its `deliver` reports an
    `Outcome` for the outbox instead of raising. Connections are opened lazily, on the
    running loop.
    """

    def __init__(self, settings: SmtpSettings, size: int = 4, *, max_idle_seconds: float = 60.0) -> None:
        if size < 1:
            raise ValueError("an SMTP pool needs room for at least one connection")
        self.settings = settings
        self.size = size
        self.max_idle_seconds = max_idle_seconds
        self.connections_opened = 0  # over the pool's life; for metrics and tests
        self._slots = asyncio.Semaphore(size)  # one per connection in use; so never more than `size` open
        self._idle: list[_Connection] = []  # most recently used last: the least likely to have timed out
        self._quitting: set[asyncio.Task[None]] = set()
        self._closed = False

    async def __aenter__(self) -> "SmtpPool":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def deliver(self, message: EmailMessage) -> Outcome:
        """Hand `message` to the server once, on a pooled connection, and classify it.

        Opening the connection failing in any way (refused, timed out, a 4xx/5xx
        greeting, EHLO, STARTTLS or AUTH refused) is `retry`: nothing was handed over,
        and none of it is the message's fault. Then `classify_smtp_error` decides. An
        accepted message is `sent`, with its Message-ID as the provider's id (the
        server's own queue id is only in its free-text answer)."""
        if self._closed:
            raise SmtpPoolClosed("the SMTP pool is closed")
        async with self._slots:
            connection = self._take_idle()
            if connection is None:
                try:
                    connection = await self._open()
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
                    return Outcome.retry(f"SMTP server unavailable: {self._why(error)}")
            connection.data_started = False
            try:
                errors, answer = await connection.send_message(message)
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, ValueError) as error:
                self._drop(connection)
                return classify_smtp_error(error, connection.data_started)
            except BaseException:  # cancelled mid-transaction: its state is unknown
                connection.close()
                raise
            self._put_idle(connection)
        message_id = message["Message-ID"]
        refused = f" (refused for {len(errors)} recipient(s))" if errors else ""
        return Outcome.sent(f"SMTP accepted {message_id}: {brief(answer, 100)}{refused}", message_id)

    async def close(self) -> None:
        """Say goodbye (QUIT) on the idle connections; connections in use are closed
        when their message is done. `deliver` refuses from now on."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(connection) for connection in idle), *self._quitting)

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.is_connected and now - connection.idle_since <= self.max_idle_seconds:
                return connection
            self._drop(connection)
        return None

    def _put_idle(self, connection: _Connection) -> None:
        if self._closed or not connection.is_connected:
            self._drop(connection)
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    def _drop(self, connection: _Connection) -> None:
        """Let go of a connection without waiting: QUIT in the background if it is still open."""
        if not connection.is_connected:
            connection.close()
            return
        task = asyncio.ensure_future(self._quit(connection))
        self._quitting.add(task)
        task.add_done_callback(self._quitting.discard)

    async def _open(self) -> _Connection:
        s = self.settings
        connection = _Connection(
            hostname=s.host,
            port=s.port,
            use_tls=s.tls,
            start_tls=s.starttls if not s.tls else False,
            username=s.user or None,
            password=s.password or None,
            timeout=s.timeout_seconds,
        )
        await connection.connect()
        self.connections_opened += 1
        return connection

    async def _quit(self, connection: _Connection) -> None:
        try:
            await connection.quit()
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            pass
        finally:
            connection.close()

    @staticmethod
    def _why(error: BaseException) -> str:
        if isinstance(error, aiosmtplib.SMTPResponseException):
            return f"{type(error).__name__}: {_reply(error)}"
        return f"{type(error).__name__}: {brief(str(error), 120)}"
