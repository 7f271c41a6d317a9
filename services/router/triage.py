"""Triage: which skill a ticket needs, how urgent it is, and whether first line can
take it, from its text, with every signal that led there listed for the agent.

The rules are data (`rules/default.json`) that ops edit; `RuleBook` reloads the file
when it changes, so a fix to a rule needs no restart.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

DEFAULT_RULES = Path(__file__).resolve().parent / "rules" / "default.json"
PRIORITIES = ("P1", "P2", "P3", "P4")
SKILLS = ("network", "billing", "account", "hardware", "software", "general")


class RulesError(ValueError):
    """A rules file that cannot be used; the previous rules stay in force."""


def fold(text: str) -> str:
    """Lower case without accents, so 'Conexión' and 'conexion' match alike."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _pattern(phrases: list[str]) -> re.Pattern[str]:
    """Whole words or phrases; a `*` in a rule stands for the rest of a word, so that
    `cobr*` matches cobro, cobrado and cobraron alike."""
    alternatives = sorted({fold(p) for p in phrases}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(a).replace(r"\*", r"\w*") for a in alternatives) + r")(?!\w)")


def _headcount(people: list[str]) -> re.Pattern[str]:
    """A number of people: '25 operarios', '40 personas sin conexión', '300 of our users'."""
    nouns = "|".join(re.escape(fold(noun)).replace(r"\*", r"\w*") for noun in sorted(people, key=len, reverse=True))
    return re.compile(r"(?<![\w.,])(\d{1,6})\s+(?:[a-z]+\s+){0,3}?(?:" + nouns + r")(?!\w)")


def _optional_pattern(phrases: list[str] | None) -> re.Pattern[str] | None:
    return _pattern(phrases) if phrases else None


def _found(pattern: re.Pattern[str] | None, text: str) -> list[str]:
    return sorted(set(pattern.findall(text))) if pattern is not None else []


@dataclass(frozen=True, slots=True)
class Plan:
    """A support plan and whose it is: customers by id, or by their e-mail's domain.
    Its tickets are raised `raise_levels` priority levels, never above P2: a plan buys
    a faster answer, while P1 stays for what the rubric calls P1."""

    name: str
    customers: frozenset[str]
    email_domains: frozenset[str]
    raise_levels: int

    @classmethod
    def from_dict(cls, name: str, raw: dict[str, Any]) -> "Plan":
        return cls(name, frozenset(raw.get("customers", ())), frozenset(d.lower() for d in raw.get("email_domains", ())),
                   int(raw.get("raise", 1)))

    def covers(self, customer: dict[str, Any]) -> bool:
        email = str(customer.get("email") or "")
        return customer.get("id") in self.customers or email.rpartition("@")[2].lower() in self.email_domains


@dataclass(frozen=True, slots=True)
class Rules:
    version: str
    skills: dict[str, re.Pattern[str]]
    priorities: dict[str, re.Pattern[str]]
    l2_skills: frozenset[str]
    l2_priorities: frozenset[str]
    l2_words: re.Pattern[str]
    negative: re.Pattern[str]
    impatient: re.Pattern[str]
    default_skill: str
    default_priority: str
    headcount: re.Pattern[str] | None = None  # "40 personas", "25 operarios"...
    many_people: int = 10  # ...is P1 from this many people on
    leaving: re.Pattern[str] | None = None  # a threat to leave: P2 when the customer writes again
    sceptical: re.Pattern[str] | None = None  # "ya me dijeron", "you promised": doubts our word
    plans: tuple["Plan", ...] = ()

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Rules":
        try:
            skills = {skill: _pattern(words) for skill, words in raw["skills"].items()}
            priorities = {p: _pattern(raw["priority"][p]) for p in PRIORITIES if raw["priority"].get(p)}
            unknown = (set(skills) - set(SKILLS)) | (set(raw["priority"]) - set(PRIORITIES))
            if unknown:
                raise RulesError(f"unknown skills or priorities: {sorted(unknown)}")
            return cls(
                version=str(raw["version"]),
                skills=skills,
                priorities=priorities,
                l2_skills=frozenset(raw["tier_l2"]["skills"]),
                l2_priorities=frozenset(raw["tier_l2"]["priorities"]),
                l2_words=_pattern(raw["tier_l2"]["words"]),
                negative=_pattern(raw["sentiment"]["negative"]),
                impatient=_pattern(raw["sentiment"]["impatient"]),
                default_skill=raw.get("default_skill", "general"),
                default_priority=raw.get("default_priority", "P3"),
                headcount=_headcount(raw["many_people"]["people"]) if "many_people" in raw else None,
                many_people=int(raw.get("many_people", {}).get("at_least", 10)),
                leaving=_optional_pattern(raw["sentiment"].get("leaving")),
                sceptical=_optional_pattern(raw["sentiment"].get("sceptical")),
                plans=tuple(Plan.from_dict(name, entry) for name, entry in raw.get("plans", {}).items()),
            )
        except (KeyError, TypeError, re.error) as error:
            raise RulesError(f"rules file is incomplete or malformed: {error!r}") from None

    @classmethod
    def load(cls, path: Path) -> "Rules":
        try:
            return cls.from_dict(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError) as error:
            raise RulesError(f"cannot read {path}: {error}") from None


@dataclass(frozen=True, slots=True)
class Classification:
    skill: str
    priority: str
    tier: str
    signals: dict[str, Any] = field(default_factory=dict)


def classify(rules: Rules, subject: str | None, body: str, repeat_count: int = 0,
             customer: dict[str, Any] | None = None) -> Classification:
    """Skill, priority and tier for a ticket's text (and the customer's plan), and the
    evidence for each. `repeat_count` is what the dispatcher knows of the customer's
    recent tickets; `weigh_history` applies it."""
    text = fold(f"{subject or ''}\n{body}")
    skill_hits = {skill: pattern.findall(text) for skill, pattern in rules.skills.items()}
    skill_hits = {skill: hits for skill, hits in skill_hits.items() if hits}
    # Most distinct matches wins; ties go to the order of the rules file.
    skill = max(skill_hits, key=lambda s: len(set(skill_hits[s])), default=rules.default_skill)
    priority_hits = {p: pattern.findall(text) for p, pattern in rules.priorities.items()}
    crowds = [m.group(0) for m in rules.headcount.finditer(text) if int(m.group(1)) >= rules.many_people] if rules.headcount else []
    if crowds:  # many people affected is P1 whatever the words
        priority_hits["P1"] = priority_hits.get("P1", []) + crowds
    priority = next((p for p in PRIORITIES if priority_hits.get(p)), rules.default_priority)
    negative, impatient, sceptical = _found(rules.negative, text), _found(rules.impatient, text), _found(rules.sceptical, text)
    l2_words = sorted(set(rules.l2_words.findall(text)))
    priority_words = sorted(set(priority_hits.get(priority, [])))
    plan = next((p for p in rules.plans if customer is not None and p.covers(customer)), None)
    if plan is not None:
        priority = PRIORITIES[max(PRIORITIES.index(priority) - plan.raise_levels, min(PRIORITIES.index(priority), 1))]
    needs_l2 = priority in rules.l2_priorities or (skill in rules.l2_skills and priority in ("P1", "P2")) or bool(l2_words)
    signals = {
        "skill_words": sorted(set(skill_hits.get(skill, []))),
        "priority_words": priority_words,
        "specialist_words": l2_words,
        "sentiment": "negative" if negative else "neutral",
        "sentiment_words": negative,
        "impatience_words": impatient,
        "leaving_words": _found(rules.leaving, text),
        "sceptical_words": sceptical,
        "repeat_count": 0,
        "customer_hint": customer_hint(text, negative, impatient, l2_words, sceptical),
        "rules_version": rules.version,
        **({"plan": plan.name} if plan is not None else {}),
    }
    priority, signals = weigh_history(priority, signals, repeat_count)
    return Classification(skill, priority, "L2" if needs_l2 else "L1", signals)


def weigh_history(priority: str, signals: dict[str, Any], repeat_count: int) -> tuple[str, dict[str, Any]]:
    """The priority and signals once the customer's recent tickets are known. The rubric:
    a repeated contact with a threat to leave is P2; a third contact is no longer a
    plain question (at least P3). Someone who writes again, and says nothing more
    telling about themselves, has reason to doubt our word: sceptical."""
    if repeat_count >= 1 and signals.get("leaving_words") and priority in ("P3", "P4"):
        priority = "P2"
    elif repeat_count >= 2 and priority == "P4":
        priority = "P3"
    hint = signals["customer_hint"]
    if repeat_count >= 1 and hint == "unknown":
        hint = "sceptical"
    return priority, {**signals, "repeat_count": repeat_count, "customer_hint": hint}


def customer_hint(text: str, negative: list[str], impatient: list[str], technical: list[str], sceptical: list[str]) -> str:
    """How to talk to this person: upset, impatient, sceptical, expert, novice or unknown."""
    if negative:
        return "upset"
    if impatient:
        return "impatient"
    if sceptical:
        return "sceptical"
    if technical:
        return "expert"
    if re.search(r"(no se|no sé|don't know|do not know|no entiendo|don't understand|first time|primera vez)", text):
        return "novice"
    return "unknown"


class RuleBook:
    """The rules in force, reloaded from their file when its modification time changes."""

    def __init__(self, path: Path = DEFAULT_RULES) -> None:
        self.path = path
        self.rules = Rules.load(path)
        self._mtime = path.stat().st_mtime_ns

    def refresh(self) -> bool:
        """Reload if the file changed; True if new rules are now in force.
        A broken file raises RulesError and leaves the previous rules in force."""
        mtime = self.path.stat().st_mtime_ns
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        self.rules = Rules.load(self.path)
        return True
