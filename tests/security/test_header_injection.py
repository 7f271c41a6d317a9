"""Header injection: CR LF in what a customer writes (a mail's Subject, From display name
and Reply-To; a chat customer's e-mail address) never puts a header of theirs into the
mail we send back: the acknowledgement goes to the sender alone, with its own headers.
The customer's words stay inside the Subject's one line, or the contact is refused with
its reason. (Stored script injection is tests/security/test_injection.py.)
"""
from __future__ import annotations

import asyncio
import base64
import email
import time
import uuid
from email import policy

import aiohttp
import pytest

from tests.integration.chat_client import ChatCustomer

pytestmark = pytest.mark.integration

SUPPORT = "soporte@deskstream.test"


async def acknowledgement_to(smtp_server, address: str, timeout: float = 60) -> tuple[list[str], bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, recipients, raw in list(smtp_server.messages):
            if address in recipients:
                return recipients, raw
        await asyncio.sleep(0.5)
    raise AssertionError(f"no mail to {address}")


async def test_crlf_in_a_mails_headers_puts_no_header_in_the_acknowledgement(pipeline_services, kafka, dovecot, smtp_server):
    """Encoded CR LF in the Subject and the From display name, a folded Subject whose next
    line looks like a header, and a Reply-To naming a third party: the acknowledgement
    goes to the sender alone, with exactly its own headers, the customer's words only
    inside the Subject's one line."""
    tag = uuid.uuid4().hex[:8]
    victims = [f"victim{n}-{tag}@evil.example" for n in range(4)]
    customers = [f"crlf{n}-{tag}@cliente.example" for n in range(3)]
    raws = [
        (f"From: =?utf-8?q?Eve=0D=0ABcc:_{victims[0]}?= <{customers[0]}>\r\nTo: {SUPPORT}\r\n"
         f"Subject: =?utf-8?q?Factura=0D=0ABcc:_{victims[1]}=0D=0A=0D=0Acuerpo?=\r\nMessage-ID: <crlf0-{tag}@x>\r\n\r\n"
         "No puedo pagar la factura.\r\n"),
        (f"From: {customers[1]}\r\nTo: {SUPPORT}\r\nSubject: Factura\r\n Bcc: {victims[2]}\r\nMessage-ID: <crlf1-{tag}@x>\r\n\r\n"
         "Me cobraron dos veces.\r\n"),
        (f"From: {customers[2]}\r\nReply-To: {victims[3]}\r\nTo: {SUPPORT}\r\nSubject: =?utf-8?b?"
         + base64.b64encode(f"Ayuda\r\nTo: {victims[3]}".encode()).decode()
         + f"?=\r\nMessage-ID: <crlf2-{tag}@x>\r\n\r\nNo tengo internet.\r\n"),
    ]
    for raw in raws:
        dovecot.append(raw.encode())
    for customer in customers:
        recipients, raw = await acknowledgement_to(smtp_server, customer)
        assert recipients == [customer], recipients
        message = email.message_from_bytes(raw, policy=policy.default)
        names = [name.lower() for name in message.keys()]
        assert "bcc" not in names and "cc" not in names and names.count("to") == 1 and names.count("subject") == 1, names
        assert message["To"] == customer
        assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
        head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
        assert not [line for line in head.splitlines() if line.lower().startswith((b"bcc:", b"cc:"))], head
    every = [rcpt for _, recipients, _ in list(smtp_server.messages) for rcpt in recipients]
    assert not set(every) & set(victims)


async def test_crlf_in_a_chat_customers_e_mail_is_refused_and_in_a_name_stays_text_on_the_chat(pipeline_services, smtp_server):
    """A chat customer's e-mail address with CR LF is refused with its reason. A name with
    CR LF is only text: chat is answered on the page, never by mail, so it reaches no header."""
    url = pipeline_services["intake"].url + "/api/chat/messages"
    async with aiohttp.ClientSession() as http:
        address = f"eve-{uuid.uuid4().hex[:8]}@cliente.example"
        customer = ChatCustomer(http, pipeline_services["intake"].url, name="Eve\r\nBcc: victim@evil.example\r\n\r\nhi")
        customer.customer["email"] = address
        await customer.say("My invoice is wrong")
        [ack] = await customer.messages(1)
        assert ack["kind"] == "acknowledgement"
        await asyncio.sleep(1)
        assert not [m for m in list(smtp_server.messages) if address in m[1] or "victim@evil.example" in m[1]]
        for address in ("eve@cliente.example\r\nBcc: victim@evil.example", "eve@cliente.example\nBcc:victim@evil.example",
                        "eve@cliente.example%0d%0abcc:victim@evil.example", "\"eve\r\n\"@cliente.example"):
            body = {"client_message_id": uuid.uuid4().hex, "text": "hola", "customer": {"email": address}}
            async with http.post(url, json=body) as answer:
                reason = (await answer.json())["error"]
                assert (answer.status, reason) == (400, "customer.email is not an e-mail address"), (address, reason)
