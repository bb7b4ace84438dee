"""argparse's own frame and refusals in the chosen language, and the nearest word suggested."""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract import i18n
from contract.commandline import ARGPARSE_MESSAGES, Parser


@pytest.fixture(autouse=True)
def english_after() -> Iterator[None]:
    yield
    i18n.use("en")


def _parser() -> Parser:
    parser = Parser(prog="qos-demo")
    parser.add_argument("--runner", choices=["http", "iperf3"], required=True)
    parser.add_argument("--json", action="store_true")
    return parser


def test_the_help_frame_reads_vietnamese() -> None:
    i18n.use("vi")
    shown = _parser().format_help()
    assert shown.startswith("cách dùng: qos-demo")
    assert "tùy chọn:" in shown
    assert "hiện trợ giúp này rồi thoát" in shown
    assert "usage" not in shown
    assert "show this help" not in shown


def test_a_missing_option_is_refused_in_vietnamese(capsys: pytest.CaptureFixture[str]) -> None:
    i18n.use("vi")
    with pytest.raises(SystemExit):
        _parser().parse_args([])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("cách dùng: qos-demo")
    assert "qos-demo: lỗi: thiếu các tham số bắt buộc: --runner" in captured.err


def test_a_typo_gets_a_suggestion_in_english(capsys: pytest.CaptureFixture[str]) -> None:
    i18n.use("en")
    with pytest.raises(SystemExit):
        _parser().parse_args(["--runner", "http", "--jsn"])
    said = capsys.readouterr().err
    assert "unrecognized arguments: --jsn" in said
    assert "did you mean --json?" in said


def test_every_message_argparse_can_show_a_person_is_listed() -> None:
    # A Python upgrade that rewords argparse leaves its new words untranslated: this fails first.
    tree = ast.parse(Path(argparse.__file__).read_text(encoding="utf-8"))
    marked = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }
    assert marked - PROGRAMMERS_ONLY - REPLACED <= set(ARGPARSE_MESSAGES)
    # The test reads argparse as it is: a miss in the parsing would pass anything.
    assert "usage: " in marked


# Said by the parts of argparse that Parser replaces with its own (translated) words, or by an
# option no command of ours uses (a subcommands group with a title of its own).
REPLACED = {
    "%(prog)s: error: %(message)s\n",
    "unrecognized arguments: %s",
    "invalid choice: %(value)r (choose from %(choices)s)",
    "subcommands",
}
# argparse's complaints about a parser's definition: a programmer meets them, never a user.
PROGRAMMERS_ONLY = {
    ".__call__() not defined",
    "conflicting subparser: %s",
    "conflicting subparser alias: %s",
    "cannot merge actions - two groups are named %r",
    "'required' is an invalid argument for positionals",
    "dest= is required for options like %r",
    "mutually exclusive arguments must be optional",
    "cannot have multiple subparser arguments",
    "%r is not callable",
    "show program's version number and exit",
    'argument "-" with mode %r',
    "invalid conflict_resolution value: %r",
    "invalid option string %(option)r: must start with a character %(prefix_chars)r",
}
