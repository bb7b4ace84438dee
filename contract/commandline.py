"""What every qosfleet command line shares: `--lang`, and a typo answered with what was meant.

argparse (before Python 3.14's suggest_on_error) lists the choices of a mistyped value and says
nothing of a mistyped option; a technician typing `--jsn` or `--runner iperf` on a ladder is better
served by "did you mean --json?". difflib ranks the command's own words.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from contract.i18n import LANGUAGES, N_, Language, _, use

# argparse's own messages a person can meet (its help frame, its refusals), as Python 3.11-3.13
# write them: argparse looks them up through gettext's global domain, which contract.i18n points
# at this project's catalog; marked here so that Babel extracts them into it.
ARGPARSE_MESSAGES = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("the following arguments are required: %s"),
    N_("one of the arguments %s is required"),
    N_("not allowed with argument %s"),
    N_("ignored explicit argument %r"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("unexpected option string: %s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("unknown parser %(parser_name)r (choices: %(choices)s)"),
    N_("can't open '%(filename)s': %(error)s"),
)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose refusals are translated and suggest the nearest word."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's own check, with the suggestion added (its message is not translated).
        choices = action.choices
        if choices is None or value in choices:
            return
        words = [str(choice) for choice in choices]
        message = _("invalid choice: {value!r} (choose from {choices})").format(
            value=value, choices=", ".join(words)
        )
        raise argparse.ArgumentError(action, message + _suggestion(str(value), words))

    def parse_args(  # type: ignore[override]  # one signature: the arguments, no namespace
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            options = sorted(_option_strings(self, parsed))
            said = [_("unrecognized arguments: {arguments}").format(arguments=" ".join(unknown))]
            said += [
                word + suggestion
                for word in unknown
                if word.startswith("-")
                and (suggestion := _suggestion(word.partition("=")[0], options))
            ]
            self.error("\n".join(said))
        return parsed

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, _("{prog}: error: {message}").format(prog=self.prog, message=message) + "\n")


def _suggestion(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return _("; did you mean {suggestion}?").format(suggestion=close[0]) if close else ""


def _option_strings(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> set[str]:
    """The options of the parser and of the subcommand chosen; argparse keeps them private."""
    found: set[str] = set()
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of its actions
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001 - nor of subcommands
            chosen = getattr(parsed, action.dest or "", None)
            if chosen in action.choices:
                found |= _option_strings(action.choices[chosen], parsed)
    return found


def add_language_option(parser: argparse.ArgumentParser) -> None:
    """Shown in the command's --help; `choose_language` reads it wherever it is given."""
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        help=_("language of what is shown: vi or en (default: the locale; Vietnamese without one)"),
    )


def choose_language(prog: str, arguments: Sequence[str]) -> list[str]:
    """Use the language `--lang` names (without it: the one already chosen, else the locale's);
    the arguments without `--lang`, so that it may come before or after a subcommand."""
    early = Parser(prog=prog, add_help=False, allow_abbrev=False)
    add_language_option(early)
    known, rest = early.parse_known_args(arguments)
    chosen: Language | None = known.lang
    if chosen is not None:
        use(chosen)
    return rest
