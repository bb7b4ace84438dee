"""`qos-agent`'s whole command line in Vietnamese: its help, argparse's own frame ("usage:",
"options:", "show this help message and exit") and its refusals, chosen by --lang or LANGUAGE."""

from __future__ import annotations

import gettext
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from contract import i18n
from contract.commandline import ARGPARSE_MESSAGES

COMMANDS = ["", "check", "history", "status", "enroll", "run"]
# Words of an English sentence; none is a code, option, unit or name a technician types, nor a
# Vietnamese word ("in" is print, "to" big, "an" safe: left out).
ENGLISH = frozenset(
    [
        "the",
        "and",
        "of",
        "is",
        "are",
        "this",
        "that",
        "show",
        "help",
        "message",
        "exit",
        "usage",
        "options",
        "positional",
        "arguments",
        "default",
        "with",
        "when",
        "only",
        "print",
        "each",
        "every",
        "from",
        "for",
        "or",
        "on",
        "a",
        "not",
        "measure",
        "result",
        "results",
        "link",
        "probe",
        "error",
        "required",
        "invalid",
        "choose",
        "give",
        "e.g.",
        "send",
        "see",
        "whole",
        "number",
        "above",
    ]
)
# What stays as it is in every language: option names, metavars, {choices}, `code`, URLs, paths,
# a command's name at the start of its line in the list of subcommands.
_KEPT = re.compile(
    r"--?[\w-]+|\b[A-Z][A-Z0-9_/:\[\].<>-]+\b|\{[^}]*\}|`[^`]*`|\w+://\S+|/[\w./-]+|^\s{2,}\w+\b",
    re.MULTILINE,
)


def _qos_agent(*arguments: str, language: str) -> subprocess.CompletedProcess[str]:
    environ = os.environ | {"LANGUAGE": language, "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *arguments],
        capture_output=True, text=True, timeout=60, check=False, env=environ,
    )  # fmt: skip


def _english_words(text: str) -> list[str]:
    return [word for word in re.findall(r"[^\W\d_][\w.]*", _KEPT.sub(" ", text)) if word in ENGLISH]


@pytest.fixture
def vietnamese() -> Iterator[None]:
    i18n.use("vi")
    yield
    i18n.use("en")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("chosen", ["--lang", "LANGUAGE"])
def test_help_has_no_english_sentence(command: str, chosen: str) -> None:
    words = [command, "--help"] if command else ["--help"]
    if chosen == "--lang":
        shown = _qos_agent("--lang", "vi", *words, language="en")
    else:
        shown = _qos_agent(*words, language="vi")
    assert shown.returncode == 0, shown.stderr
    assert "cách dùng:" in shown.stdout
    assert "tùy chọn:" in shown.stdout
    assert "hiện trợ giúp này rồi thoát" in shown.stdout
    assert _english_words(shown.stdout) == [], shown.stdout


def test_the_check_finds_english() -> None:
    """The test above can fail: the same help in English is full of it."""
    shown = _qos_agent("check", "--help", language="en")
    assert {"usage", "options", "show", "the"} <= set(_english_words(shown.stdout))


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["check", "--duration", "x"], "giá trị float không hợp lệ: 'x'"),
        (["enroll"], "thiếu các tham số bắt buộc"),
        (["chek"], "chọn trong"),
        (["history", "--limit"], "cần một giá trị"),
    ],
)
def test_argparse_refusals_are_in_vietnamese(arguments: list[str], said: str) -> None:
    refused = _qos_agent("--lang", "vi", *arguments, language="en")
    assert refused.returncode == 2
    assert "cách dùng:" in refused.stderr
    assert said in refused.stderr, refused.stderr
    assert _english_words(refused.stderr) == [], refused.stderr


@pytest.mark.usefixtures("vietnamese")
@pytest.mark.parametrize("message", ARGPARSE_MESSAGES)
def test_argparse_reads_every_message_of_its_own_from_the_catalog(message: str) -> None:
    assert gettext.gettext(message) != message
