"""A mail whose send a crash cut is settled by the sent-mail folder when there is one:
`sent` if its Message-ID is there, sent again if not, asked again later if the folder
cannot be asked; without a folder it stays `in_doubt`, as before."""
from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage

import pytest

from deskstream.settings import SettingsError
from services.notifier.channels import SETTLE_MARGIN_SECONDS, Channels
from services.notifier.outcomes import Outcome
from services.notifier.sent_mail import SentMailboxUnavailable
from services.notifier.settings import NotifierSettings, SentMailSettings
from tests.contract.golden import EXAMPLES, load

MAIL = {"SMTP_HOST": "smtp.example", "MAIL_FROM": "soporte@example.com", "SMTP_TIMEOUT_SECONDS": "5"}
FOLDER = {"SENT_MAIL_IMAP_HOST": "imap.example", "SENT_MAIL_IMAP_USER": "soporte", "SENT_MAIL_IMAP_PASSWORD": "pw",
          "SMTP_ARCHIVE_BCC": "archivo@example.com", "SENT_MAIL_ARRIVAL_SECONDS": "20"}
CLAIMED_AT = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
REQUEST = load(EXAMPLES / "notify.requested" / "email-es.json")["data"]


class Folder:
    """The sent-mail folder: the Message-IDs it holds, or unreachable."""

    def __init__(self, settings: SentMailSettings, holding: set[str] | None) -> None:
        self.settings = settings
        self.holding = holding
        self.asked: list[str] = []

    async def holds(self, message_id: str) -> bool:
        self.asked.append(message_id)
        if self.holding is None:
            raise SentMailboxUnavailable("cannot reach imap.example:993: ConnectionRefusedError")
        return message_id in self.holding


class Smtp:
    def __init__(self) -> None:
        self.handed: list[EmailMessage] = []

    async def deliver(self, message: EmailMessage) -> Outcome:
        self.handed.append(message)
        return Outcome.sent("SMTP accepted", message["Message-ID"])


def channels(env: dict[str, str], holding: set[str] | None = frozenset()) -> tuple[Channels, Folder | None, Smtp]:
    settings = NotifierSettings.from_env(env)
    folder = Folder(settings.sent_mail, set(holding) if holding is not None else None) if settings.sent_mail else None
    smtp = Smtp()
    return Channels(None, settings, smtp, None, folder), folder, smtp  # type: ignore[arg-type]


async def message_id_of(env: dict[str, str]) -> str:
    made, _, smtp = channels(env)
    await made.send(REQUEST)
    return smtp.handed[0]["Message-ID"]


async def test_a_cut_send_found_in_the_folder_is_sent_with_its_message_id():
    message_id = await message_id_of({**MAIL, **FOLDER})
    made, folder, _ = channels({**MAIL, **FOLDER}, holding={message_id})
    outcome = await made.find(REQUEST, CLAIMED_AT)
    assert (outcome.status, outcome.provider_message_id) == ("sent", message_id)
    assert folder.asked == [message_id]


async def test_a_cut_send_not_in_the_folder_certainly_went_nowhere_and_goes_again():
    made, _, _ = channels({**MAIL, **FOLDER}, holding={"<someone.else@example.com>"})
    outcome = await made.find(REQUEST, CLAIMED_AT)
    assert outcome.status == "retry" and "the sent-mail folder has no <" in outcome.detail


async def test_a_folder_that_cannot_be_asked_decides_nothing_yet():
    made, _, _ = channels({**MAIL, **FOLDER}, holding=None)
    assert await made.find(REQUEST, CLAIMED_AT) is None


async def test_without_a_folder_a_cut_send_stays_in_doubt():
    made, folder, _ = channels(MAIL)
    assert folder is None
    assert (await made.find(REQUEST, CLAIMED_AT)).status == "in_doubt"
    assert made.settle_delay(REQUEST) == 0.0


async def test_every_mail_carries_the_archive_s_bcc_and_the_customer_s_copy_does_not_show_it():
    made, _, smtp = channels({**MAIL, **FOLDER})
    await made.send(REQUEST)
    [message] = smtp.handed
    assert message["To"] == REQUEST["recipient"]["address"] and message["Bcc"] == "archivo@example.com"
    # aiosmtplib sends to To and Bcc and strips the Bcc header from what it transmits
    from aiosmtplib.email import extract_recipients, flatten_message
    assert extract_recipients(message) == [REQUEST["recipient"]["address"], "archivo@example.com"]
    assert b"archivo@" not in flatten_message(message)


async def test_a_provider_filed_folder_needs_no_bcc():
    env = {**MAIL, **{k: v for k, v in FOLDER.items() if k != "SMTP_ARCHIVE_BCC"}}
    made, _, smtp = channels(env)
    await made.send(REQUEST)
    assert smtp.handed[0]["Bcc"] is None


def test_the_folder_is_asked_only_after_the_copy_had_time_to_land():
    made, _, _ = channels({**MAIL, **FOLDER})
    assert made.settle_delay(REQUEST) == 5 + 20 + SETTLE_MARGIN_SECONDS


def test_sent_mail_settings_are_read_once_and_checked():
    settings = NotifierSettings.from_env({**MAIL, **FOLDER}).sent_mail
    assert settings == SentMailSettings(host="imap.example", port=993, ssl=True, user="soporte", password="pw",
                                        mailbox="Sent", bcc="archivo@example.com", arrival_seconds=20.0)
    assert NotifierSettings.from_env(MAIL).sent_mail is None
    with pytest.raises(SettingsError, match="SENT_MAIL_IMAP_USER and SENT_MAIL_IMAP_PASSWORD"):
        NotifierSettings.from_env({**MAIL, "SENT_MAIL_IMAP_HOST": "imap.example"})
    with pytest.raises(SettingsError, match="SMTP_ARCHIVE_BCC"):
        NotifierSettings.from_env({**MAIL, **FOLDER, "SMTP_ARCHIVE_BCC": "archivo"})
    assert "pw" not in repr(settings)  # the password is in no repr, so in no log
