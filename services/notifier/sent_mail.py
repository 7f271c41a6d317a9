"""The mailbox that keeps a copy of every mail sent, asked after a crash whether a mail
went out.

An SMTP server cannot be asked whether it took a message, so a send that a crash cut
(claimed, no outcome) would stay `in_doubt`. A mailbox can be searched: where the
provider files sent mail in the account's Sent folder, or the relay delivers a Bcc to
an archive mailbox, the mail went out if and only if its Message-ID (deterministic per
request, deskstream.mailthread) is there once the copy has had time to land.
"""
from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aioimaplib

from services.notifier.settings import SentMailSettings


class SentMailboxUnavailable(RuntimeError):
    """The mailbox could not be asked (unreachable, login refused, no such folder): ask
    again later, decide nothing."""


class SentMailbox:
    """One question at a time, each on a connection of its own: it is asked only about
    the sends a crash cut, a handful per restart."""

    def __init__(self, settings: SentMailSettings, timeout: float = 10.0) -> None:
        self.settings = settings
        self.timeout = timeout

    async def holds(self, message_id: str) -> bool:
        """Whether a mail with this Message-ID is in the mailbox."""
        if any(character in message_id for character in '"\\\r\n'):
            raise ValueError(f"not a Message-ID deskstream writes: {message_id!r}")
        s = self.settings
        try:
            if s.ssl:
                imap = aioimaplib.IMAP4_SSL(host=s.host, port=s.port, ssl_context=ssl.create_default_context(),
                                            timeout=self.timeout)
            else:
                imap = aioimaplib.IMAP4(host=s.host, port=s.port, timeout=self.timeout)
            await imap.wait_hello_from_server()
        except (OSError, asyncio.TimeoutError) as error:
            raise SentMailboxUnavailable(f"cannot reach {s.host}:{s.port}: {type(error).__name__}") from None
        try:
            _ok(await imap.login(s.user, s.password), "LOGIN")
            _ok(await imap.select(s.mailbox), f"SELECT {s.mailbox}")
            found = _ok(await imap.uid_search("HEADER", "Message-ID", f'"{message_id}"', charset=None), "UID SEARCH")
            return any(uid.isdigit() for line in found.lines[:-1] for uid in bytes(line).split())
        except (OSError, asyncio.TimeoutError, aioimaplib.AioImapException) as error:
            raise SentMailboxUnavailable(f"{s.host}:{s.port} stopped answering: {type(error).__name__}") from None
        finally:
            try:
                await imap.logout()
            except Exception:  # noqa: BLE001  # nosec B110  # the answer is known, or the error already raised
                pass


def _ok(response: Any, what: str) -> Any:
    if response.result != "OK":
        raise SentMailboxUnavailable(f"{what} refused: {response.result}")
    return response
