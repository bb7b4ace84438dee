"""An `iperf3 -s` beside the HTTP endpoints, restarted whenever it dies.

iperf3's server runs one test at a time: a second client is told "the server is busy running a
test" until the first ends (the agent's iperf3 runner reports that as the error `server-busy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from contract.errors import ServiceError
from contract.i18n import _

LOG = logging.getLogger("qos-target.iperf3")
RESTART_FIRST_S: Final = 0.5
RESTART_CAP_S: Final = 30.0
# A server that stayed up this long was healthy: the next restart starts from the first delay.
HEALTHY_S: Final = 60.0
STOP_GRACE_S: Final = 3.0


def iperf3_argv(binary: str, port: int, bind: str | None) -> list[str]:
    argv = [binary, "-s", "-p", str(port)]
    return [*argv, "-B", bind] if bind else argv


class Iperf3Server:
    """Supervises one `iperf3 -s`: start, restart with capped backoff, stop on close."""

    def __init__(self, port: int, bind: str | None = None, binary: str = "iperf3") -> None:
        path = shutil.which(binary)
        if path is None:
            raise ServiceError(
                _("{binary} is not installed, so --iperf3-port cannot be served").format(
                    binary=binary
                ),
                _("apt-get install iperf3, or leave --iperf3-port off"),
            )
        self.argv = iperf3_argv(path, port, bind)
        self.starts = 0
        self.process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    async def lifetime(self, _app: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context: the server runs as long as the application."""
        await self.start()
        yield
        await self.stop()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="iperf3-server")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_FIRST_S
        while True:
            started = loop.time()
            self.starts += 1
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                code = await self.process.wait()
            except asyncio.CancelledError:
                await self._terminate(self.process)
                raise
            if loop.time() - started >= HEALTHY_S:
                delay = RESTART_FIRST_S
            LOG.warning("iperf3 -s exited with %s; restarting in %.1f s", code, delay)
            await asyncio.sleep(delay)
            delay = min(RESTART_CAP_S, delay * 2)

    @staticmethod
    async def _terminate(process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
