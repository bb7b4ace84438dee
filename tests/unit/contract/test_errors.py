"""Every error of the project derives from QosfleetError, the one base carrying the user's hint."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from contract.errors import QosfleetError

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("agent", "collector", "contract", "dashboards", "target", "lab")
# Control flow that never reaches a user, each with its reason at its definition.
NOT_USER_ERRORS = {("lab.delayline", "_Stopped")}


def _exception_classes() -> list[tuple[str, str]]:
    """(module, class) of every class in the packages whose base names an exception."""
    found: list[tuple[str, str]] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found.extend(
                (module, node.name)
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.ClassDef)
                and any(
                    isinstance(base, ast.Name) and base.id.endswith(("Error", "Exception"))
                    for base in node.bases
                )
            )
    return found


def test_the_scan_finds_the_known_errors() -> None:
    classes = _exception_classes()
    assert ("collector.registry", "FleetMessageRejectedError") in classes
    assert ("lab.delayline", "_Stopped") in classes


def test_every_error_derives_from_the_one_base() -> None:
    strays = []
    for module, name in _exception_classes():
        if (module, name) in NOT_USER_ERRORS:
            continue
        error = getattr(importlib.import_module(module), name)
        if not issubclass(error, QosfleetError):
            strays.append(f"{module}.{name}")
    assert strays == []


def test_a_refused_fleet_message_tells_the_operator_what_to_do() -> None:
    from collector.registry import FleetMessageRejectedError  # noqa: PLC0415

    refusal = FleetMessageRejectedError("topic-mismatch", "'x' is not a probe id")
    assert refusal.reason == "topic-mismatch"
    assert "ACL" in refusal.hint
