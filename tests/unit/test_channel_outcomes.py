"""How one attempt at a provider is classified for the outbox: `sent`, `retry` (certainly
not sent, may work later), `failed` (not sent, never will) or `in_doubt` (may have gone
out: look it up before sending again). Pure functions over the providers' own errors."""
from __future__ import annotations

import asyncio

import aiohttp
import aiosmtplib
import pytest
from aiohttp.client_reqrep import ConnectionKey
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from services.notifier.outcomes import Outcome, brief
from services.notifier.smtp import classify_smtp_error
from services.notifier.twilio_sms import UNSUBSCRIBED, classify_transport_error, classify_twilio_error

URI = "/2010-04-01/Accounts/AC0123/Messages.json"
TWILIO = ConnectionKey("api.twilio.com", 443, True, True, None, None, None, None)


def twilio_error(status: int, code: int | None, msg: str = "Error") -> TwilioRestException:
    return TwilioRestException(status, URI, msg, code, "POST")


# --- the outcome itself -----------------------------------------------------------------


def test_the_helpers_build_the_four_outcomes():
    assert Outcome.sent("Twilio accepted SM1", "SM1") == Outcome("sent", "Twilio accepted SM1", "SM1")
    assert Outcome.retry("Twilio 429", 20429) == Outcome("retry", "Twilio 429", None, 20429)
    assert Outcome.failed("Twilio 400", UNSUBSCRIBED) == Outcome("failed", "Twilio 400", None, UNSUBSCRIBED)
    assert Outcome.in_doubt("timeout") == Outcome("in_doubt", "timeout")


def test_an_outcome_cannot_be_changed_after_the_fact():
    with pytest.raises(AttributeError):
        Outcome.sent("x").status = "failed"  # type: ignore[misc]


@pytest.mark.parametrize("echoed, shown", [
    ("550 5.1.1 <ana.garcia@cliente.example.es>: Recipient address rejected",
     "550 5.1.1 <a***@cliente.example.es>: Recipient address rejected"),
    ("The 'To' number +34600111222 is not a valid phone number.", "The 'To' number +34******222 is not a valid phone number."),
    ("error 21610 for SM0123456789abcdef0123456789abcdef", "error 21610 for SM0123456789abcdef0123456789abcdef"),
])
def test_addresses_and_numbers_a_provider_echoes_are_masked_codes_and_sids_are_not(echoed, shown):
    assert brief(echoed) == shown


def test_a_detail_is_one_short_line():
    assert brief("451 4.3.0\n  try   again", 200) == "451 4.3.0 try again"
    assert len(brief("x" * 500, 100)) == 100


# --- Twilio: error answers to the create call -------------------------------------------


@pytest.mark.parametrize("status, code", [(429, 20429), (500, 20500), (502, None), (503, None), (504, None)])
def test_rate_limits_and_server_errors_are_worth_another_try(status, code):
    outcome = classify_twilio_error(twilio_error(status, code))
    assert outcome.status == "retry" and outcome.error_code == code
    assert outcome.detail.startswith(f"Twilio {status}")


def test_an_answer_without_a_twilio_code_carries_none():
    """The client puts the HTTP status in `code` when the body is not Twilio's JSON (a
    proxy's bare 503): that is no Twilio error code."""
    outcome = classify_twilio_error(twilio_error(503, 503, "Unable to create record"))
    assert (outcome.status, outcome.error_code) == ("retry", None)
    assert outcome.detail == "Twilio 503: Unable to create record"


@pytest.mark.parametrize("code", [UNSUBSCRIBED, 21211, 21602, 21617, 21408])
def test_other_client_errors_are_about_the_message_and_final(code):
    outcome = classify_twilio_error(twilio_error(400, code))
    assert outcome.status == "failed" and outcome.error_code == code
    assert f"Twilio 400 error {code}: " in outcome.detail


def test_an_unsubscribed_recipient_carries_21610_for_the_opt_out():
    outcome = classify_twilio_error(twilio_error(400, UNSUBSCRIBED, "Attempt to send to unsubscribed recipient"))
    assert (outcome.status, outcome.error_code) == ("failed", 21610)
    assert outcome.detail == "Twilio 400 error 21610: Attempt to send to unsubscribed recipient"


@pytest.mark.parametrize("status, code, expected", [(400, 21610, "failed"), (429, 20429, "retry"), (500, 20500, "retry")])
def test_an_rfc_9457_error_body_is_classified_alike(status, code, expected):
    error = TwilioServiceException("https://www.twilio.com/docs/errors/%d" % code, "Problem", status, code, "what went wrong")
    outcome = classify_twilio_error(error)
    assert (outcome.status, outcome.error_code) == (expected, code)
    assert outcome.detail == f"Twilio {status} error {code}: what went wrong"


def test_a_not_found_is_final_too():
    assert classify_twilio_error(twilio_error(404, 20404)).status == "failed"


def test_wrong_credentials_are_not_the_messages_fault_and_are_retried():
    assert classify_twilio_error(twilio_error(401, 20003, "Authenticate")).status == "retry"


def test_the_number_in_twilios_error_text_is_masked():
    outcome = classify_twilio_error(twilio_error(400, 21211, "The 'To' number +34600111222 is not a valid phone number."))
    assert "+34600111222" not in outcome.detail and "***222" in outcome.detail


# --- Twilio: the HTTP layer --------------------------------------------------------------


@pytest.mark.parametrize("error", [
    aiohttp.ClientConnectorError(TWILIO, ConnectionRefusedError(111, "Connection refused")),
    aiohttp.ClientConnectorDNSError(TWILIO, OSError(-2, "Name or service not known")),
    aiohttp.ConnectionTimeoutError("Connection timeout to host https://api.twilio.com"),
], ids=["refused", "dns", "connect-timeout"])
def test_a_connection_never_made_means_twilio_never_saw_the_request(error):
    assert classify_transport_error(error).status == "retry"


@pytest.mark.parametrize("error", [
    asyncio.TimeoutError(),
    aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
    aiohttp.ServerDisconnectedError(),
    aiohttp.ClientOSError(104, "Connection reset by peer"),
    aiohttp.ClientPayloadError("Response payload is not completed"),
    ConnectionResetError(104, "Connection reset by peer"),
], ids=["timeout", "read-timeout", "disconnected", "reset", "payload", "os-reset"])
def test_anything_after_the_request_was_sent_leaves_the_send_in_doubt(error):
    outcome = classify_transport_error(error)
    assert outcome.status == "in_doubt" and type(error).__name__ in outcome.detail


# --- SMTP: one transaction on an open connection -----------------------------------------


@pytest.mark.parametrize("error", [
    aiosmtplib.SMTPSenderRefused(451, "4.3.0 Mail server temporarily rejected message", "soporte@deskstream.test"),
    aiosmtplib.SMTPRecipientRefused(450, "4.2.0 Greylisted, try again", "ana@cliente.example"),
    aiosmtplib.SMTPDataError(452, "4.3.1 Insufficient system storage"),
    aiosmtplib.SMTPResponseException(421, "4.7.0 Too many connections"),
])
@pytest.mark.parametrize("data_started", [False, True])
def test_a_4xx_reply_means_not_now(error, data_started):
    outcome = classify_smtp_error(error, data_started)
    assert outcome.status == "retry" and outcome.error_code == error.code


@pytest.mark.parametrize("error", [
    aiosmtplib.SMTPSenderRefused(553, "5.7.1 Sender address rejected: not owned by user", "soporte@deskstream.test"),
    aiosmtplib.SMTPRecipientRefused(550, "5.1.1 <ana@cliente.example>: Recipient address rejected", "ana@cliente.example"),
    aiosmtplib.SMTPDataError(554, "5.7.1 Message rejected as spam"),
    aiosmtplib.SMTPDataError(552, "5.3.4 Message size exceeds fixed limit"),
])
@pytest.mark.parametrize("data_started", [False, True])
def test_a_5xx_reply_is_final_and_carries_the_code_and_text(error, data_started):
    outcome = classify_smtp_error(error, data_started)
    assert outcome.status == "failed" and outcome.error_code == error.code
    assert f"{error.code} 5." in outcome.detail


def test_the_recipient_echoed_in_a_refusal_is_masked():
    error = aiosmtplib.SMTPRecipientRefused(550, "5.1.1 <ana@cliente.example>: Recipient address rejected", "ana@cliente.example")
    assert "ana@cliente.example" not in classify_smtp_error(error, False).detail


def test_all_recipients_refused_is_final_unless_one_refusal_is_temporary():
    final = aiosmtplib.SMTPRecipientRefused(550, "5.1.1 No such user", "a@x.example")
    later = aiosmtplib.SMTPRecipientRefused(450, "4.2.0 Greylisted", "b@x.example")
    assert classify_smtp_error(aiosmtplib.SMTPRecipientsRefused([final]), False) == Outcome.failed(
        "SMTP refused the recipient: 550 5.1.1 No such user", 550)
    both = classify_smtp_error(aiosmtplib.SMTPRecipientsRefused([final, later]), False)
    assert (both.status, both.error_code) == ("retry", 450) and "(and 1 more)" in both.detail


@pytest.mark.parametrize("error", [
    aiosmtplib.SMTPServerDisconnected("Connection lost"),
    aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"),
    ConnectionResetError(104, "Connection reset by peer"),
    asyncio.TimeoutError(),
    aiosmtplib.SMTPResponseException(-1, "Malformed SMTP response line: garbage"),
])
def test_losing_the_connection_before_data_means_nothing_was_handed_over(error):
    assert classify_smtp_error(error, data_started=False).status == "retry"


@pytest.mark.parametrize("error", [
    aiosmtplib.SMTPServerDisconnected("Connection lost"),
    aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"),
    ConnectionResetError(104, "Connection reset by peer"),
    asyncio.TimeoutError(),
    aiosmtplib.SMTPResponseException(-1, "Malformed SMTP response line: garbage"),
])
def test_losing_the_connection_or_the_answer_after_data_leaves_the_mail_in_doubt(error):
    outcome = classify_smtp_error(error, data_started=True)
    assert outcome.status == "in_doubt" and outcome.error_code is None


@pytest.mark.parametrize("error", [
    aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server"),
    ValueError("No recipient headers provided in message"),
])
def test_a_message_no_envelope_can_carry_is_final(error):
    assert classify_smtp_error(error, data_started=False).status == "failed"
