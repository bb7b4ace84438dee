"""Every --help of the central side's commands (qos-collector, qos-target, qos-lab) reads
Vietnamese: no English sentence is left, only option names, values, units and product names."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence

import pytest

from collector.cli import main as collector_main
from contract import i18n
from lab.cli import main as lab_main
from lab.stack import main as stack_main
from target.cli import main as target_main

Main = Callable[[Sequence[str] | None], int]
HELPS: list[tuple[str, Main, tuple[str, ...]]] = [
    ("qos-collector", collector_main, ("--help",)),
    ("qos-collector serve", collector_main, ("serve", "--help")),
    ("qos-collector evaluate", collector_main, ("evaluate", "--help")),
    ("qos-collector report", collector_main, ("report", "--help")),
    ("qos-collector probes", collector_main, ("probes", "--help")),
    ("qos-collector probes list", collector_main, ("probes", "list", "--help")),
    ("qos-collector probes approve", collector_main, ("probes", "approve", "--help")),
    ("qos-collector probes revoke", collector_main, ("probes", "revoke", "--help")),
    ("qos-target", target_main, ("--help",)),
    ("qos-target serve", target_main, ("serve", "--help")),
    ("qos-lab", lab_main, ("--help",)),
    ("qos-lab demo", lab_main, ("demo", "--help")),
    ("qos-lab stack", lab_main, ("stack", "--help")),
    # `python -m lab.stack`, the same parser outside qos-lab.
    ("qos-lab stack", stack_main, ("--help",)),
]
# Words of English prose that no option name, value, unit or product name of ours is made of.
ENGLISH = frozenset(
    {
        *("the", "of", "and", "or", "is", "are", "was", "with", "from", "for", "this", "that"),
        *("each", "every", "which", "when", "without", "its", "by", "into", "only", "than"),
        *("then", "default", "show", "help", "message", "exit", "usage", "options"),
        *("arguments", "positional", "subcommands", "choose", "given"),
    }
)
# What stays as typed: `code`, {choices}, [bracketed] usage parts, URLs, paths, options, METAVARS.
KEPT = re.compile(
    r"`[^`]*`|\{[^}]*\}|\[[^\]]*\]|\w+://\S+|\S*/\S*|--?[\w-]+|\b[A-Z][A-Z0-9_]+\b|\b\w+_\w+\b"
)


def english_left(text: str) -> list[str]:
    """The English prose words of `text` once what is typed as it is has been taken out."""
    return [word for word in re.findall(r"[A-Za-z]+", KEPT.sub(" ", text)) if word in ENGLISH]


@pytest.fixture(autouse=True)
def english_after() -> Iterator[None]:
    yield
    i18n.use("en")


def _help(main: Main, arguments: Sequence[str], capsys: pytest.CaptureFixture[str]) -> str:
    # argparse exits after the help; qos-collector answers a bare --help with its usage line.
    with contextlib.suppress(SystemExit):
        main(arguments)
    captured = capsys.readouterr()
    return captured.out + captured.err


@pytest.mark.parametrize(("name", "main", "arguments"), HELPS)
def test_every_help_reads_vietnamese(
    name: str, main: Main, arguments: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    shown = _help(main, ["--lang", "vi", *arguments], capsys)
    assert shown.startswith(f"cách dùng: {name}"), shown
    assert not english_left(shown), shown


@pytest.mark.parametrize(("name", "main", "arguments"), HELPS)
def test_the_same_help_in_english_is_caught(
    name: str, main: Main, arguments: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    # The check above must be able to fail: the English help is full of what it looks for.
    shown = _help(main, ["--lang", "en", *arguments], capsys)
    assert shown.startswith(f"usage: {name}"), shown
    assert english_left(shown)


def test_the_locale_alone_chooses_vietnamese_for_each_command() -> None:
    # As an operator's shell would: no --lang, a Vietnamese locale, each entry point started anew.
    environ = {**os.environ, "LANGUAGE": "", "LC_ALL": "", "LANG": "vi_VN.UTF-8"}
    for module, arguments in (
        ("collector.cli", ["evaluate", "--help"]),
        ("target.cli", ["serve", "--help"]),
        ("lab.cli", ["demo", "--help"]),
    ):
        done = subprocess.run(
            [sys.executable, "-m", module, *arguments],
            env=environ,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("cách dùng: ")
        assert not english_left(done.stdout), done.stdout


def test_the_detector_sees_english_and_spares_what_is_typed() -> None:
    assert english_left("show this help message and exit") == [
        "show",
        "this",
        "help",
        "message",
        "and",
        "exit",
    ]
    assert not english_left(
        "--signatures {required,optional} `the and` https://the.example/of TOML LOG_LEVEL"
    )
