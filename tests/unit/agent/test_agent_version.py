"""The agent's version constant is the distribution's version."""

from __future__ import annotations

import tomllib
from pathlib import Path

from agent import __version__


def test_agent_version_matches_pyproject() -> None:
    pyproject = Path(__file__).parents[3] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert __version__ == declared
