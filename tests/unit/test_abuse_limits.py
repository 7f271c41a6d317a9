"""Abuse limits: the token buckets behind intake's 429s and the per-sender window, the
bound on how many keys they keep, and who the client is behind a proxy."""
from __future__ import annotations

import base64
import ipaddress
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from deskstream.contract import default_contract
from deskstream.events import Event, timestamp
from deskstream.limits import (
    UNLIMITED, Bucket, Concurrency, KeyedLimiter, Limit, LruTable, client_address, client_key, parse_limit,
    parse_networks, retry_after,
)
from deskstream.settings import SettingsError
from deskstream.topics import INTAKE_RAW
from services.intake import sms
from services.intake.normaliser import Thread, normalise
from services.intake.senders import MailSenders, held_back, over_sender_limit
from services.intake.settings import AbuseLimits, IntakeSettings, MailboxSettings
from tests.twilio_api import inbound_sms
from tests.clocks import FakeClock

START = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


# -- the limit and its bucket ---------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ("30/60", Limit(30, 60.0)), (" 5/0.5 ", Limit(5, 0.5)), ("off", UNLIMITED), ("0", UNLIMITED), ("0/60", UNLIMITED),
])
def test_a_limit_is_read_as_count_per_seconds_or_off(spec, expected):
    assert parse_limit(spec) == expected


@pytest.mark.parametrize("spec", ["30", "30/", "/60", "thirty/60", "30/0", "30/-1", "-1/60", "30/inf", "30/nan", "1.5/60"])
def test_a_limit_that_cannot_be_read_is_refused(spec):
    with pytest.raises(ValueError):
        parse_limit(spec)


def test_a_bucket_lets_the_burst_through_then_refuses_with_the_wait_for_the_next_token():
    limit = Limit(3, 60)  # one token back every 20 s
    bucket = Bucket.full(limit.burst, 0.0)
    assert [bucket.take(0.0, limit.rate, limit.burst) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0, limit.rate, limit.burst) == pytest.approx(20.0)
    assert bucket.take(5.0, limit.rate, limit.burst) == pytest.approx(15.0)  # a refusal takes nothing
    assert bucket.take(20.0, limit.rate, limit.burst) == 0.0
    assert bucket.take(20.0, limit.rate, limit.burst) == pytest.approx(20.0)
    assert [bucket.take(10_000.0, limit.rate, limit.burst) for _ in range(4)][-1] > 0  # an idle day saves only the burst


def test_a_clock_that_steps_back_gives_no_tokens():
    limit = Limit(1, 10)
    bucket = Bucket.full(limit.burst, 100.0)
    assert bucket.take(100.0, limit.rate, limit.burst) == 0.0
    assert bucket.take(50.0, limit.rate, limit.burst) == pytest.approx(10.0)


@pytest.mark.parametrize("seconds, header", [(0.0001, "1"), (0.5, "1"), (1.0, "1"), (1.01, "2"), (59.2, "60")])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(seconds, header):
    assert retry_after(seconds) == header


# -- many keys ------------------------------------------------------------------------------

def test_each_key_has_its_own_allowance():
    clock = FakeClock()
    limiter = KeyedLimiter(Limit(2, 10), clock=clock)
    assert [limiter.take("a") for _ in range(3)] == pytest.approx([0.0, 0.0, 5.0])
    assert limiter.take("b") == 0.0
    clock.advance(5)
    assert limiter.take("a") == 0.0


def test_no_limit_lets_everything_through_and_keeps_nothing():
    limiter = KeyedLimiter(UNLIMITED, clock=FakeClock())
    assert all(limiter.take("a") == 0.0 for _ in range(10_000))
    assert len(limiter) == 0


def test_a_flood_of_distinct_keys_keeps_memory_bounded():
    clock = FakeClock()
    limiter = KeyedLimiter(Limit(5, 60), max_keys=100, clock=clock)
    for n in range(10_000):
        assert limiter.take(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}") == 0.0  # each a first request
        assert len(limiter) <= 100


def test_buckets_that_filled_up_again_are_forgotten_first_and_busy_ones_kept():
    clock = FakeClock()
    limiter = KeyedLimiter(Limit(2, 10), max_keys=3, clock=clock)
    limiter.take("quiet")
    clock.advance(10)  # "quiet" is full again: worth nothing
    limiter.take("busy"), limiter.take("busy"), limiter.take("other")
    limiter.take("new")
    assert len(limiter) == 3
    assert limiter.take("busy") > 0  # still remembered: still refused


def test_when_every_key_is_busy_the_least_recently_seen_is_pushed_out():
    table: LruTable[int] = LruTable(2, lambda value, now: False)
    table.touch("a", 0, lambda: 1)
    table.touch("b", 0, lambda: 2)
    table.touch("a", 0, lambda: 99)  # "a" is now the most recent
    table.touch("c", 0, lambda: 3)
    assert (table.get("a"), table.get("b"), table.get("c")) == (1, None, 3)
    assert table.pushed_out == 1


def test_concurrency_counts_what_is_open_per_key():
    sockets = Concurrency(2)
    assert sockets.enter("s") and sockets.enter("s")
    assert not sockets.enter("s")
    assert sockets.enter("other")
    sockets.leave("s")
    assert sockets.enter("s")
    for _ in range(2):
        sockets.leave("s")
    assert sockets.open("s") == 0 and Concurrency(0).enter("s")


# -- who the client is ----------------------------------------------------------------------

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"])


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says():
    assert client_address("203.0.113.9", ["198.51.100.1"], ()) == "203.0.113.9"


def test_behind_trusted_proxies_the_right_most_untrusted_forwarded_address_is_the_client():
    # The client wrote "1.2.3.4" itself; our two proxies appended what they saw.
    assert client_address("10.0.0.2", ["1.2.3.4, 203.0.113.9", "10.0.0.1"], PROXIES) == "203.0.113.9"
    assert client_address("203.0.113.9", ["1.2.3.4"], PROXIES) == "203.0.113.9"  # not through a proxy: the header is the caller's
    assert client_address("10.0.0.2", [], PROXIES) == "10.0.0.2"  # a proxy's own request
    assert client_address("10.0.0.2", ["10.0.0.1"], PROXIES) == "10.0.0.1"
    assert client_address("::ffff:10.0.0.2", ["2001:db8::1"], PROXIES) == "2001:db8::1"
    assert client_address(None, [], PROXIES) == "unknown"


def test_an_ipv6_client_is_limited_by_its_slash_64_and_an_ipv4_one_by_its_address():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("not an address") == "not an address"


def test_what_is_not_a_network_is_refused():
    with pytest.raises(ValueError):
        parse_networks(["10.0.0.0/8", "proxy.internal"])
    assert parse_networks([" 10.1.2.3 "]) == (ipaddress.ip_network("10.1.2.3/32"),)


# -- settings -------------------------------------------------------------------------------

SECRET = {"CHAT_SESSION_SECRET": "s" * 40}


def test_the_limits_have_defaults_and_are_read_from_the_environment():
    assert IntakeSettings.from_env(SECRET).limits == AbuseLimits()
    limits = IntakeSettings.from_env({**SECRET, "INTAKE_CHAT_MESSAGES_PER_SESSION": "3/10", "INTAKE_SMS_PER_SENDER": "off",
                                      "INTAKE_CHAT_SOCKETS_PER_SESSION": "2", "TRUSTED_PROXIES": "10.0.0.0/8"}).limits
    assert limits.chat_messages_per_session == Limit(3, 10) and limits.sms_per_sender.unlimited
    assert limits.chat_sockets_per_session == 2 and limits.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"),)
    mailbox = MailboxSettings.from_env({"IMAP_HOST": "imap.example.com", "INTAKE_MAIL_PER_SENDER": "4/60"})
    assert mailbox is not None and mailbox.sender_limit == Limit(4, 60)


@pytest.mark.parametrize("name, value", [("INTAKE_CHAT_MESSAGES_PER_ADDRESS", "lots"), ("TRUSTED_PROXIES", "my-proxy"),
                                         ("INTAKE_LIMIT_MAX_KEYS", "0")])
def test_a_limit_setting_that_cannot_be_used_stops_the_start(name, value):
    with pytest.raises(SettingsError, match=name):
        IntakeSettings.from_env({**SECRET, name: value})


# -- one sender ---------------------------------------------------------------------------

def sms_contact(n: int, at: datetime, sender: str = "+34600111222", channel: str = "sms") -> dict:
    address = f"whatsapp:{sender}" if channel == "whatsapp" else sender
    message = sms.parse_inbound(inbound_sms(sender=address, body=f"mensaje {n}", sid=f"SM{n:032x}"), "ES")
    return sms.contact_data(message, "cus-1", timestamp(at))


def run_flood(thread: Thread, contacts: list[dict], limit: Limit) -> tuple[list[str], list]:
    """What the tickets hop does with each contact: held back (its reason) or normalised."""
    held, events = [], []
    for contact in contacts:
        stored = Thread.from_dict(orjson.loads(orjson.dumps(thread.to_dict())))  # as the table keeps it
        reason = over_sender_limit(contact, stored, limit)
        if reason is None:
            events += normalise(contact, stored)
            thread = stored
        else:
            held.append(reason)
    return held, events


def test_a_flood_from_one_sms_sender_opens_one_ticket_and_holds_back_what_is_past_the_limit():
    flood = [sms_contact(n, START + timedelta(seconds=n * 0.12)) for n in range(500)]  # 500 in a minute
    held, events = run_flood(Thread(), flood, Limit(5, 600))
    assert [e.type for e in events] == ["ticket.created"] + ["ticket.message_received"] * 4
    assert len(held) == 495
    assert all(reason == "sender over limit: this sms sender wrote more than 5 per 600 s; kept here, not on the ticket"
               for reason in held)


def test_the_senders_allowance_comes_back_with_the_time_the_messages_were_received():
    limit = Limit(2, 60)
    thread = Thread()
    first = [sms_contact(n, START) for n in range(3)]
    assert [over_sender_limit(c, thread, limit) is None for c in first] == [True, True, False]
    later = sms_contact(9, START + timedelta(seconds=30))  # one token back after 30 s
    assert over_sender_limit(later, thread, limit) is None


def test_replaying_the_same_contacts_decides_the_same():
    flood = [sms_contact(n, START + timedelta(seconds=n)) for n in range(40)]
    assert run_flood(Thread(), flood, Limit(10, 60)) == run_flood(Thread(), flood, Limit(10, 60))


def test_a_repeated_contact_uses_no_allowance():
    limit = Limit(1, 3600)
    thread = Thread()
    contact = sms_contact(1, START)
    assert over_sender_limit(contact, thread, limit) is None
    normalise(contact, thread)
    assert over_sender_limit(contact, thread, limit) is None  # Twilio's retry: the normaliser drops it
    assert over_sender_limit(sms_contact(2, START), thread, limit) is not None


def test_whatsapp_is_limited_and_chat_and_email_are_not_here():
    limit = Limit(1, 3600)
    thread = Thread()
    whatsapp = [sms_contact(n, START, channel="whatsapp") for n in range(2)]
    assert [over_sender_limit(c, thread, limit) is None for c in whatsapp] == [True, False]
    for channel in ("chat", "email"):
        other = Thread()
        assert all(over_sender_limit({**sms_contact(n, START), "channel": channel}, other, limit) is None for n in range(5))


def test_a_held_back_contact_is_dead_lettered_whole_with_the_reason():
    limit = Limit(1, 3600)
    thread = Thread()
    events = [Event(type="contact.received", source="deskstream/intake", id=c["contact_id"], data=c, subject=c["thread_key"])
              for c in (sms_contact(n, START) for n in range(2))]
    assert held_back(events[0], thread, limit, "deskstream/intake") is None
    letter = held_back(events[1], thread, limit, "deskstream/intake")
    assert letter is not None
    default_contract().check(letter)
    assert letter.data["origin"] == INTAKE_RAW and letter.data["key"] == "sms:+34600111222"
    assert letter.data["reason"].startswith("sender over limit")
    assert Event.decode(base64.b64decode(letter.data["original_base64"])) == events[1]
    assert held_back(events[1], thread, limit, "deskstream/intake").id == letter.id  # a replay: the same dead letter


def test_mail_senders_are_counted_by_address_whatever_its_case():
    senders = MailSenders(Limit(2, 3600))
    assert senders.over("Ana@Example.com") is None and senders.over("ana@example.com") is None
    assert senders.over("ANA@example.com") == ("sender over limit: this address sent more than 2 per 3600 s; "
                                               "the mail is in the quarantine folder")
    assert senders.over("ben@example.com") is None


def test_the_console_sign_in_throttle_remembers_a_bounded_number_of_ids_and_addresses():
    from services.router.signin import SignInThrottle

    throttle = SignInThrottle(free=1, max_keys=50)
    for n in range(5_000):  # made-up agent ids from made-up addresses, one failure each
        throttle.failed((f"agent:guess-{n}", f"client:10.0.{n // 256}.{n % 256}"), now=float(n))
        assert len(throttle._failures) <= 50
    throttle.failed(("agent:ana",), now=6000.0)
    assert throttle.wait(("agent:ana",), 6000.0) == 1.0  # the latest are still counted
