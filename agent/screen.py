"""The technician's tables: a label and its text, fitted to the terminal without breaking a value.

Rich wraps a cell at any space, also the one between a figure and its unit ("40 / Mb/s") and
non-breaking ones. So a text column is wrapped here instead, where a value's spaces are held
together, and Rich is told not to wrap it again.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import Final, NamedTuple

from rich.console import Console
from rich.table import Table
from rich.text import Text

# textwrap, unlike Rich, never breaks at a no-break space.
NO_BREAK: Final = "\u00a0"
# The spaces inside one value: a figure and its unit (40 Mb/s, 12,5 ms, 95 %), a comparison and
# its figure (≥ 40), "n ≥ 1.500".
_INSIDE_VALUE: Final = re.compile(
    r"(?<=\d) (?=(?:Mb/s|MB|kB|GB|ms|s|°C|%)(?![\w/]))|(?<=[≥≤<>=]) (?=\d)|(?<=\bn) (?=[≥≤])"
)
# The table's frame around two columns: "│ " + " │ " + " │".
_FRAME: Final = 7


class Row(NamedTuple):
    label: str
    text: str
    style: str = ""
    # The row's value, shown bold where `text` holds it.
    bold: str = ""


def hold_values(text: str) -> str:
    return _INSIDE_VALUE.sub(NO_BREAK, text)


def fit(text: str, width: int) -> str:
    """`text` wrapped to `width` at spaces between values, never inside one; its own line breaks
    kept."""
    lines = [
        line
        for paragraph in text.split("\n")
        for line in textwrap.wrap(
            hold_values(paragraph),
            width=max(width, 1),
            break_long_words=False,
            break_on_hyphens=False,
        )
    ]
    return "\n".join(lines).replace(NO_BREAK, " ")


def table(title: str, rows: Sequence[Row], console: Console) -> Table:
    label_width = max((len(row.label) for row in rows), default=0)
    text_width = max(console.width - label_width - _FRAME, 20)
    shown = Table(title=title, show_header=False)
    shown.add_column(style="bold", no_wrap=True)
    # Wrapped by fit(); a single word longer than the column (a long URL) folds.
    shown.add_column(no_wrap=True, overflow="fold", max_width=text_width)
    for row in rows:
        cell = Text(fit(row.text, text_width), style=row.style)
        if row.bold:
            cell.highlight_words([row.bold], "bold")
        shown.add_row(row.label, cell)
    return shown
