"""The mail servers the tests use are real: Dovecot keeps Spanish mail byte for byte,
speaks what the intake relies on (aioimaplib's UID SEARCH and FETCH, IDLE pushes,
keyword flags, UID MOVE) and keeps its mailbox across a restart; the SMTP capture
keeps what aiosmtplib sends, envelope and bytes. No Kafka here.

The session's Dovecot may also be the intake's mailbox (pipeline_services), so these
tests work in folders of their own and never add mail to its INBOX, and the restart
is done on a private Dovecot.
"""
from __future__ import annotations

import asyncio
import uuid
from email import policy
from email.message import EmailMessage
from typing import Iterator

import aioimaplib
import aiosmtplib
import pytest

from tests.mailserver import Dovecot, SmtpCapture, temporary_dovecot

SPANISH = "Buenos días: mi pedido nº 1234 no llegó. ¿Podéis revisarlo? Añado la factura. Gracias, Begoña Muñoz"


def spanish_mail(message_id: str, body: str = SPANISH) -> bytes:
    message = EmailMessage()
    message["From"] = "Begoña Muñoz <begona@cliente.example.es>"
    message["To"] = "soporte@deskstream.test"
    message["Subject"] = "¿Dónde está mi pedido?"
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(body, cte="8bit")
    return message.as_bytes(policy=policy.SMTP)  # CRLF, as mail is on the wire and as IMAP serves it


def new_id() -> str:
    return f"{uuid.uuid4().hex}@cliente.example.es"


@pytest.fixture
def folder(dovecot: Dovecot) -> str:
    """A folder of this test's own in the session's Dovecot."""
    name = f"Test-{uuid.uuid4().hex[:8]}"
    dovecot.create_folder(name)
    return name


async def connect(dovecot: Dovecot) -> aioimaplib.IMAP4:
    imap = aioimaplib.IMAP4(host=dovecot.host, port=dovecot.port, timeout=10)
    await imap.wait_hello_from_server()
    response = await imap.login(dovecot.user, dovecot.password)
    assert response.result == "OK", response
    return imap


def test_a_spanish_mail_comes_back_byte_for_byte(dovecot: Dovecot, folder: str) -> None:
    raw = spanish_mail(new_id())
    assert "Begoña".encode() in raw and "días".encode() in raw  # 8-bit UTF-8, not encoded away
    dovecot.append(raw, folder)
    [uid] = dovecot.uids(folder)
    assert dovecot.fetch(folder, uid) == raw


async def test_aioimaplib_searches_and_fetches_by_uid(dovecot: Dovecot, folder: str) -> None:
    message_id = new_id()
    raw = spanish_mail(message_id)
    dovecot.append(raw, folder)
    imap = await connect(dovecot)
    try:
        assert "IDLE" in imap.protocol.capabilities and "MOVE" in imap.protocol.capabilities
        selected = await imap.select("INBOX")
        assert selected.result == "OK" and any(line.endswith(b"EXISTS") for line in selected.lines), selected
        selected = await imap.select(folder)
        assert selected.result == "OK", selected
        found = await imap.uid_search("HEADER", "Message-ID", f"<{message_id}>")
        assert found.result == "OK"
        [uid] = found.lines[0].split()  # lines: [b"1", b"Search completed (...)"]
        fetched = await imap.uid("fetch", uid.decode(), "(UID FLAGS BODY.PEEK[])")
        assert fetched.result == "OK"
        # lines: [b'1 FETCH (UID 1 FLAGS () BODY[] {n}', bytearray(<n bytes>), b')', b'Fetch completed ...']
        assert b"UID " + uid in fetched.lines[0]
        assert bytes(fetched.lines[1]) == raw
    finally:
        await imap.logout()


async def test_idle_pushes_exists_when_another_connection_appends(dovecot: Dovecot, folder: str) -> None:
    imap = await connect(dovecot)
    try:
        await imap.select(folder)
        idle = await imap.idle_start(timeout=30)  # returns once the server answered "+ idling"
        await asyncio.to_thread(dovecot.append, spanish_mail(new_id()), folder)  # a second connection
        pushed: list[bytes] = []
        while not any(line.endswith(b" EXISTS") for line in pushed):
            pushed += await imap.wait_server_push(timeout=10)  # a list of untagged lines, e.g. [b"1 EXISTS", b"1 RECENT"]
        assert b"1 EXISTS" in pushed
        imap.idle_done()
        done = await asyncio.wait_for(idle, 10)
        assert done.result == "OK", done
    finally:
        await imap.logout()


async def test_a_keyword_flag_is_stored_and_a_mail_moved_by_uid(dovecot: Dovecot, folder: str) -> None:
    done_folder = f"{folder}-Done"
    dovecot.create_folder(done_folder)
    dovecot.append(spanish_mail(new_id()), folder)
    dovecot.append(spanish_mail(new_id(), "Segundo correo, también con eñes."), folder)
    first, second = dovecot.uids(folder)
    imap = await connect(dovecot)
    try:
        await imap.select(folder)
        stored = await imap.uid("store", str(first), "+FLAGS", "($DeskstreamTaken)")
        assert stored.result == "OK", stored
        assert "$DeskstreamTaken" in dovecot.flags(folder)[first]
        assert "$DeskstreamTaken" not in dovecot.flags(folder)[second]

        moved = await imap.uid("move", str(second), done_folder)
        # lines: [b"OK [COPYUID <validity> <from uid> <to uid>] Moved UIDs.", b"2 EXPUNGE", ..., b"Move completed ..."]
        assert moved.result == "OK", moved
        assert any(line.startswith(b"OK [COPYUID ") for line in moved.lines), moved
    finally:
        await imap.logout()
    assert dovecot.uids(folder) == [first]
    [moved_uid] = dovecot.uids(done_folder)
    assert b"Segundo correo, tambi\xc3\xa9n con e\xc3\xb1es." in dovecot.fetch(done_folder, moved_uid)


@pytest.fixture
def private_dovecot() -> Iterator[Dovecot]:
    """A Dovecot of this test's own, as restarting the session's would cut the intake off
    (tests/mailserver.py temporary_dovecot)"""
    with temporary_dovecot() as server:
        yield server


def test_a_restart_keeps_the_mailbox(private_dovecot: Dovecot) -> None:
    raw = spanish_mail(new_id())
    private_dovecot.create_folder("Archivo")
    private_dovecot.append(raw, "Archivo", flags="$DeskstreamTaken")
    port, before = private_dovecot.port, private_dovecot.uids("Archivo")
    private_dovecot.restart()
    assert private_dovecot.port == port
    assert private_dovecot.uids("Archivo") == before
    [uid] = before
    assert private_dovecot.fetch("Archivo", uid) == raw
    assert "$DeskstreamTaken" in private_dovecot.flags("Archivo")[uid]


async def test_smtp_capture_keeps_envelope_and_bytes(smtp_capture: SmtpCapture) -> None:
    raw = spanish_mail(new_id(), "Hola Begoña:\r\n\r\nHemos recibido tu mensaje.\r\n.\r\nUn saludo")
    recipients = ["begona@cliente.example.es", "copia@cliente.example.es"]
    await aiosmtplib.send(raw, sender="soporte@deskstream.test", recipients=recipients,
                          hostname=smtp_capture.host, port=smtp_capture.port, start_tls=False, timeout=10)
    [(sender, to, received)] = await asyncio.to_thread(smtp_capture.wait_for, 1, 10)
    assert sender == "soporte@deskstream.test"
    assert to == recipients
    assert received == raw  # the lone "." line survived dot-stuffing both ways
