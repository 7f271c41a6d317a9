"""What deskstream masks in what customers write (deskstream/sensitive.py), and what it
must leave alone: card numbers that pass the Luhn check, written passwords, PINs and
security codes, Spanish DNI/NIE and US SSNs with their checks; not phone numbers, order
numbers, timestamps, ticket ids, IBANs or a 16-digit number that fails the check.
Then the masking of addresses and numbers that every log line gets."""
from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from deskstream.sensitive import (
    CARD, NATIONAL_ID, PASSWORD, dni_valid, iban_valid, is_card_number, luhn_valid, mask, mask_contact_details,
    mask_for_log, nie_valid, ssn_valid,
)

# --- card numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("written, shown", [
    ("my card is 4242 4242 4242 4242, thanks", "my card is [card ····4242], thanks"),
    ("tarjeta 4111-1111-1111-1111", "tarjeta [card ····1111]"),
    ("4111111111111111", "[card ····1111]"),
    ("amex 3782 822463 10005 please", "amex [card ····0005] please"),  # 15 digits, grouped 4-6-5
    ("mastercard 2221 0000 0000 0009.", "mastercard [card ····0009]."),
    ("two: 4111111111111111 y 5555 5555 5555 4444", "two: [card ····1111] y [card ····4444]"),
    ("order 1234 card 4242 4242 4242 4242 5678", "order 1234 card [card ····4242] 5678"),  # the card inside a longer run
])
def test_card_numbers_that_pass_luhn_keep_only_their_last_four_digits(written, shown):
    masked = mask(written)
    assert (masked.text, masked.kinds) == (shown, {CARD})


@pytest.mark.parametrize("text", [
    "card 4242 4242 4242 4241",  # 16 digits, fails the Luhn check
    "llámame al +34 612 345 678",  # a phone number
    "call me on +1 415 555 2671 or 0034 612 345 678",
    "order number 1000234567890",  # 13 digits starting 1: no card network's
    "ISBN 9780201379624",  # 13 digits starting 9: no card network's
    "sent 2026-12-02T17:31:21Z, id 20261202173121000",  # timestamps, compact or not
    "ticket T-ABCD2345 and message SM0123456789abcdef0123456789abcdef",
    "hash 4111111111111111abcdef",  # digits glued to letters are an id, not a card
    "IBAN ES91 2100 0418 4502 0005 1332",  # a valid IBAN is what a refund needs: left as written
    "IBAN GB82 WEST 1234 5698 7654 32",
    "0000 0000 0000 0000",
])
def test_what_is_not_a_card_number_is_left_alone(text):
    assert mask(text).text == text and mask(text).kinds == frozenset()


def test_luhn_and_the_card_networks_prefixes():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert is_card_number("4242424242424242") and not is_card_number("4242424242424241")
    assert not is_card_number("1000000000000008")  # Luhn-valid but 1 is no card network's
    assert not is_card_number("424242424242")  # too short


def test_an_iban_is_told_by_its_mod_97_check():
    assert iban_valid("ES9121000418450200051332") and not iban_valid("ES9221000418450200051332")


# --- passwords, PINs, security codes ---------------------------------------------------------


@pytest.mark.parametrize("written, shown", [
    ("my password is hunter2", "my password is [secret ····]"),
    ("my password is now Tr0ub4dor&3!", "my password is now [secret ····]"),
    ("Password: x", "Password: [secret ····]"),
    ("user ana pwd=s3cr3t; thanks", "user ana pwd=[secret ····]; thanks"),
    ("new password: 'correct horse' ok", "new password: [secret ····] ok"),
    ('the password is "hunter 2".', "the password is [secret ····]."),
    ("mi contraseña es perro123.", "mi contraseña es [secret ····]."),
    ("contraseña: gato", "contraseña: [secret ····]"),
    ("Mi clave es Abc!234 y no entra", "Mi clave es [secret ····] y no entra"),
    ("la contraseña nueva es: Sol2024", "la contraseña nueva es: [secret ····]"),
    ("clave de acceso: 998877", "clave de acceso: [secret ····]"),
    ("my PIN is 1234", "my PIN is [secret ····]"),
])
def test_a_written_password_or_pin_is_masked_and_the_words_stay(written, shown):
    masked = mask(written)
    assert (masked.text, masked.kinds) == (shown, {PASSWORD})


@pytest.mark.parametrize("written, shown", [
    ("CVV: 123", "CVV: [secret ····]"),
    ("el código de seguridad es 4567", "el código de seguridad es [secret ····]"),
    ("cvc 999 exp 12/27", "cvc [secret ····] exp 12/27"),
])
def test_a_card_security_code_is_masked_as_card_data(written, shown):
    masked = mask(written)
    assert (masked.text, masked.kinds) == (shown, {CARD})


@pytest.mark.parametrize("text", [
    "I forgot my password",
    "my password is not working",
    "the password is wrong.",
    "la contraseña es incorrecta",
    "mi clave es la misma de siempre",
    "la clave es que no funciona",
    "password reset please",
    "can you reset my pin? it is blocked",
    "the cvv field is missing",
    "pin 12",  # not a PIN's length
    "passport number please",
])
def test_talk_about_passwords_is_not_a_password(text):
    assert mask(text).text == text


# --- national ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("written, shown", [
    ("mi DNI es 12345678Z", "mi DNI es [DNI ····]"),
    ("DNI 12.345.678-z", "DNI [DNI ····]"),
    ("NIE X1234567L.", "NIE [NIE ····]."),
    ("nie: Y-1234567-X", "nie: [NIE ····]"),
    ("SSN 123-45-6789", "SSN [SSN ····]"),
])
def test_national_ids_whose_check_passes_are_masked(written, shown):
    masked = mask(written)
    assert (masked.text, masked.kinds) == (shown, {NATIONAL_ID})


@pytest.mark.parametrize("text", [
    "DNI 12345678A",  # wrong check letter (Z)
    "NIE X1234567A",  # wrong check letter (L)
    "SSN 000-12-3456", "SSN 666-12-3456", "SSN 912-12-3456", "SSN 123-00-4567", "SSN 123-45-0000",
    "call 555-123-4567",  # a US phone number is 3-3-4
    "on 2026-12-02",
    "ref AB12345678Z",  # glued to letters
])
def test_ids_that_fail_their_check_or_are_something_else_are_left_alone(text):
    assert mask(text).text == text


def test_the_checks_themselves():
    assert dni_valid("12345678", "Z") and dni_valid("00000000", "t") and not dni_valid("12345678", "A")
    assert nie_valid("X", "1234567", "L") and nie_valid("y", "1234567", "X") and not nie_valid("Z", "1234567", "L")
    assert ssn_valid("123", "45", "6789") and not ssn_valid("987", "65", "4320")


def test_every_kind_at_once_is_reported():
    masked = mask("card 4242424242424242, password: x, DNI 12345678Z")
    assert masked.text == "card [card ····4242], password: [secret ····], DNI [DNI ····]"
    assert masked.kinds == {CARD, PASSWORD, NATIONAL_ID}


def test_a_password_that_is_a_card_number_is_masked_once_as_the_card():
    assert mask("password: 4242 4242 4242 4242").text == "password: [card ····4242]"


# --- properties: idempotent, and never a digit run that was not there ---------------------------

WORDS = ["password", "contraseña", "clave", "pwd", "PIN", "CVV", "is", "es", "now", ":", "=", " ", " ", "-", "+",
         ".", "x", "hunter2", "4242", "4242424242424242", "4242 4242 4242 4242", "5555-5555-5555-4444", "1234",
         "12345678Z", "X1234567L", "123-45-6789", "ES91 2100 0418 4502 0005 1332", "[card ····4242]",
         "[secret ····]", "[DNI ····]", "\n", '"', "not", "0", "7", "Z", "abc", "12345678", "]", "['", "·", "ES91"]
texts = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=25).map("".join),
    st.text(st.sampled_from("0123456789 -+:=xX[]·ZL"), max_size=60),
    st.text(max_size=80),
)
_RUN = re.compile(r"[0-9]+(?:[ -][0-9]+)*")


def digit_runs(text: str) -> list[str]:
    return [re.sub(r"[ -]", "", run) for run in _RUN.findall(text)]


@settings(max_examples=400, deadline=None)
@given(texts)
@example("4242 4242 4242 4242 4242 4242 4242 4242")
@example("pwd=pwd=x")
@example("password: [secret ····]: 4242424242424242")
@example("PIN\n4242password:password")  # a PIN glued to a word is no PIN: masking it made "]password:" anew
@example("4242424242424242 12345678Z")  # a DNI at a card's end: the card is found whether the DNI is masked or not
def test_masking_is_idempotent_and_never_lengthens_a_digit_run(text):
    once = mask(text)
    twice = mask(once.text)
    assert twice.text == once.text and twice.kinds == frozenset()  # nothing left that passes a check
    before = digit_runs(text)
    for run in digit_runs(once.text):  # a marker's last four, or digits that were there already
        assert any(run in original for original in before), (run, once.text)


# --- addresses and numbers, for logs ----------------------------------------------------------


@pytest.mark.parametrize("text, shown", [
    ("550 5.1.1 <ana.garcia@cliente.example.es>: Recipient address rejected",
     "550 5.1.1 <a***@cliente.example.es>: Recipient address rejected"),
    ("thread email:ana@example.com:<root@mail.example.com>", "thread email:a***@example.com:<r***@mail.example.com>"),
    ("The 'To' number +34600111222 is not a valid phone number.", "The 'To' number +34******222 is not a valid phone number."),
    ("sms:+34 612 345 678 wrote", "sms:+34******678 wrote"),
    ("whatsapp:+14155552671", "whatsapp:+14******671"),
    ("llamar al 612345678", "llamar al ******678"),
    ("error 21610 for SM0123456789abcdef0123456789abcdef at 2026-12-02T17:31:21.123+00:00 port 9092",
     "error 21610 for SM0123456789abcdef0123456789abcdef at 2026-12-02T17:31:21.123+00:00 port 9092"),
])
def test_addresses_and_phone_numbers_are_masked_codes_sids_and_times_are_not(text, shown):
    assert mask_contact_details(text) == shown
    assert mask_contact_details(shown) == shown


def test_a_log_line_masks_sensitive_data_and_contact_details_both():
    assert mask_for_log("ana@example.com paid with 4242424242424242") == "a***@example.com paid with [card ····4242]"


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("ab.@+0123456789 -:x"), max_size=60) | st.text(max_size=60)
       | st.lists(st.sampled_from(WORDS + ["ana@example.com", "@", "+34", "612345678", "+34 612 345 678"]), max_size=20).map("".join))
@example("ana@example.comana@example.com")  # the second address reads as one only once the first is masked
@example("612345678123-45-6789")  # a phone number's kept digits must not complete an SSN
def test_log_masking_is_idempotent(text):
    assert mask_for_log(mask_for_log(text)) == mask_for_log(text)
