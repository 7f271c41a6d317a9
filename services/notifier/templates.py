"""What deskstream says to customers, in their language: short, plain, and with the
two things a waiting customer wants to know (that we have it, and how long)."""
from __future__ import annotations

from string import Formatter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deskstream.events import parse_timestamp

TEMPLATES: dict[str, dict[str, str]] = {
    "acknowledgement": {
        "en": (
            "Hi{name_part}, we have your message. Your ticket number is {ticket_id}. "
            "{wait_sentence}"
        ),
        "es": (
            "Hola{name_part}, hemos recibido tu mensaje. Tu número de ticket es {ticket_id}. "
            "{wait_sentence}"
        ),
    },
}

TEMPLATES["agent_reply"] = {
    "en": "{text}\n\n{agent_first}, Support ({ticket_id})",
    "es": "{text}\n\n{agent_first}, Soporte ({ticket_id})",
}

# Outage notices: what is broken, what ops said, when it should work again, and (first
# notice) that nobody needs to write to us about it.
TEMPLATES["incident_declared"] = {
    "en": ("Hi{name_part}, we know about a problem affecting {service}{region_part}. {message} {fix_sentence}"
           "There is no need to contact us about it: we will write again when it changes ({incident_id})."),
    "es": ("Hola{name_part}, sabemos que hay un problema que afecta a {service}{region_part}. {message} {fix_sentence}"
           "No hace falta que nos escribas por ello: te avisaremos cuando cambie ({incident_id})."),
}
TEMPLATES["incident_updated"] = {
    "en": "Update on the problem affecting {service}{region_part}: {message} {fix_sentence}({incident_id})",
    "es": "Novedades sobre el problema que afecta a {service}{region_part}: {message} {fix_sentence}({incident_id})",
}
TEMPLATES["incident_resolved"] = {
    "en": "Solved: {service}{region_part} works normally again. {message} Thank you for your patience ({incident_id}).",
    "es": "Resuelto: {service}{region_part} vuelve a funcionar con normalidad. {message} Gracias por tu paciencia ({incident_id}).",
}
# A new ticket about a known outage is answered at once with its status.
TEMPLATES["acknowledgement_incident"] = {
    "en": ("Hi{name_part}, we have your message. Your ticket number is {ticket_id}. It looks related to a problem we "
           "already know about, affecting {service}{region_part}: {message} {fix_sentence}We will tell you when it is solved."),
    "es": ("Hola{name_part}, hemos recibido tu mensaje. Tu número de ticket es {ticket_id}. Parece relacionado con un "
           "problema que ya conocemos y que afecta a {service}{region_part}: {message} {fix_sentence}Te avisaremos "
           "cuando esté resuelto."),
}
# After resolution: how did it go? Why the answer matters, and how to give it on the
# channel: reply with a number (chat, SMS, WhatsApp), or one click (e-mail).
TEMPLATES["survey_reply"] = {
    "en": ("Hi{name_part}, your ticket {ticket_id} is solved. How did we do? Reply with a number from 1 (very bad) "
           "to 5 (very good), and a few words if you like: every answer is read and helps us improve."),
    "es": ("Hola{name_part}, tu ticket {ticket_id} está resuelto. ¿Qué tal lo hicimos? Responde con un número del 1 "
           "(muy mal) al 5 (muy bien), y unas palabras si quieres: leemos cada respuesta y nos ayuda a mejorar."),
}
TEMPLATES["survey_links"] = {
    "en": ("Hi{name_part}, your ticket {ticket_id} is solved. How did we do? One click is enough, and every answer "
           "is read and helps us improve:\n\n5 - Very good: {link_5}\n4 - Good: {link_4}\n3 - OK: {link_3}\n"
           "2 - Bad: {link_2}\n1 - Very bad: {link_1}"),
    "es": ("Hola{name_part}, tu ticket {ticket_id} está resuelto. ¿Qué tal lo hicimos? Basta con un clic, y leemos "
           "cada respuesta para mejorar:\n\n5 - Muy bien: {link_5}\n4 - Bien: {link_4}\n3 - Regular: {link_3}\n"
           "2 - Mal: {link_2}\n1 - Muy mal: {link_1}"),
}

# On the chat page a survey also comes as five buttons; each sends its reply as if typed.
SURVEY_CHOICES = {
    "en": ("5 · Very good", "4 · Good", "3 · OK", "2 · Bad", "1 · Very bad"),
    "es": ("5 · Muy bien", "4 · Bien", "3 · Regular", "2 · Mal", "1 · Muy mal"),
}


def survey_choices(language: str) -> list[dict[str, str]]:
    labels = SURVEY_CHOICES.get(language, SURVEY_CHOICES[DEFAULT_LANGUAGE])
    return [{"label": label, "reply": label.split(" ", 1)[0]} for label in labels]


# The subject of mail that answers no message of the customer's (a notice to a subscriber).
SUBJECTS = {
    "incident": {"en": "Service notice: {service}", "es": "Aviso de servicio: {service}"},
    "survey": {"en": "How did we do? {tag}", "es": "¿Qué tal lo hicimos? {tag}"},
}
REGION_PARTS = {"en": " in {region}", "es": " en {region}"}
FIX_SENTENCES = {
    "en": "We expect it to work again by {time} ({zone}) on {date}. ",
    "es": "Esperamos que vuelva a funcionar hacia las {time} ({zone}) del {date}. ",
}

WAIT_SENTENCES = {
    "en": {"one": "An agent will answer within about 1 minute.", "many": "An agent will answer within about {minutes} minutes."},
    "es": {"one": "Un agente te responderá en aproximadamente 1 minuto.", "many": "Un agente te responderá en aproximadamente {minutes} minutos."},
}
DEFAULT_LANGUAGE = "en"


class UnknownTemplate(KeyError):
    """A request names a template this notifier does not have."""


def render(template: str, language: str, params: dict[str, Any]) -> str:
    texts = TEMPLATES.get(template)
    if texts is None:
        raise UnknownTemplate(template)
    language = language if language in texts else DEFAULT_LANGUAGE
    name = str(params.get("name") or "").split(" ")[0]
    values = {
        **params,
        "name_part": f" {name}" if name else "",
        "wait_sentence": wait_sentence(language, params.get("wait_minutes")),
        "agent_first": str(params.get("agent_name") or "").split(" ")[0],
        "region_part": REGION_PARTS[language].format(region=params["region"]) if params.get("region") else "",
        "fix_sentence": fix_sentence(language, params.get("expected_fix_at"), params.get("timezone")),
        **{f"link_{score}": url for score, url in (params.get("links") or {}).items()},
    }
    fields = {field for _, field, _, _ in Formatter().parse(texts[language]) if field}
    return texts[language].format(**{field: values.get(field, "") for field in fields})


def subject(reason: str, language: str, params: dict[str, Any]) -> str:
    texts = SUBJECTS.get(reason, SUBJECTS["incident"])
    tag = f"[#{params['ticket_id']}]" if params.get("ticket_id") else ""
    return texts.get(language, texts[DEFAULT_LANGUAGE]).format(service=params.get("service", ""), tag=tag).strip()


def fix_sentence(language: str, expected_fix_at: str | None, zone: str | None) -> str:
    """When the fix is expected, in the customer's own time zone (UTC when unknown)."""
    if not expected_fix_at:
        return ""
    try:
        tz = ZoneInfo(zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz, zone = ZoneInfo("UTC"), "UTC"
    local = parse_timestamp(expected_fix_at).astimezone(tz)
    return FIX_SENTENCES[language].format(time=local.strftime("%H:%M"), zone=zone or "UTC", date=local.strftime("%Y-%m-%d"))


def wait_sentence(language: str, minutes: Any) -> str:
    if minutes is None:
        return ""
    minutes = max(int(minutes), 1)
    sentences = WAIT_SENTENCES[language]
    return sentences["one"] if minutes == 1 else sentences["many"].format(minutes=minutes)
