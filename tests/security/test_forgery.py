"""Forged and replayed capabilities: Twilio's webhook signature and the survey links.

Already covered elsewhere, and not repeated here:
- tests/integration/test_sms_channel.py::test_a_forged_webhook_gets_403_and_leaves_no_trace
  (no signature, another account's token, a signature for another URL, a signed
  request replayed with its Body changed: 403, nothing in intake.raw nor deadletter);
  ::test_a_twilio_retry_makes_no_second_ticket_and_no_second_sms (the same signed
  request replayed three times: one ticket, one SMS); ::test_a_forged_status_callback_gets_403.
- tests/integration/test_surveys.py::test_an_e_mail_customer_answers_by_a_signed_link_once
  (an edited token: 403; the same link posted again: 409, not recorded twice).
Here: the forgeries those leave out.
"""
from __future__ import annotations

import base64
import json
import random
import uuid
import zlib

import aiohttp
import pytest

from deskstream.topics import DEADLETTER, INTAKE_RAW
from services.feedback.links import SurveyLinks
from tests.harness import read_topic, wait_for_events
from tests.twilio_api import inbound_sms, post_signed, sign

pytestmark = pytest.mark.integration

SURVEY_SECRET = "integration-survey-secret-0123456789abcdef"  # FEEDBACK_SURVEY_SECRET in tests/conftest.py


def new_number() -> str:
    return "+346" + "".join(random.choice("0123456789") for _ in range(8))


async def post_form(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=form, headers=headers) as response:
            return response.status, await response.text()


async def test_twilio_signatures_do_not_survive_a_spoofed_host_an_added_field_or_a_query(pipeline_services, kafka):
    intake = pipeline_services["intake"]
    url = f"{intake.url}/webhooks/twilio/sms"
    number = new_number()
    forms: dict[str, dict[str, str]] = {}

    # A request Twilio really signed for another deployment (same account), replayed
    # here with its Host header: the URL is rebuilt from PUBLIC_BASE_URL, never the Host.
    form = forms["spoofed host"] = inbound_sms(sender=number, body="Llamada desde otro despliegue")
    other = "http://support.evil.example/webhooks/twilio/sms"
    assert await post_form(url, form, {"X-Twilio-Signature": sign(other, form), "Host": "support.evil.example"}) == (
        403, "invalid Twilio signature")

    # A signed request with one more field (a media link the attacker wants agents to open).
    form = forms["added field"] = inbound_sms(sender=number, body="Mirad la foto")
    signature = sign(url, form)
    added = {**form, "NumMedia": "1", "MediaUrl0": "https://evil.example/x.jpg", "MediaContentType0": "image/jpeg"}
    assert await post_form(url, added, {"X-Twilio-Signature": signature}) == (403, "invalid Twilio signature")

    # The same signed form posted to the URL with a query string Twilio never called.
    form = forms["query added"] = inbound_sms(sender=number, body="Con parámetros")
    assert await post_form(url + "?debug=1", form, {"X-Twilio-Signature": sign(url, form)}) == (403, "invalid Twilio signature")

    # A signature that is not even base64, and one for the notifier's status callback.
    form = forms["garbage signature"] = inbound_sms(sender=number, body="Firma rota")
    assert await post_form(url, form, {"X-Twilio-Signature": "%%% not base64 ==="}) == (403, "invalid Twilio signature")
    form = forms["another endpoint"] = inbound_sms(sender=number, body="Firma de otro webhook")
    status_url = f"{pipeline_services['notifier'].url}/webhooks/twilio/status"
    assert await post_form(url, form, {"X-Twilio-Signature": sign(status_url, form)}) == (403, "invalid Twilio signature")

    # A real message from the same number afterwards goes through, and none of the forgeries did.
    marker = inbound_sms(sender=number, body="Este sí lo manda Twilio")
    assert (await post_signed(url, marker))[0] == 200
    await wait_for_events(kafka.bootstrap, INTAKE_RAW, lambda e: e.data.get("contact_id") == f"twilio-{marker['MessageSid']}", 1, 30)
    forged = {f"twilio-{form['MessageSid']}" for form in forms.values()}
    assert not [e for e in await read_topic(kafka.bootstrap, INTAKE_RAW) if e.data.get("contact_id") in forged]
    sids = [form["MessageSid"] for form in forms.values()]
    letters = await read_topic(kafka.bootstrap, DEADLETTER)
    assert not [e for e in letters if any(sid in base64.b64decode(e.data.get("original_base64", "")).decode(errors="replace")
                                          for sid in sids)]


def resigned_payload(token: str, payload: list) -> str:
    """The token with its payload replaced and the original timestamp and signature kept:
    what an attacker who edits the score (or the ticket) in a link produces."""
    body, stamp, signature = token.lstrip(".").split(".")
    encoded = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{encoded}.{stamp}.{signature}"


async def test_edited_foreign_and_cross_site_survey_links_are_refused(pipeline_services):
    feedback = pipeline_services["feedback"].url
    ours = SurveyLinks(SURVEY_SECRET, 3600, feedback)
    survey_id, ticket_id = f"S-{uuid.uuid4().hex[:12]}", "T-AAAAAAAA"
    genuine = ours.token(survey_id, ticket_id, 1, "es")
    refused = {
        "score edited 1 to 5": (resigned_payload(genuine, [survey_id, ticket_id, 5, "es"]), 403),
        "another ticket": (resigned_payload(genuine, [survey_id, "T-BBBBBBBB", 1, "es"]), 403),
        "signed with another secret": (SurveyLinks("not-our-secret-" + "y" * 30, 3600, feedback).token(survey_id, ticket_id, 5, "es"), 403),
        "signature cut short": (genuine[:-4], 403),
        "compressed payload marker added": ("." + genuine, 403),
        "not a token at all": ("<img src=x onerror=alert(1)>", 404),
        "a zip bomb's shape": ("." + base64.urlsafe_b64encode(zlib.compress(b"[" * 100000)).decode().rstrip("=") + ".AAAA.AAAA", 403),
    }
    async with aiohttp.ClientSession() as http:
        for what, (token, status) in refused.items():
            for method in ("GET", "POST"):
                async with http.request(method, f"{feedback}/survey/{token}", data={"comment": "x"} if method == "POST" else None,
                                        headers={"Accept-Language": "en"}) as page:
                    text = await page.text()
                    assert page.status == status, (what, method, page.status, text[:200])
                    assert "<img" not in text and ("not valid" in text or "not a survey link" in text), (what, text[:300])

        # Our own link, posted from another site's page (a form that auto-submits), or by
        # a browser that says the request is cross-site: refused before anything is recorded.
        for headers in ({"Origin": "https://evil.example"}, {"Origin": feedback + ".evil.example"},
                        {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
            async with http.post(f"{feedback}/survey/{genuine}", data={"comment": "forzado"}, headers=headers) as page:
                assert (page.status, "<h1>Respuesta no aceptada</h1>" in await page.text()) == (403, True), headers
        # Opening it is fine (a scanner does), and records nothing: this survey was never sent, so its answer is refused.
        async with http.get(f"{feedback}/survey/{genuine}") as page:
            assert page.status == 200 and "1" in await page.text()
        async with http.post(f"{feedback}/survey/{genuine}", data={"comment": "hola"}) as page:
            assert page.status == 410  # closed: no survey with this id was sent for the ticket
