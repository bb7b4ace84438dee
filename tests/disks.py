"""A small disk of a test's own (tmpfs, needs root to mount), and filling it up."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def small_disk(mountpoint: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "8m") at `mountpoint`; unmounted at the end, also on failure."""
    mountpoint.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mountpoint)],
        check=True,
        timeout=10,
    )
    try:
        yield mountpoint
    finally:
        unmounted = subprocess.run(["umount", str(mountpoint)], check=False, timeout=10)
        if unmounted.returncode != 0:
            # Still busy (a process that outlived its test): detach it now, freed when unused.
            subprocess.run(["umount", "--lazy", str(mountpoint)], check=True, timeout=10)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file; returns it (delete it to give space back)."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    chunk = bytes(64 * 1024)
    try:
        while True:
            os.write(descriptor, chunk)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(descriptor)
    return filler
