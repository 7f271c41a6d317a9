"""What intake reads out of an e-mail.

Every file in tests/fixtures/mail is a kind of message that has broken a parser
somewhere (its README says how); the tests below pin, for each, the new text a ticket
gets, the ids that thread it, the files it carries and whether it is noise.
"""
from __future__ import annotations

import hashlib
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.intake.mail import Attachment, MailParseError, ParsedMail, content_key, html_to_text, parse, strip_quoted

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
OWN = ("soporte@deskstream.example",)


def raw(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def mail(name: str) -> ParsedMail:
    return parse(raw(name), OWN)


def files(parsed: ParsedMail) -> list[tuple[str | None, str, int, str]]:
    return [(a.filename, a.content_type, a.size, a.sha256) for a in parsed.attachments]


def message(body: str = "Hola, no tengo internet.", **headers: str) -> bytes:
    built = EmailMessage()
    built["From"] = headers.pop("From", "Marta López <marta.lopez@example.es>")
    built["To"] = "soporte@deskstream.example"
    for name, value in headers.items():
        built[name.replace("_", "-")] = value
    built.set_content(body)
    return built.as_bytes()


def with_headers(headers: str, body: bytes = b"Hola, no tengo internet.\r\n") -> bytes:
    """A message written byte by byte, for headers EmailMessage would tidy up."""
    return headers.replace("\n", "\r\n").encode("utf-8") + b"\r\n" + body


# -- the corpus, one kind of mail at a time ----------------------------------------------


def test_a_plain_utf8_message_keeps_every_spanish_character():
    parsed = mail("01-plain-utf8-spanish.eml")
    assert parsed.text == (
        "Hola:\n\n"
        "¿Podéis ayudarme? Desde el sábado no tengo conexión en casa. El router\n"
        "muestra la luz roja y ya lo he reiniciado tres veces.\n\n"
        "¡Gracias de antemano! Mi número de cliente es 4815-162342.\n\n"
        "Marta López\n"
        "C/ Pingüino 12, Logroño"
    )
    assert parsed.full_text == parsed.text
    assert (parsed.from_address, parsed.from_name) == ("marta.lopez@example.es", "Marta López")
    assert parsed.to == ("soporte@deskstream.example", "jorge.ibanez@example.es")
    assert parsed.subject == "No tengo conexión desde el sábado"
    assert parsed.date == "2026-11-23T09:41:07.000Z"
    assert (parsed.message_id, parsed.in_reply_to, parsed.references) == ("CAF3k9x2=Yq7mZ@mail.example.es", None, ())
    assert (parsed.attachments, parsed.noise) == ((), None)


def test_an_html_only_message_reads_as_the_text_its_reader_saw():
    parsed = mail("02-html-only.eml")
    assert parsed.text == (
        "Buenos días,\n\n"
        "Os escribo porque la última factura no cuadra con lo contratado:\n\n"
        "Concepto | Contratado | Facturado\n"
        "Fibra 600 Mb | 30,00 € | 45,00 €\n"
        "Línea móvil | 10,00 € | 10,00 €\n\n"
        "Lo que necesito:\n\n"
        "- Que me devolváis los 15 € de diferencia\n"
        "- Que corrijáis la tarifa «Fibra 600» & la permanencia\n\n"
        "El contrato está en mi área de cliente.\n\n"
        "Un saludo,\n"
        "Jorge Ibáñez"
    )
    assert "Incidencia factura" not in parsed.full_text  # the <title>
    assert "font-family" not in parsed.full_text and "tracking" not in parsed.full_text
    assert "Solo para Outlook" not in parsed.full_text
    assert (parsed.subject, parsed.from_address, parsed.attachments) == ("Incidencia con la factura", "jorge.ibanez@example.es", ())


def test_the_plain_alternative_wins_over_the_html_one():
    parsed = mail("03-alternative-text-and-html.eml")
    assert parsed.text == (
        "Hola,\n\n"
        "el técnico *no vino* ayer entre las 9:00 y las 14:00 como estaba previsto.\n"
        "¿Podéis darme otra cita para esta semana?\n\n"
        "Gracias,\n"
        "Lucía"
    )
    assert (parsed.from_name, parsed.subject, parsed.attachments) == ("Lucía Fernández", "Cita del técnico", ())
    assert parsed.message_id == "CAJh9Zk1n+Q0Bx=fV2w@mail.gmail.com"


def test_the_body_is_found_deep_inside_mixed_related_alternative_and_the_rest_are_files():
    parsed = mail("04-nested-related-with-pdf.eml")
    assert parsed.text == (
        "Buenas tardes:\n\n"
        "Adjunto el contrato firmado y una captura del error que me sale al entrar\n"
        "en el área de cliente.\n\n"
        "[image: captura.png]\n\n"
        "Un saludo,\n"
        "Pablo Gil"
    )
    assert files(parsed) == [
        (None, "image/png", 73, "97a3a410c9bca540512251c37ce63982edccbed54c6f2e1d06ec717b9f753e29"),
        ("Contrato firmado (página 1).pdf", "application/pdf", 142, "93e31154c364805a3ef8c904bc257f5ef77600c31b67d392704cd6e1e9cd0657"),
    ]
    image, pdf = parsed.attachments
    assert image.content.startswith(b"\x89PNG\r\n") and pdf.content.startswith(b"%PDF-1.4")
    assert parsed.date == "2026-11-23T15:20:00.000Z"


def test_latin1_quoted_printable_comes_out_with_its_accents_and_unwrapped_soft_breaks():
    parsed = mail("05-latin1-quoted-printable.eml")
    assert parsed.text == (
        "Buenas tardes:\n\n"
        "Me he mudado a Pamplona y quiero trasladar la línea de fibra al nuevo domicilio, "
        "que está en la calle Estafeta 23, 2º izquierda. ¿Cuándo podría venir el técnico? "
        "¡Es bastante urgente porque teletrabajo! También quería saber si mantengo la antigüedad.\n\n"
        "Atentamente,\n"
        "Iñaki Núñez"
    )
    assert (parsed.from_name, parsed.subject) == ("Iñaki Núñez", "Traslado de línea")


def test_cp1252_bytes_declared_as_latin1_are_read_as_cp1252():
    parsed = mail("06-cp1252-declared-as-latin1.eml")
    assert parsed.text == (
        "Hola,\n\n"
        "Me habéis cobrado 49,90 € por el “Pack Fútbol”… y yo nunca lo pedí – quiero la devolución.\n\n"
        "Saludos,\n"
        "Rosa Díaz"
    )
    assert "\r" not in parsed.full_text
    assert parsed.message_id == "000801d9a1b2$3c4d5e60$0a00a8c0@PCROSA"


def test_encoded_words_in_two_charsets_make_one_subject():
    parsed = mail("07-encoded-word-subject.eml")
    assert parsed.subject == "Re: Factura duplicada de octubre: ¿la pagué dos veces? “12 €”"
    assert (parsed.from_address, parsed.from_name) == ("bego.aguero@example.es", "Begoña Agüero")
    assert parsed.date == "2026-11-24T10:00:00.000Z"
    assert parsed.text == "Me aparece el cargo dos veces en el banco. Adjunto nada, solo aviso."


def test_a_message_without_message_id_is_keyed_by_its_bytes():
    parsed = mail("08-no-message-id.eml")
    assert parsed.message_id is None
    assert content_key(parsed, raw("08-no-message-id.eml")) == "sha256:" + hashlib.sha256(raw("08-no-message-id.eml")).hexdigest()
    assert parsed.text == "Os reenvío la autorización firmada para el cambio de titular.\nUn saludo, Carmen (oficina de Huesca)"


def test_a_message_without_content_type_is_utf8_plain_text_when_it_decodes():
    parsed = mail("09-no-content-type.eml")
    assert parsed.text == (
        "La copia nocturna ha fallado otra vez: no hay conexión con el servidor.\n"
        "Según el registro, el corte empezó a las 02:47."
    )
    assert (parsed.from_address, parsed.from_name) == ("backup@nas.example.es", None)


def test_an_empty_charset_over_cp1252_bytes_falls_back_to_cp1252():
    assert mail("10-empty-charset.eml").text == (
        "¿Puedo pasarme a la tarifa de 300 Mb sin penalización? Pago 35 € al mes.\nJavier"
    )


def test_a_nonsense_content_type_is_read_as_plain_text():
    assert mail("11-invalid-content-type.eml").text == "¿Cuándo me enviáis el router nuevo? Llevo una semana esperando."


def test_an_unknown_charset_name_falls_back_to_utf8():
    assert mail("12-unknown-charset.eml").text == "La velocidad por la noche baja a 20 Mb. Contraté 600 Mb. ¿Qué pasa?\nRaúl Peña"


def test_a_gmail_reply_keeps_its_thread_and_loses_its_quote_and_signature():
    parsed = mail("13-gmail-reply.eml")
    assert parsed.text == (
        "Sigue sin funcionar. He cambiado el cable como me dijisteis y el router\n"
        "sigue con la luz roja."
    )
    assert "> Prueba a cambiar el cable de fibra" in parsed.full_text and "Tel. 600 000 000" in parsed.full_text
    assert parsed.message_id == "CAF3k9x3+Rr8nA@mail.example.es"
    assert parsed.in_reply_to == "T-1A2B3C4D.20261123T090000.1@deskstream.example"
    assert parsed.references == ("CAF3k9x2=Yq7mZ@mail.example.es", "T-1A2B3C4D.20261123T090000.1@deskstream.example")
    assert parsed.subject == "Re: [#T-1A2B3C4D] No tengo conexión desde el sábado"
    assert parsed.noise is None


def test_an_outlook_reply_loses_everything_from_mensaje_original():
    parsed = mail("14-outlook-reply.eml")
    assert parsed.text == (
        "Buenos días:\n\n"
        "Ya he enviado el justificante de pago por la web. ¿Me confirmáis que os ha llegado?\n\n"
        "Saludos,\n"
        "Pedro Martín"
    )
    assert parsed.full_text.endswith("Hola Pedro, nos falta el justificante de pago para reactivar la línea.")
    assert (parsed.in_reply_to, parsed.references) == ("T-5E6F7A8B.20261123T081500.1@deskstream.example", ())
    assert (parsed.from_name, parsed.subject) == ("Pedro Martín", "RE: [#T-5E6F7A8B] Pago pendiente")


def test_an_outlook_web_html_reply_loses_its_from_sent_history_and_app_footer():
    parsed = mail("15-outlook-web-html-reply.eml")
    assert parsed.text == "Thanks, I'll try the factory reset tonight and let you know."
    assert "From: Deskstream Support <soporte@deskstream.example>\nSent: Monday" in parsed.full_text
    assert parsed.references == ("T-9C0D1E2F.20261123T091500.1@deskstream.example",)
    assert parsed.date == "2026-11-23T18:30:12.000Z"


def test_format_flowed_is_unwrapped_and_answers_between_quotes_are_kept():
    parsed = mail("21-thunderbird-flowed-inline.eml")
    assert parsed.text == (
        "Es un ZTE F680, con la pegatina de la operadora en la parte de abajo del router, junto al número de serie.\n\n"
        "Desde el martes por la tarde, más o menos a las 18:00."
    )
    assert "> Hola Ana, ¿qué modelo de router tienes? Suele venir en una pegatina debajo del aparato." in parsed.full_text


def test_an_iphone_reply_loses_its_enviado_desde_mi_iphone_and_quoted_attribution():
    parsed = mail("22-iphone-reply.eml")
    assert parsed.text == (
        "Vale, mañana por la mañana estoy en casa. Si el técnico llega antes de las 9, que me llame al móvil, por favor."
    )
    assert parsed.subject == "Re: [#T-1A2B3C4D] Visita del técnico"


def test_attachment_names_are_decoded_however_the_client_encoded_them():
    parsed = mail("23-attachment-filenames.eml")
    assert parsed.text == "Os mando el registro, una foto del módem y la configuración que tengo."
    assert files(parsed) == [
        ("registro_conexión.txt", "text/plain", 60, "dbe277ec4d36aea163fc56ce09b4d5b94dfaa066ad1b48beac75804b0fb77ac9"),
        ("Foto del módem.jpg", "image/jpeg", 22, "d20f6ffd523b78a86cd2f916fa34af5d1918d75f7b142237c752ad6b254213ab"),
        ("Configuración del módem.cfg", "application/octet-stream", 25,
         "9c2704238651e6ebac1e34b624e6e247b8d47d22e876f4922837ba0f27297f32"),
    ]
    assert parsed.attachments[0].content == "12:00 sin señal\n12:05 sin señal\n12:10 reinicio del router\n".encode()


def test_every_attachment_hash_and_size_describe_its_content():
    for path in sorted(CORPUS.glob("*.eml")):
        for attachment in parse(path.read_bytes()).attachments:
            assert (attachment.size, attachment.sha256) == (len(attachment.content), hashlib.sha256(attachment.content).hexdigest())


def test_every_corpus_file_is_described_in_the_readme():
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    names = sorted(path.name for path in CORPUS.glob("*.eml"))
    assert len(names) >= 23
    assert [name for name in names if f"`{name}`" not in readme] == []


# -- noise: what must never open a ticket --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "noise"),
    [
        ("16-out-of-office.eml", "auto-reply"),
        ("17-x-autoreply.eml", "auto-reply"),
        ("18-bulk-newsletter.eml", "bulk"),
        ("19-bounce.eml", "bounce"),
        ("20-own-outbound.eml", "own-mail"),
        ("01-plain-utf8-spanish.eml", None),
        ("13-gmail-reply.eml", None),
        ("15-outlook-web-html-reply.eml", None),
    ],
)
def test_robots_and_our_own_mail_are_noise(name, noise):
    assert mail(name).noise == noise


def test_our_outbound_marker_is_own_mail_even_without_knowing_our_addresses():
    assert parse(raw("20-own-outbound.eml")).noise == "own-mail"


def test_mail_from_one_of_our_addresses_is_own_mail_whatever_its_case():
    assert parse(raw("01-plain-utf8-spanish.eml"), ("MARTA.Lopez@example.ES",)).noise == "own-mail"


def test_a_bounce_is_a_bounce_even_though_it_returns_our_own_mail():
    parsed = mail("19-bounce.eml")
    assert parsed.noise == "bounce"
    assert (parsed.from_address, parsed.from_name) == ("mailer-daemon@mx.deskstream.example", "Mail Delivery System")
    report, original = parsed.attachments
    assert (report.filename, report.content_type) == (None, "message/delivery-status")
    assert report.content.startswith(b"Reporting-MTA: dns; mx.deskstream.example")
    assert (original.filename, original.content_type) == (None, "message/rfc822")
    assert original.content.startswith(b"From: Soporte Deskstream <soporte@deskstream.example>")
    assert b"X-Deskstream-Ticket: T-7A8B9C0D" in original.content
    assert parsed.text.startswith("This is the mail system at host mx.deskstream.example.")


@pytest.mark.parametrize(
    ("headers", "noise"),
    [
        ({"X_Deskstream_Ticket": "T-1A2B3C4D"}, "own-mail"),
        ({"From": "postmaster@example.es"}, "bounce"),
        ({"From": "Mailer-Daemon@example.es"}, "bounce"),
        ({"Return_Path": "<>"}, "bounce"),
        ({"Auto_Submitted": "auto-generated"}, "auto-reply"),
        ({"Auto_Submitted": "auto-replied; owner-email=ana@example.es"}, "auto-reply"),
        ({"Auto_Submitted": "no"}, None),
        ({"X_Autorespond": "yes"}, "auto-reply"),
        ({"X_Auto_Response_Suppress": "All"}, None),  # a request to others, on ordinary Exchange mail
        ({"Precedence": "junk"}, "bulk"),
        ({"Precedence": "LIST"}, "bulk"),
        ({"Precedence": "first-class"}, None),
        ({"List_Id": "Clientes <clientes.example.es>"}, "bulk"),
        ({"X_Deskstream_Ticket": "T-1", "Auto_Submitted": "auto-replied", "Precedence": "bulk"}, "own-mail"),
        ({"Return_Path": "<>", "Auto_Submitted": "auto-replied", "Precedence": "bulk"}, "bounce"),
        ({"Auto_Submitted": "auto-replied", "Precedence": "bulk"}, "auto-reply"),
    ],
)
def test_each_loop_signal_alone_makes_noise_and_the_first_one_names_it(headers, noise):
    assert parse(message(**headers), OWN).noise == noise


# -- attachments built at run time ---------------------------------------------------------


def test_a_20_mb_attachment_is_decoded_whole():
    payload = bytes(range(256)) * (20 * 1024 * 1024 // 256)
    built = EmailMessage()
    built["From"] = "Marta López <marta.lopez@example.es>"
    built["To"] = "soporte@deskstream.example"
    built["Subject"] = "Volcado del router"
    built.set_content("Adjunto el volcado.")
    built.add_attachment(payload, maintype="application", subtype="octet-stream", filename="volcado.bin")
    parsed = parse(built.as_bytes())
    assert parsed.text == "Adjunto el volcado."
    [attachment] = parsed.attachments
    assert (attachment.filename, attachment.content_type, attachment.size) == ("volcado.bin", "application/octet-stream", 20 * 1024 * 1024)
    assert attachment.sha256 == hashlib.sha256(payload).hexdigest()
    assert attachment.content == payload


def test_an_attachment_keeps_its_bytes_out_of_its_repr():
    attachment = Attachment("a.bin", "application/octet-stream", 3, "x", b"\x00\x01\x02")
    assert "content=" not in repr(attachment) and "\\x00" not in repr(attachment)


def test_a_text_file_attached_is_a_file_and_not_the_body():
    built = EmailMessage()
    built["From"] = "marta.lopez@example.es"
    built.set_content("El registro va adjunto.")
    built.add_attachment("línea caída a las 12:00\n", filename="registro.txt")
    parsed = parse(built.as_bytes())
    assert parsed.text == "El registro va adjunto."
    assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == [
        ("registro.txt", "text/plain", "línea caída a las 12:00\n".encode())]


def test_a_mail_with_only_a_file_has_empty_text():
    built = EmailMessage()
    built["From"] = "marta.lopez@example.es"
    built.add_attachment(b"%PDF-1.4\n", maintype="application", subtype="pdf", filename="factura.pdf")
    parsed = parse(built.as_bytes())
    assert (parsed.text, parsed.full_text, [a.filename for a in parsed.attachments]) == ("", "", ["factura.pdf"])


# -- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "subject"),
    [
        ("=?iso-8859-1?Q?Factura_duplicada_de_octubre_=F1?=", "Factura duplicada de octubre ñ"),
        ("=?UTF-8?B?wr9Qb3IgcXXDqSBubyBmdW5jaW9uYQ==?=", "¿Por qué no funciona"),
        ("=?utf-8?B?wr9Qb3IgcXXD?= =?utf-8?B?qSBubw==?= funciona?", "¿Por qué no funciona?"),  # é split in two words
        ("Re: =?windows-1252?Q?=93Pack_F=FAtbol=94?=\r\n\t  cobrado", "Re: “Pack Fútbol” cobrado"),
        ("=?koi8-r?B?8NLJ18XU?=", "Привет"),
        ("=?utf-8?B?!!!roto?= sin arreglo", "=?utf-8?B?!!!roto?= sin arreglo"),
        ("=?x-desconocido?Q?caf=C3=A9?=", "café"),
        ("Sin   conexión\r\n desde   ayer", "Sin conexión desde ayer"),
    ],
)
def test_subjects_are_decoded_in_any_charset_and_their_whitespace_collapsed(header, subject):
    raw_mail = with_headers(f"From: marta.lopez@example.es\nSubject: {header}\n".replace("\r\n", "\n "))
    assert parse(raw_mail).subject == subject


def test_a_missing_subject_is_empty():
    assert parse(with_headers("From: marta.lopez@example.es\n")).subject == ""


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Mon, 23 Nov 2026 10:41:07 +0100", "2026-11-23T09:41:07.000Z"),
        ("Mon, 23 Nov 2026 23:30:00 -0500", "2026-11-24T04:30:00.000Z"),
        ("23 Nov 2026 09:41:07 GMT", "2026-11-23T09:41:07.000Z"),
        ("Mon, 23 Nov 2026 09:41:07 -0000", "2026-11-23T09:41:07.000Z"),
        ("ayer por la tarde", None),
        ("", None),
    ],
)
def test_dates_become_rfc3339_utc_or_none(date, expected):
    assert parse(with_headers(f"From: marta.lopez@example.es\nDate: {date}\n")).date == expected


def test_a_missing_date_is_none():
    assert parse(with_headers("From: marta.lopez@example.es\n")).date is None


def test_ids_lose_their_brackets_and_comments_and_repeat_only_once():
    parsed = parse(with_headers(
        "From: marta.lopez@example.es\n"
        "Message-ID:   <abc@mail.example.es>  \n"
        "In-Reply-To: <first@example.es> (Soporte's message of Mon, 23 Nov 2026)\n"
        "References: <root@example.es>\n <first@example.es>\n\t<root@example.es>\n"
    ))
    assert (parsed.message_id, parsed.in_reply_to, parsed.references) == (
        "abc@mail.example.es", "first@example.es", ("root@example.es", "first@example.es"))


def test_empty_or_bracket_less_ids():
    parsed = parse(with_headers("From: marta.lopez@example.es\nMessage-ID: <>\nIn-Reply-To: bare@example.es\nReferences:\n"))
    assert (parsed.message_id, parsed.in_reply_to, parsed.references) == (None, "bare@example.es", ())


def test_the_sender_is_the_first_usable_address_in_from():
    parsed = parse(with_headers(
        'From: "López, Marta" <Marta.Lopez@Example.ES>\nTo: a@example.es, "B" <B@example.es>\nCc: a@example.es, nadie\n'))
    assert (parsed.from_address, parsed.from_name) == ("marta.lopez@example.es", "López, Marta")
    assert parsed.to == ("a@example.es", "b@example.es")


def test_an_address_hidden_in_an_encoded_display_name_is_text_not_the_sender():
    parsed = parse(with_headers("From: =?utf-8?q?Eve=0D=0ABcc:_victim@evil.example?= <eve@example.es>\n"))
    assert (parsed.from_address, parsed.from_name) == ("eve@example.es", "Eve Bcc: victim@evil.example")
    parsed = parse(with_headers("From: =?utf-8?b?RXZlIDxtYWxsb3J5QGV2aWwuZXhhbXBsZT4=?= <eve@example.es>\n"))
    assert (parsed.from_address, parsed.from_name) == ("eve@example.es", "Eve <mallory@evil.example>")


@pytest.mark.parametrize("sender", ['"alice@example.org\\"<bob@example.com>"', '"victim@example.org,"@evil.example'])
def test_addresses_that_a_to_header_would_read_otherwise_are_no_sender(sender):
    with pytest.raises(MailParseError, match="no usable From address"):
        parse(with_headers(f"From: {sender}\n"))


# -- bodies built at run time ---------------------------------------------------------------


def test_crlf_and_cr_line_endings_become_newlines():
    parsed = parse(b"From: marta.lopez@example.es\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nuno\r\ndos\rtres\r\n")
    assert parsed.full_text == "uno\ndos\ntres"


@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/plain; charset=utf-8", "Línea caída, ¿cuándo volverá?".encode(), "Línea caída, ¿cuándo volverá?"),
        ("text/plain; charset=ISO-8859-1", "Línea caída, ¿cuándo volverá?".encode("latin-1"), "Línea caída, ¿cuándo volverá?"),
        ("text/plain; charset=windows-1252", "“Fútbol” 10 €".encode("cp1252"), "“Fútbol” 10 €"),
        ("text/plain; charset=us-ascii", "señal".encode(), "señal"),  # the label lies; the bytes are UTF-8
        ("text/plain", "señal 5 €".encode("cp1252"), "señal 5 €"),
        ("text/plain; charset=klingon", "señal 5 €".encode("cp1252"), "señal 5 €"),
        ("text/plain; charset=utf-8", "señal ".encode() + b"\xff" + " año".encode(), "señal \ufffd año"),
        ("text/plain; charset=utf-8", "señal 5 €".encode("cp1252"), "señal 5 €"),  # not UTF-8 at all
        ("text/plain; charset=base64", "señal".encode(), "señal"),  # a codec, but not a text one
    ],
)
def test_charsets_are_honoured_corrected_or_guessed(content_type, body, text):
    raw_mail = f"From: marta.lopez@example.es\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".encode() + body
    assert parse(raw_mail).text == text


def test_base64_bodies_are_decoded():
    raw_mail = with_headers(
        "From: marta.lopez@example.es\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n",
        b"wr9Qb3IgcXXDqSBubyBmdW5jaW9uYT8=\r\n",
    )
    assert parse(raw_mail).text == "¿Por qué no funciona?"


def test_a_part_without_headers_is_plain_text_and_an_attached_message_is_a_file():
    raw_mail = (
        b"From: marta.lopez@example.es\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\n\r\nOs reenv\xc3\xado el aviso.\r\n"
        b"--x\r\nContent-Type: message/rfc822\r\n\r\nFrom: banco@example.es\r\nSubject: Aviso\r\n\r\nSu recibo\r\n--x--\r\n"
    )
    parsed = parse(raw_mail)
    assert parsed.text == "Os reenvío el aviso."
    assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == [
        (None, "message/rfc822", b"From: banco@example.es\r\nSubject: Aviso\r\n\r\nSu recibo")]


def test_a_multipart_without_a_boundary_is_read_as_text():
    raw_mail = with_headers("From: marta.lopez@example.es\nContent-Type: multipart/mixed\n", b"Hola, sigo sin red.\r\n")
    assert parse(raw_mail).text == "Hola, sigo sin red."


# -- unusable bytes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_mail",
    [
        b"",
        b"\r\n  \r\n",
        "From: marta.lopez@example.es\r\n\r\nhola".encode().decode(),  # str, not bytes
        None,
        b"Subject: Mi clave es 1234\r\n\r\nMi DNI es 12345678Z\r\n",
        b"From: Marta Lopez\r\nSubject: Mi clave es 1234\r\n\r\nMi DNI es 12345678Z\r\n",
        b"From: <>\r\n\r\nMi DNI es 12345678Z\r\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
)
def test_bytes_that_are_not_a_usable_mail_are_refused_without_quoting_them(raw_mail):
    with pytest.raises(MailParseError) as refused:
        parse(raw_mail)
    assert isinstance(refused.value, ValueError)
    for secret in ("1234", "12345678Z", "Marta", "marta.lopez"):
        assert secret not in str(refused.value)


def test_absurdly_nested_mime_is_refused():
    inner = b"Content-Type: text/plain\r\n\r\nhola\r\n"
    for level in range(100):
        boundary = f"b{level}".encode()
        header = b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n"
        inner = header + b"--" + boundary + b"\r\n" + inner + b"\r\n--" + boundary + b"--\r\n"
    with pytest.raises(MailParseError):
        parse(b"From: marta.lopez@example.es\r\n" + inner)


# -- content keys ----------------------------------------------------------------------------


def test_a_message_id_is_the_content_key():
    assert content_key(mail("01-plain-utf8-spanish.eml"), raw("01-plain-utf8-spanish.eml")) == "mid:CAF3k9x2=Yq7mZ@mail.example.es"


def test_the_same_bytes_always_get_the_same_key_and_other_bytes_another():
    first = raw("08-no-message-id.eml")
    again = bytes(first)
    edited = first.replace(b"Huesca", b"Teruel")
    assert content_key(parse(first), first) == content_key(parse(again), again)
    assert content_key(parse(edited), edited) != content_key(parse(first), first)
    assert content_key(parse(first), first).startswith("sha256:")


# -- html_to_text ----------------------------------------------------------------------------


def test_html_paragraphs_line_breaks_and_divs_become_lines():
    assert html_to_text("<p>Hola,</p><p>sigo sin red.<br>Desde ayer.</p><div>Marta</div><div><br></div><div>Tel. 600</div>") == (
        "Hola,\n\nsigo sin red.\nDesde ayer.\n\nMarta\n\nTel. 600"
    )


def test_html_scripts_styles_and_head_are_dropped_even_when_head_is_never_closed():
    assert html_to_text("<html><head><title>Aviso</title><style>p{}</style><p>Hola</p><script>x()</script>") == "Hola"


def test_html_lists_get_dashes_and_nested_lists_an_indent():
    assert html_to_text("<ul><li>router</li><li><p>cable</p><ol><li>fibra<li>red</ol></li></ul><p>fin</p>") == (
        "- router\n- cable\n  - fibra\n  - red\n\nfin"
    )


def test_html_tables_become_rows_of_cells():
    assert html_to_text("<table><tr><td>Fibra</td><td></td><td>30 &euro;</td></tr><tr><td>M&oacute;vil</td></tr></table>") == (
        "Fibra | 30 €\nMóvil"
    )


def test_html_entities_are_unescaped_spaces_collapsed_and_links_keep_their_text():
    html = '<p>  Ni&ntilde;o&nbsp;&amp;\n   ma&#241;ana &lt;ya&gt;  <a href="https://x.example/">aqu&iacute;</a>\u200b</p>'
    assert html_to_text(html) == "Niño & mañana <ya> aquí"


def test_html_blank_lines_are_at_most_one():
    assert html_to_text("<p>uno</p><br><br><br><br><p>dos</p>") == "uno\n\ndos"


def test_html_headings_and_blockquotes_are_blocks_and_cited_quotes_are_marked():
    assert html_to_text("<h1>Aviso</h1>texto<blockquote style='margin-left:40px'>sangrado</blockquote>") == "Aviso\n\ntexto\n\nsangrado"
    assert html_to_text('<div>Vale</div><blockquote type="cite">Hola<br>¿qué tal?</blockquote>') == "Vale\n\n> Hola\n> ¿qué tal?"


def test_a_gmail_html_reply_strips_like_its_plain_text():
    html = (
        '<div dir="ltr">Sigue igual.</div><br><div class="gmail_quote"><div class="gmail_attr">El lun, 23 nov 2026 '
        'a las 10:00, Soporte (&lt;soporte@deskstream.example&gt;) escribió:<br></div><blockquote class="gmail_quote">'
        'Hola Marta,<br><br>prueba otra vez.</blockquote></div>'
    )
    assert strip_quoted(html_to_text(html)) == "Sigue igual."


def test_broken_html_still_gives_its_text():
    assert html_to_text("<p>Hola <b>Marta</p></div></div><p>adi&oacute;s") == "Hola Marta\n\nadiós"
    assert html_to_text("") == ""


# -- strip_quoted ----------------------------------------------------------------------------


def test_quoted_lines_and_their_spanish_attribution_go():
    text = "Sigue igual.\n\nEl lun, 2 nov 2026 a las 10:00, Ana (<ana@example.es>) escribió:\n\n> ¿Sigue igual?\n> Ana"
    assert strip_quoted(text) == "Sigue igual."


def test_an_english_attribution_wrapped_over_two_lines_goes_too():
    text = "Still down.\n\nOn Mon, 2 Nov 2026 at 10:00, Deskstream Support <\nsoporte@deskstream.example> wrote:\n> Is it still down?"
    assert strip_quoted(text) == "Still down."


def test_answers_between_quotes_are_kept():
    text = "> ¿Qué router?\nUn ZTE.\n> ¿Desde cuándo?\nDesde ayer."
    assert strip_quoted(text) == "Un ZTE.\nDesde ayer."


def test_a_line_ending_in_escribio_that_quotes_nothing_stays():
    assert strip_quoted("El técnico me escribió:\nque vendría hoy.") == "El técnico me escribió:\nque vendría hoy."


@pytest.mark.parametrize(
    "history",
    [
        "-----Original Message-----\nFrom: Soporte\nSent: Monday\n\nHola",
        "-----Mensaje original-----\nDe: Soporte\nEnviado el: lunes\n\nHola",
        "________________________________\nFrom: Soporte <soporte@deskstream.example>\nSent: Monday, November 23, 2026 9:15\nHola",
        "De: Soporte <soporte@deskstream.example>\nEnviado: lunes, 23 de noviembre de 2026 9:15\nPara: Marta\nHola",
        "*From:* Soporte\n*Sent:* Monday\nHola",
    ],
)
def test_outlook_history_goes_from_its_separator_or_header_block_on(history):
    assert strip_quoted(f"Ya está pagado.\n\n{history}") == "Ya está pagado."


def test_a_from_line_that_is_not_an_outlook_header_block_stays():
    text = "From: la tienda de la calle Mayor\nme dijeron que os escribiera."
    assert strip_quoted(text) == text


@pytest.mark.parametrize("delimiter", ["-- ", "--"])
def test_the_signature_goes_from_its_delimiter_on(delimiter):
    assert strip_quoted(f"Sigue sin red.\n{delimiter}\nMarta López\nTel. 600 000 000") == "Sigue sin red."


@pytest.mark.parametrize(
    "footer", ["Sent from my iPhone", "Enviado desde mi iPhone", "Enviado desde mi móvil Huawei", "Get Outlook for Android"]
)
def test_phone_footers_at_the_end_go(footer):
    assert strip_quoted(f"Vale, gracias.\n\n{footer}\n") == "Vale, gracias."


def test_a_phone_footer_in_the_middle_of_the_text_stays():
    text = "Me sale «Enviado desde mi iPhone» en todos los correos:\nEnviado desde mi iPhone\n¿Cómo lo quito?"
    assert strip_quoted(text) == text


def test_a_message_that_is_only_quotation_is_kept_whole():
    text = "El lun, 2 nov 2026 a las 10:00, Ana <ana@example.es> escribió:\n> Mira esto\n> (el aviso del banco)"
    assert strip_quoted(text) == text
    assert strip_quoted("-- \nMarta") == "-- \nMarta"


def test_stripped_text_is_trimmed_with_at_most_one_blank_line():
    assert strip_quoted("\n\n  Hola   \n\n\n\nadiós  \n\n> cita\n") == "Hola\n\nadiós"
