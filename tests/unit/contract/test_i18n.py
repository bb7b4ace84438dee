"""The catalogs: every message translated with the same placeholders, the template and the
compiled catalogs what the sources and the .po files make; the language chosen as the docstring of
contract/i18n.py says; figures in each language's format."""

from __future__ import annotations

import os
import re
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from contract import i18n
from contract.i18n import LOCALE_DIR, Language, language_of

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = LOCALE_DIR / "messages.pot"
TRANSLATED: tuple[Language, ...] = ("vi",)
# A word in square brackets (Rich markup, a TOML table's name) survives translation as it is.
BRACKETS = re.compile(r"\[/?[a-z][a-z_ ]*\]|\[/\]")


def _catalog(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def _forms(message: Message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, list | tuple) else (message.id,)


def _translations(message: Message) -> tuple[str, ...]:
    string = message.string
    if isinstance(string, list | tuple):
        return tuple(form or "" for form in string)
    return (string or "",)


def _placeholders(text: str) -> set[tuple[str, str | None]]:
    """The {name!conversion} fields of a str.format template (its format specs may differ)."""
    return {
        (field, conversion)
        for _literal, field, _spec, conversion in string.Formatter().parse(text)
        if field is not None
    }


@pytest.fixture
def language() -> Iterator[None]:
    yield
    i18n.use("en")


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_message_has_a_translation_with_the_same_placeholders(code: Language) -> None:
    template = _catalog(TEMPLATE)
    translated = _catalog(LOCALE_DIR / code / "LC_MESSAGES" / "messages.po")
    problems = []
    for message in template:
        if not message.id:
            continue
        key = message.id
        found = translated.get(key)
        shown = _forms(message)[0]
        if found is None or not all(_translations(found)) or found.fuzzy:
            problems.append(f"untranslated or fuzzy: {shown!r}")
            continue
        # Vietnamese has one plural form: it must hold the plural's placeholders.
        for text in _translations(found):
            if _placeholders(text) != _placeholders(_forms(message)[-1]):
                problems.append(f"placeholders differ: {shown!r} -> {text!r}")
            if sorted(BRACKETS.findall(text)) != sorted(BRACKETS.findall(_forms(message)[-1])):
                problems.append(f"brackets differ: {shown!r} -> {text!r}")
    # Babel's own checkers too (a %-format placeholder, a plural's forms).
    problems += [
        f"{_forms(m)[0]!r}: {error}" for m, errors in translated.check() for error in errors
    ]
    obsolete = {str(_forms(m)[0]) for m in translated if m.id} - {
        str(_forms(m)[0]) for m in template if m.id
    }
    assert not problems
    assert not obsolete, "run scripts/i18n: the .po holds messages the sources no longer have"


def test_the_checker_sees_a_changed_placeholder() -> None:
    assert _placeholders("{name}: {shown!r} ok") == {("name", None), ("shown", "r")}
    assert _placeholders("{name}: {shwon!r}") != _placeholders("{name}: {shown!r}")
    assert _placeholders("{name}: {shown}") != _placeholders("{name}: {shown!r}")


def test_no_message_is_marked_inside_an_f_string() -> None:
    # Babel does not look inside f-strings (before Python 3.12): such a message would never reach
    # the catalog and would show in English whatever the language.
    inside = re.compile(r"\{(?:_|N_|ngettext)\(")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("agent", "collector", "contract", "lab", "target")
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if inside.search(line)
    ]
    assert not found


def test_the_template_and_the_compiled_catalogs_are_up_to_date() -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "i18n"), "--check"],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "vi"),
        ({"LANG": "C.UTF-8"}, "vi"),
        ({"LANG": "POSIX"}, "vi"),
        ({"LANG": "vi_VN.UTF-8"}, "vi"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        # Another language than ours: English, the likelier one for a foreigner.
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        # gettext's order: LANGUAGE, LC_ALL, LC_MESSAGES, LANG; the first set decides.
        ({"LANGUAGE": "en", "LANG": "vi_VN.UTF-8"}, "en"),
        ({"LC_ALL": "vi_VN.UTF-8", "LANG": "en_US.UTF-8"}, "vi"),
        ({"LC_MESSAGES": "en_US.UTF-8", "LANG": "vi_VN.UTF-8"}, "en"),
        ({"LANGUAGE": "vi:en"}, "vi"),
        ({"LANGUAGE": "fr:vi"}, "vi"),
        ({"LANGUAGE": "", "LANG": "en_US"}, "en"),
        ({"LANG": "vi_VN@saigon"}, "vi"),
    ],
)
def test_the_language_comes_from_the_locale(environ: dict[str, str], expected: str) -> None:
    assert language_of(environ) == expected


@pytest.mark.usefixtures("language")
def test_vietnamese_messages_and_figures() -> None:
    i18n.use("vi")
    assert i18n._("PASS") == "ĐẠT"
    assert i18n._("FAIL") == "KHÔNG ĐẠT"
    assert i18n.number(1234.5) == "1.234,5"
    assert i18n.number(57538.6, 1) == "57.538,6"
    assert i18n.number(1500, 0) == "1.500"
    assert i18n.significant(0.0123) == "0,0123"
    assert i18n.percent(0.955, 1) == "95,5%"
    assert i18n.ago(600) == "10 phút trước"


@pytest.mark.usefixtures("language")
def test_english_messages_and_figures() -> None:
    i18n.use("en")
    assert i18n._("PASS") == "PASS"
    assert i18n.number(1234.5) == "1,234.5"
    assert i18n.percent(0.05) == "5%"
    assert i18n.ago(7300) == "2 hours ago"
