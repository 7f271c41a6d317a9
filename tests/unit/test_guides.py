"""Reply guides: every customer hint triage emits (except "unknown") has a guide in
Spanish and English, a ticket in another language gets the English one, and a file
that leaves a hint without help is refused."""
from pathlib import Path

import pytest

from services.router.guides import HINTS, LANGUAGES, Guide, GuideError, guide_for, load_guides

SHIPPED = load_guides()


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "guides.toml"
    path.write_text(body, encoding="utf-8")
    return path


def table(hint: str, language: str, title: str = "Title") -> str:
    return f'[{hint}.{language}]\ntitle = "{title}"\nlead_with = ["Start here"]\navoid = ["Not this"]\n'


def complete(*, leave_out: tuple[str, str] | None = None) -> str:
    return "".join(table(hint, language) for hint in HINTS for language in LANGUAGES if (hint, language) != leave_out)


def test_every_hint_has_a_guide_in_spanish_and_english():
    assert set(SHIPPED) == {(hint, language) for hint in HINTS for language in ("es", "en")}
    for (hint, language), guide in SHIPPED.items():
        assert (guide.hint, guide.language) == (hint, language)
        assert guide.title and 3 <= len(guide.lead_with) <= 4 and 2 <= len(guide.avoid) <= 3


def test_the_shipped_guides_carry_the_practice_for_each_hint():
    assert guide_for(SHIPPED, "novice", "en").title == "Novice: step by step"
    assert any("one action per step" in point for point in guide_for(SHIPPED, "novice", "en").lead_with)
    assert any("Apologise once" in point for point in guide_for(SHIPPED, "upset", "en").lead_with)
    assert "plazo" in guide_for(SHIPPED, "impatient", "es").title


def test_the_guide_comes_in_the_tickets_language():
    assert guide_for(SHIPPED, "upset", "es").language == "es"
    assert guide_for(SHIPPED, "upset", "en").language == "en"


def test_a_language_without_guides_falls_back_to_english():
    assert guide_for(SHIPPED, "sceptical", "fr") == SHIPPED["sceptical", "en"]
    only_english = {("expert", "en"): Guide("expert", "en", "Expert", ("Logs",), ("Basics",))}
    assert guide_for(only_english, "expert", "es") == only_english["expert", "en"]


@pytest.mark.parametrize("hint", ["unknown", None, "angry", ""])
def test_no_guide_when_triage_could_not_tell_the_kind_of_customer(hint):
    assert guide_for(SHIPPED, hint, "es") is None


def test_a_complete_file_loads(tmp_path):
    guides = load_guides(write(tmp_path, complete()))
    assert guides["novice", "es"] == Guide("novice", "es", "Title", ("Start here",), ("Not this",))


@pytest.mark.parametrize("leave_out", [("novice", "es"), ("sceptical", "en")])
def test_a_hint_missing_in_one_language_is_refused(tmp_path, leave_out):
    hint, language = leave_out
    with pytest.raises(GuideError, match=f"{hint}.{language}"):
        load_guides(write(tmp_path, complete(leave_out=leave_out)))


@pytest.mark.parametrize("extra, complaint", [
    (table("unknown", "en"), "'unknown'"),
    (table("novice", "fr"), "'fr'"),
])
def test_an_unknown_hint_or_language_is_refused(tmp_path, extra, complaint):
    with pytest.raises(GuideError, match=complaint):
        load_guides(write(tmp_path, complete() + extra))


@pytest.mark.parametrize("broken, complaint", [
    ('title = "Title"\nlead_with = []\navoid = ["Not this"]\n', "lead_with"),
    ('title = "Title"\nlead_with = ["Start here"]\n', "avoid"),
    ('lead_with = ["Start here"]\navoid = ["Not this"]\n', "title"),
    ('title = "Title"\nlead_with = "Start here"\navoid = ["Not this"]\n', "lead_with"),
])
def test_a_missing_or_empty_field_is_refused_naming_the_guide(tmp_path, broken, complaint):
    body = complete(leave_out=("upset", "en")) + "[upset.en]\n" + broken
    with pytest.raises(GuideError, match=f"upset.en.*{complaint}"):
        load_guides(write(tmp_path, body))


def test_bad_toml_is_refused(tmp_path):
    with pytest.raises(GuideError, match="TOML"):
        load_guides(write(tmp_path, "[novice.es\n"))
