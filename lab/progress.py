"""How the demos report their steps: a spinner on a terminal, one line per step anywhere else."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

# A file or a pipe has no width: tables get room for their widest cell instead of 80 columns.
UNBOUNDED_WIDTH = 200


def lab_console() -> Console:
    """Text is never wrapped by us (a URL or path stays whole to copy); tables fit the width."""
    console = Console(soft_wrap=True, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(soft_wrap=True, highlight=False, width=UNBOUNDED_WIDTH)
    return console


@contextmanager
def step(console: Console, text: str) -> Iterator[None]:
    """Say what is being done: a spinner while it runs on a terminal (which shows nothing when
    redirected), else a line before it starts, so a log shows where a run stopped."""
    if console.is_terminal:
        with console.status(text + " ..."):
            yield
    else:
        console.print(text + " ...")
        yield
