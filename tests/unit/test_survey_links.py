"""Survey links: a signed, expiring token per score that nobody but us can make or edit."""
import time

import orjson
import pytest
from itsdangerous.encoding import base64_decode, base64_encode

from services.feedback.links import InvalidLink, SurveyLinks

SECRET = "s" * 40
BASE = "https://help.example.com"
DAY = 86400.0


def links(secret: str = SECRET, max_age: float = 30 * DAY) -> SurveyLinks:
    return SurveyLinks(secret, max_age, BASE + "/")


def token_of(url: str) -> str:
    assert url.startswith(BASE + "/survey/")
    return url.removeprefix(BASE + "/survey/")


def reason(survey_links: SurveyLinks, token: str, now: float | None = None) -> str:
    with pytest.raises(InvalidLink) as refused:
        survey_links.read(token, now=now)
    return refused.value.reason


def test_a_link_reads_back_as_the_survey_ticket_score_and_language_it_was_made_for():
    before = time.time()
    url = links().url("sv-1", "T-42", 4, "es")
    payload = links().read(token_of(url))
    assert {k: v for k, v in payload.items() if k != "issued_at"} == {
        "survey_id": "sv-1", "ticket_id": "T-42", "score": 4, "language": "es"}
    assert before - 1 <= payload["issued_at"] <= time.time()


def test_the_five_links_of_a_survey_differ_and_each_carries_its_own_score():
    survey_links = links()
    tokens = [token_of(survey_links.url("sv-1", "T-42", score, "en")) for score in range(1, 6)]
    assert len(set(tokens)) == 5
    assert [survey_links.read(t)["score"] for t in tokens] == [1, 2, 3, 4, 5]


def test_tokens_are_compact_and_safe_in_a_url_path():
    token = token_of(links().url("0f8fad5b-d9cb-469f-a165-70867728950e", "T-2024-000123", 5, "es-MX"))
    assert len(token) < 200
    assert all(c.isalnum() or c in "-_." for c in token)


def test_a_token_signed_with_another_secret_is_forged():
    token = token_of(links("t" * 40).url("sv-1", "T-42", 4, "en"))
    assert reason(links(), token) == "forged"


def test_a_token_whose_score_was_edited_is_forged():
    token = token_of(links().url("sv-1", "T-42", 2, "en"))
    payload, timestamp, signature = token.split(".")
    assert orjson.loads(base64_decode(payload)) == ["sv-1", "T-42", 2, "en"]
    edited = base64_encode(orjson.dumps(["sv-1", "T-42", 5, "en"])).decode()
    assert reason(links(), f"{edited}.{timestamp}.{signature}") == "forged"


def test_a_token_with_a_changed_character_or_cut_signature_is_forged():
    token = token_of(links().url("sv-1", "T-42", 2, "en"))
    # Not the last character: its low bits are base64 padding, which decoding drops.
    changed = token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]
    assert reason(links(), changed) == "forged"
    assert reason(links(), token[:-5]) == "forged"


def test_a_token_older_than_the_links_live_is_expired_and_still_says_its_language():
    survey_links = links(max_age=7 * DAY)
    token = token_of(survey_links.url("sv-1", "T-42", 4, "es"))
    issued = survey_links.read(token)["issued_at"]
    assert survey_links.read(token, now=issued + 7 * DAY)["score"] == 4  # the last moment it still works
    with pytest.raises(InvalidLink) as refused:
        survey_links.read(token, now=issued + 7 * DAY + 1)
    assert refused.value.reason == "expired" and refused.value.language == "es"


def test_a_forged_token_says_no_language_since_nothing_in_it_can_be_trusted():
    token = token_of(links("t" * 40).url("sv-1", "T-42", 4, "es"))
    with pytest.raises(InvalidLink) as refused:
        links().read(token)
    assert refused.value.language is None


@pytest.mark.parametrize("garbage", ["", "hello", "a.b", "a.b.c.d", "../../etc/passwd", "a b.c.d", "x" * 2000 + ".y.z",
                                     "é.b.c"])
def test_anything_not_shaped_like_a_token_is_malformed(garbage):
    assert reason(links(), garbage) == "malformed"


def test_our_own_signature_over_something_that_is_not_a_survey_link_is_malformed():
    from itsdangerous import URLSafeTimedSerializer
    from services.feedback.links import SALT

    other_shape = URLSafeTimedSerializer(SECRET, salt=SALT).dumps({"survey": "sv-1", "score": 9})
    assert reason(links(), other_shape) == "malformed"


def test_a_console_session_cookie_signed_with_the_same_secret_is_not_a_survey_link():
    from services.router.signin import Sessions

    cookie, _ = Sessions(SECRET, 3600).open("ana")
    assert reason(links(), cookie) == "forged"  # another salt: another signature


@pytest.mark.parametrize("score", [0, 6, -1, True, 4.0, "4"])
def test_no_link_is_made_for_a_score_outside_one_to_five(score):
    with pytest.raises(ValueError):
        links().url("sv-1", "T-42", score, "en")


@pytest.mark.parametrize("survey_id, ticket_id, language", [("", "T-1", "en"), ("sv", "", "en"), ("sv", "T-1", ""),
                                                            ("s" * 129, "T-1", "en")])
def test_no_link_is_made_with_an_empty_or_overlong_id_or_language(survey_id, ticket_id, language):
    with pytest.raises(ValueError):
        links().url(survey_id, ticket_id, 3, language)


def test_survey_links_need_a_secret_and_a_positive_lifetime():
    with pytest.raises(ValueError):
        SurveyLinks("", DAY, BASE)
    with pytest.raises(ValueError):
        SurveyLinks(SECRET, 0, BASE)
