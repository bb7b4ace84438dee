"""Access delay (QCVN 81): the time from a test's start to its first byte.

Measured as a user meets it: resolve the target's name, connect (bound to the link), send a
small download request, and stop the clock at the first byte of the answer. It runs first in
every test, light or speed, and costs well under a kilobyte. A delay past ACCESS_TIMEOUT_S, a
name that does not resolve or a refused connection is an error in the result (stage
`access_delay`), never a made-up delay.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from agent.budget import TestKind
from agent.measurements.kind import LinkUnderTest, Reading
from agent.net.netif import BindError
from agent.net.rawhttp import HTTP_OK, TargetError, connect_socket, host_header, resolve
from contract.i18n import N_, _
from contract.quantities import Quantity
from contract.result import MeasurementError

STAGE: Final = "access_delay"
# Long past the 4G limit (a mean of 5 s), so a slow access is measured rather than called failed.
ACCESS_TIMEOUT_S: Final = 30.0
REQUEST_PATH: Final = "/download?bytes=1000"
STATUS_LINE_LIMIT: Final = 1024
ACCESS_DELAY = Quantity(
    name="access_delay",
    title=N_("access delay"),
    unit="ms",
    whole_unit="ms",
    units_per=1,
    comparison="<=",
)


def _failed(code: str, message: str, bytes_used: int = 0) -> Reading:
    error = MeasurementError(stage=STAGE, code=code, message=message[:2000])
    return Reading(block=None, bytes_used=bytes_used, errors=(error,))


async def measure(link: LinkUnderTest) -> Reading:
    """One access: name resolution, connection and request, to the answer's first byte."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(ACCESS_TIMEOUT_S):
            endpoint = await resolve(link.target_url)
            sock = await connect_socket(endpoint, link.binding, ACCESS_TIMEOUT_S)
            reader, writer = await asyncio.open_connection(sock=sock, limit=STATUS_LINE_LIMIT)
            try:
                request = f"GET {REQUEST_PATH} HTTP/1.1\r\nHost: {host_header(endpoint)}\r\n\r\n"
                writer.write(request.encode())
                first = await reader.read(1)
                delay_ms = (time.monotonic() - started) * 1000
                status_line = first + await reader.readline()
            finally:
                writer.transport.abort()  # nothing more is wanted: no bytes spent on the body
    except TargetError as exc:
        return _failed("resolve-failed", exc.message)
    except BindError as exc:
        return _failed("bind-failed", exc.message)
    except TimeoutError:
        return _failed("timeout", f"no first byte within {ACCESS_TIMEOUT_S:g} s")
    except (OSError, ValueError) as exc:
        return _failed("connect-failed", f"{type(exc).__name__}: {exc}")
    used = len(request) + len(status_line) + 4 * 80  # request, answer and the handshake's headers
    parts = status_line.split()
    if not first or len(parts) < 2 or parts[1] != str(HTTP_OK).encode():  # noqa: PLR2004
        return _failed("bad-answer", f"the target answered {status_line[:80]!r}", used)
    return Reading(block={"values": {ACCESS_DELAY.name: round(delay_ms, 3)}}, bytes_used=used)


class AccessDelay:
    """The access delay kind (module docstring)."""

    name = "access_delay"
    slot: tuple[str, ...] = ("kinds", "access_delay")
    jobs: frozenset[TestKind] = frozenset({"speed", "light"})
    order = 5
    during: str | None = None
    delay_s = 0.0
    bulk = False
    quantities: tuple[Quantity, ...] = (ACCESS_DELAY,)

    async def run(self, link: LinkUnderTest) -> Reading:
        link.progress(_(ACCESS_DELAY.title), None)
        return await measure(link)


KIND = AccessDelay()
