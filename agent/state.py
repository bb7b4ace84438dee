"""Small durable state of the probe: the per-probe sequence number of results."""

from __future__ import annotations

import os
from pathlib import Path

from contract.errors import ConfigError


def next_seq(state_dir: Path) -> int:
    """Return the next sequence number, persisted (write, fsync, rename) before it is used."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            "state_dir",
            f"cannot create {state_dir} ({exc.strerror})",
            "set state_dir in the config to a writable directory",
        ) from exc
    path = state_dir / "seq"
    try:
        current = int(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        current = -1
    except ValueError:
        # A torn write cannot happen (rename is atomic); a hand-edited file can. Never go back.
        current = int(path.stat().st_mtime_ns)
    value = current + 1
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="ascii") as handle:
        handle.write(str(value))
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    return value
