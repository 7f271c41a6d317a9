"""What deskstream says to customers, in their language: short, plain, and with the
two things a waiting customer wants to know (that we have it, and how long)."""
from __future__ import annotations

from string import Formatter
from typing import Any

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
    }
    fields = {field for _, field, _, _ in Formatter().parse(texts[language]) if field}
    return texts[language].format(**{field: values.get(field, "") for field in fields})


def wait_sentence(language: str, minutes: Any) -> str:
    if minutes is None:
        return ""
    minutes = max(int(minutes), 1)
    sentences = WAIT_SENTENCES[language]
    return sentences["one"] if minutes == 1 else sentences["many"].format(minutes=minutes)
