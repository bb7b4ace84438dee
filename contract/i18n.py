"""The language a person reads: gettext catalogs (Babel) and Babel's number and date formats.

`--lang vi|en` chooses; without it the locale does (LANGUAGE, LC_ALL, LC_MESSAGES, LANG: the first
set, as gettext reads them). No choice at all (unset, C, POSIX, C.UTF-8: what a fresh Raspberry Pi
OS image, an ssh session without a forwarded locale and a systemd unit have) means Vietnamese: the
people who read these screens are Vietnamese technicians and officials, and a default locale is
nobody's choice. A locale of another language we have no catalog for (fr_FR) reads English, the
language a foreigner is likelier to read than Vietnamese.

A process reads one language, chosen once when it starts (`use`), so the chosen catalog is this
module's state; a message is marked with `_` where it is shown, or with `N_` where it is defined
away from where it is shown (a constant), and translated there with `_`.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal, get_args

from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_decimal, format_percent

Language = Literal["vi", "en"]
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)
DEFAULT: Final[Language] = "vi"
DOMAIN: Final = "messages"
LOCALE_DIR: Final = Path(__file__).with_name("locale")
# Where the locale names no language: the C library's default locales.
_NO_CHOICE: Final = frozenset({"", "c", "posix"})
_VARIABLES: Final = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


class _Chosen:
    language: Language | None = None
    catalog: gettext.NullTranslations = gettext.NullTranslations()


def language_of(environ: Mapping[str, str]) -> Language:
    """The language the locale variables ask for (module docstring: the rules)."""
    for variable in _VARIABLES:
        value = environ.get(variable, "")
        if not value:
            continue
        # LANGUAGE may list several ("fr:vi"); a locale is ll_CC.charset@modifier.
        codes = [
            entry.split(".")[0].split("@")[0].split("_")[0].casefold() for entry in value.split(":")
        ]
        for code in codes:
            if code in LANGUAGES:
                return code
        return "en" if any(code not in _NO_CHOICE for code in codes) else DEFAULT
    return DEFAULT


def use(language: Language | None = None) -> Language:
    """Read `language` from now on (None: the one the locale asks for); returns it."""
    chosen = language or language_of(os.environ)
    # argparse translates its own frame ("usage:", "options", its refusals) through gettext's
    # global domain, in the language LANGUAGE names: point both at this catalog and this choice
    # (which the processes this one starts then read too).
    gettext.bindtextdomain(DOMAIN, LOCALE_DIR)
    gettext.textdomain(DOMAIN)
    os.environ["LANGUAGE"] = chosen
    _Chosen.catalog = gettext.translation(
        DOMAIN, LOCALE_DIR, languages=[chosen], fallback=chosen == "en"
    )
    _Chosen.language = chosen
    return chosen


def current() -> Language:
    if _Chosen.language is None:
        return use()
    return _Chosen.language


def _(message: str) -> str:
    """`message` in the chosen language (the English text is the catalog's key)."""
    current()
    return _Chosen.catalog.gettext(message)


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "translated where it is shown"
    """Mark a message for extraction where it is defined; `_` translates it where it is shown."""
    return message


def ngettext(singular: str, plural: str, count: int) -> str:
    current()
    return _Chosen.catalog.ngettext(singular, plural, count)


def number(value: float, digits: int = 1) -> str:
    """A figure as the language writes it: 1.234,5 in Vietnamese, 1,234.5 in English."""
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(value, format=pattern, locale=current())


def figure(value: float) -> str:
    """A limit or a bound with only the decimals it has (up to three): 2.000, 2,5 in Vietnamese."""
    return format_decimal(value, format="#,##0.###", locale=current())


def measured(value: float | None, unit: str) -> str:
    """A measured figure with its unit, two decimals ("38,50 Mb/s"), a share as a percentage,
    "-" for none: how evaluate and the report show a verdict's figures."""
    if value is None:
        return "-"
    if unit == "share":
        return percent(value, 1)
    return f"{number(value, 2)} {unit}"


def utc_time(value: datetime) -> str:
    """A time in UTC, whatever the machine's clock, with the year in full, as a verdict's window
    is filed: 08/02/2025 08:13 UTC in Vietnamese (day first, as the regulator's forms and
    spreadsheets write it), 2025-02-08 08:13 UTC in English."""
    pattern = "dd/MM/yyyy HH:mm" if current() == "vi" else "yyyy-MM-dd HH:mm"
    return format_datetime(value, pattern, tzinfo=UTC, locale=current()) + " UTC"


def significant(value: float) -> str:
    """A small figure to at most three significant digits: 0,0123 in Vietnamese."""
    return format_decimal(value, format="@##", locale=current())


def percent(share: float, digits: int = 0) -> str:
    """A share as a percentage: 95 % in Vietnamese, 95% in English."""
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "") + "%"
    return format_percent(share, format=pattern, locale=current())


def ago(seconds: float) -> str:
    """How long ago, in words: "5 phút trước", "5 minutes ago"."""
    return format_timedelta(
        timedelta(seconds=-max(seconds, 0.0)), add_direction=True, threshold=2, locale=current()
    )


def moment(when: datetime) -> str:
    """A time as the language writes it, on the machine's clock: "12:43 6/12/26" in Vietnamese,
    "12/6/26, 12:43 PM" in English."""
    return format_datetime(when.astimezone(), "short", locale=current())
