"""Canned answers: the macros file ops edit is checked whole when it is loaded,
placeholders are filled (or left visibly blank for the agent), and agents find
macros by typing words of them, with or without accents."""
from collections import Counter
from pathlib import Path

import pytest

from services.router import macros
from services.router.macros import Macro, MacroError, fill, load_macros, search

SHIPPED = load_macros()


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "macros.toml"
    path.write_text(body, encoding="utf-8")
    return path


def entry(id: str = "greeting-en", language: str = "en", title: str = "Greeting", text: str = "Hi {name}") -> str:
    return f'[[macro]]\nid = "{id}"\nlanguage = "{language}"\ntitle = "{title}"\ntext = """{text}"""\n'


# --- filling placeholders ---

def test_every_placeholder_is_replaced_by_its_value():
    text = "Hi {name}, ticket {ticket} is fixed by {fix_time}. {agent}"
    values = {"name": "Ana", "ticket": "T-7K2M9QX", "agent": "Omar", "fix_time": "18:30"}
    assert fill(text, values, "en") == "Hi Ana, ticket T-7K2M9QX is fixed by 18:30. Omar"


def test_a_missing_or_empty_value_shows_a_label_in_the_macros_language():
    text = "{name} {ticket} {agent} {fix_time}"
    assert fill(text, {}, "en") == "[customer name] [ticket number] [your name] [expected fix time]"
    assert fill(text, {"name": "", "ticket": None, "agent": "  "}, "es") == (
        "[nombre del cliente] [número de ticket] [tu nombre] [hora prevista de solución]")


def test_a_language_without_labels_gets_the_english_ones():
    assert fill("{fix_time}", {}, "fr") == "[expected fix time]"


def test_a_value_is_inserted_literally_and_not_expanded_again():
    assert fill("Hi {name}, {ticket}", {"name": "{ticket} {{x}}", "ticket": "T-1"}, "en") == "Hi {ticket} {{x}}, T-1"


def test_doubled_braces_are_literal_braces():
    assert fill("{{name}} is {name}; }} {{", {"name": "Ana"}, "en") == "{name} is Ana; } {"


def test_filling_text_with_an_unknown_placeholder_is_refused():
    with pytest.raises(MacroError, match="email"):
        fill("Hi {email}", {}, "en")


# --- loading: what ops can get wrong ---

def test_a_valid_file_loads_in_file_order(tmp_path):
    path = write(tmp_path, entry() + entry("greeting-es", "es", "Saludo", "Hola, {name}:\n"))
    assert load_macros(path) == (Macro("greeting-en", "en", "Greeting", "Hi {name}"),
                                 Macro("greeting-es", "es", "Saludo", "Hola, {name}:"))


@pytest.mark.parametrize("text, complaint", [
    ("Hi {nmae}", "unknown placeholder"),
    ("Hi {Name}", "unknown placeholder"),
    ("Hi {}", "unknown placeholder"),
    ("Hi {name.upper}", "unknown placeholder"),
    ("Hi {name:>10}", "format spec or conversion"),
    ("Hi {name!r}", "format spec or conversion"),
    ("Hi {name", "brace"),
    ("Hi name}", "brace"),
])
def test_a_placeholder_fill_could_not_replace_is_refused_naming_the_macro(tmp_path, text, complaint):
    with pytest.raises(MacroError, match=complaint) as refused:
        load_macros(write(tmp_path, entry(id="broken-en", text=text)))
    assert "broken-en" in str(refused.value)


def test_an_id_used_twice_is_refused(tmp_path):
    with pytest.raises(MacroError, match="'greeting-en'.*earlier"):
        load_macros(write(tmp_path, entry() + entry(title="Hello")))


@pytest.mark.parametrize("field", ["language", "title", "text"])
def test_a_missing_field_is_refused_naming_the_macro(tmp_path, field):
    body = "\n".join(line for line in entry(id="short-en").splitlines() if not line.startswith(field))
    with pytest.raises(MacroError, match=f"'short-en'.*{field}"):
        load_macros(write(tmp_path, body))


def test_a_macro_without_an_id_is_named_by_its_position(tmp_path):
    body = entry() + entry().replace('id = "greeting-en"\n', "")
    with pytest.raises(MacroError, match="#2.*'id'"):
        load_macros(write(tmp_path, body))


def test_an_empty_field_or_a_misspelt_field_is_refused(tmp_path):
    with pytest.raises(MacroError, match="empty 'title'"):
        load_macros(write(tmp_path, entry(title=" ")))
    with pytest.raises(MacroError, match="tittle"):
        load_macros(write(tmp_path, entry() + 'tittle = "x"\n'))


@pytest.mark.parametrize("language", ["fr", "ES", "es-ES"])
def test_a_language_other_than_es_or_en_is_refused(tmp_path, language):
    with pytest.raises(MacroError, match="'greeting-en'.*language"):
        load_macros(write(tmp_path, entry(language=language)))


def test_bad_toml_and_a_file_without_macros_are_refused(tmp_path):
    with pytest.raises(MacroError, match="TOML"):
        load_macros(write(tmp_path, '[[macro]]\nid = "unterminated\n'))
    with pytest.raises(MacroError, match=r"no \[\[macro\]\]"):
        load_macros(write(tmp_path, entry().replace("[[macro]]", "[[macros]]")))


# --- searching ---

LIBRARY = (
    Macro("password-reset-es", "es", "Restablecer la contraseña", "Pulsa «¿Has olvidado tu contraseña?»."),
    Macro("restart-router-es", "es", "Reiniciar el router", "Desenchufa el router y espera 30 segundos."),
    Macro("login-es", "es", "Problemas para entrar", "Si no recuerdas la CONTRASEÑA, restablécela."),
    Macro("password-reset-en", "en", "Reset the password", "Click 'Forgot your password?'."),
)


def ids(found: list[Macro]) -> list[str]:
    return [macro.id for macro in found]


def test_search_ignores_case_and_accents_on_both_sides():
    assert ids(search(LIBRARY, "contrasena", "es")) == ["password-reset-es", "login-es"]
    assert ids(search(LIBRARY, "CONTRASEÑA", "es")) == ["password-reset-es", "login-es"]
    assert ids(search(LIBRARY, "restablecela", "es")) == ["login-es"]


def test_search_needs_every_word_in_the_title_or_text():
    assert ids(search(LIBRARY, "router segundos", "es")) == ["restart-router-es"]
    assert ids(search(LIBRARY, "router contraseña", "es")) == []


def test_title_matches_come_before_text_only_matches():
    shuffled = (LIBRARY[2], LIBRARY[1], LIBRARY[0])
    assert ids(search(shuffled, "contraseña", "es")) == ["password-reset-es", "login-es"]


def test_search_only_looks_in_the_requested_language():
    assert ids(search(LIBRARY, "password", "en")) == ["password-reset-en"]
    assert search(LIBRARY, "password", "es") == []


def test_an_empty_query_lists_the_language_in_file_order():
    assert ids(search(LIBRARY, "", "es")) == ["password-reset-es", "restart-router-es", "login-es"]
    assert ids(search(LIBRARY, "   ", "en")) == ["password-reset-en"]


# --- the shipped file ---

def test_the_shipped_file_loads_with_about_ten_macros_per_language():
    per_language = Counter(macro.language for macro in SHIPPED)
    assert set(per_language) == set(macros.LANGUAGES)
    assert per_language["es"] == per_language["en"] >= 10


def test_the_shipped_file_covers_the_same_topics_in_both_languages():
    topics = {language: [m.id.removesuffix(f"-{language}") for m in SHIPPED if m.language == language]
              for language in macros.LANGUAGES}
    assert all(m.id.endswith(f"-{m.language}") for m in SHIPPED)
    assert sorted(topics["es"]) == sorted(topics["en"])


def test_every_shipped_macro_fills_completely_with_all_values():
    values = {"name": "Ana", "ticket": "T-7K2M9QX", "agent": "Omar", "fix_time": "18:30"}
    for macro in SHIPPED:
        filled = fill(macro.text, values, macro.language)
        assert "{" not in filled and not any(label in filled for label in macros.LABELS[macro.language].values())


def test_agents_find_the_shipped_macros_by_the_words_they_would_type():
    assert ids(search(SHIPPED, "contrasena", "es"))[0] == "password-reset-es"
    assert ids(search(SHIPPED, "router", "en"))[0] == "restart-router-en"
    assert ids(search(SHIPPED, "averia", "es"))[0] == "known-outage-es"
    assert "{fix_time}" in next(m.text for m in SHIPPED if m.id == "known-outage-en")
