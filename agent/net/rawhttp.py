"""A small HTTP/1.1 client for qos-target: bulk flows that count bytes and copy nothing.

Measured on loopback against qos-target (2-core EPYC VM, one flow, 4 s): an asyncio
BufferedProtocol receiving into one reused buffer sustained ~20 Gb/s at 0.14-0.23 CPU-seconds per
GB; aiohttp's `content.iter_any()` counting lengths sustained 10.6-17 Gb/s at 0.36-0.67 CPU-s/GB.
So bulk flows use protocols here; the rest of the agent may keep aiohttp.
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import socket
import struct
import termios
from typing import Final, NamedTuple
from urllib.parse import urlsplit

from agent.measurements.base import Binding
from agent.net.netif import bound_socket
from contract.errors import QosfleetError

READ_BUFFER_BYTES: Final = 1 << 18
WRITE_PIECE_BYTES: Final = 1 << 16
HEADER_LIMIT: Final = 1 << 14
HTTP_OK: Final = 200


class TargetError(QosfleetError):
    """The target URL cannot be used or its host cannot be resolved."""


class Endpoint(NamedTuple):
    """Where a test connects: the Host header, and one resolved socket address."""

    host: str
    port: int
    family: socket.AddressFamily
    sockaddr: tuple[str, int] | tuple[str, int, int, int]

    @property
    def version(self) -> int:
        return 6 if self.family == socket.AF_INET6 else 4


def split_target(url: str) -> tuple[str, int]:
    """(host, port) of an http:// target URL; IPv6 literals come back without brackets."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise TargetError(f"target {url!r} is not an http:// URL", "e.g. http://198.18.0.2:8080")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise TargetError(f"target {url!r} has a bad port", "e.g. http://198.18.0.2:8080") from exc
    return parts.hostname, port


def is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve(url: str, *, version: int | None = None) -> Endpoint:
    """The first address of the target URL's host (of one IP version when asked)."""
    host, port = split_target(url)
    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(version or 0, socket.AF_UNSPEC)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetError(f"cannot resolve {host}: {exc}", "check the name and the DNS") from exc
    info_family, _kind, _proto, _name, sockaddr = infos[0]
    if not isinstance(sockaddr[0], str):
        raise TargetError(f"{host} resolved to a non-IP address", "use an IPv4 or IPv6 target")
    return Endpoint(host, port, socket.AddressFamily(info_family), sockaddr)


def host_header(endpoint: Endpoint) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"{host}:{endpoint.port}"


async def connect_socket(endpoint: Endpoint, binding: Binding, timeout_s: float) -> socket.socket:
    """A connected, non-blocking TCP socket bound to binding; OSError/TimeoutError on failure."""
    sock = bound_socket(endpoint.family, binding)
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.get_running_loop().sock_connect(sock, endpoint.sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def abort(transport: asyncio.Transport) -> None:
    """Close at once and discard queued bytes (a RST), so no data is spent after the test."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.fileno() < 0:
        return  # closed already (e.g. the target answered before the upload's end)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _status(head: bytes) -> int:
    """The status code of a response head (0 if it is not HTTP)."""
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
    try:
        return int(parts[1]) if parts[0].startswith(b"HTTP/1.") else 0
    except (IndexError, ValueError):
        return 0


class Flow(asyncio.BaseProtocol):
    """What the runner reads from every bulk flow, download or upload."""

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.failure: str | None = None
        self.complete = False
        self.transport: asyncio.Transport | None = None

    def counted(self) -> int:
        raise NotImplementedError

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        if self.transport is not None:
            self.transport.close()

    def _lost(self, exc: Exception | None) -> None:
        if not self.complete and self.failure is None:
            self.failure = f"the target closed the flow early ({exc or 'end of stream'})"
        if not self.done.done():
            self.done.set_result(None)


class DownloadFlow(Flow, asyncio.BufferedProtocol):
    """GET /download?bytes=N into one shared buffer; only the body length is kept."""

    def __init__(self, request: bytes, buffer: bytearray) -> None:
        super().__init__()
        self.body_bytes = 0
        self._request = request
        self._buffer = buffer
        self._head: bytes | None = b""
        self._expected = 0

    def counted(self) -> int:
        return self.body_bytes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def get_buffer(self, sizehint: int) -> bytearray:  # noqa: ARG002 - one buffer fits all
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self._head is None:
            self.body_bytes += nbytes
        else:
            self._read_head(bytes(self._buffer[:nbytes]))
        if self._expected and self.body_bytes >= self._expected:
            self.complete = True

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    def _read_head(self, data: bytes) -> None:
        assert self._head is not None
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            self._head = head
            if len(head) > HEADER_LIMIT:
                self._fail("the target's response head is too long")
            return
        status = _status(head)
        if status != HTTP_OK:
            self._fail(f"the target answered HTTP {status or '(not HTTP)'}")
            return
        for line in head[:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                self._expected = int(value.strip() or 0)
        self._head = None
        self.body_bytes = len(head) - end - 4


class UploadFlow(Flow, asyncio.Protocol):
    """POST /upload streaming slices of one pre-allocated payload; counts bytes acknowledged.

    Bytes written are not bytes delivered: the kernel's send queue holds megabytes. Acknowledged
    = handed to the kernel - still in its send queue (SIOCOUTQ: unsent + unacknowledged).
    """

    def __init__(self, head: bytes, length: int, payload: memoryview) -> None:
        super().__init__()
        self._head = head
        self._length = length
        self._payload = payload
        self._written = 0
        self._paused = False
        self._fd = -1
        self._answer = b""
        self._acked = 0

    def counted(self) -> int:
        if self.transport is None or self.transport.is_closing():
            return self._acked  # the last count before it closed
        in_kernel = self._written + len(self._head) - self.transport.get_write_buffer_size()
        unacked = struct.unpack("i", fcntl.ioctl(self._fd, termios.TIOCOUTQ, b"\0" * 4))[0]
        self._acked = max(self._acked, in_kernel - unacked - len(self._head))
        return self._acked

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._fd = transport.get_extra_info("socket").fileno()
        transport.write(self._head)
        self._fill()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._fill()

    def data_received(self, data: bytes) -> None:
        self._answer += data[:HEADER_LIMIT]
        if b"\r\n" not in self._answer:
            return
        status = _status(self._answer)
        if status == HTTP_OK and self._written >= self._length:
            self.complete = True
        else:
            self._fail(f"the target answered HTTP {status or '(not HTTP)'} to the upload")

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    def _fill(self) -> None:
        assert self.transport is not None
        size = len(self._payload)
        while not self._paused and self._written < self._length:
            if self.transport.is_closing():
                return
            offset = self._written % size
            piece = min(WRITE_PIECE_BYTES, size - offset, self._length - self._written)
            self.transport.write(self._payload[offset : offset + piece])
            self._written += piece


class SmallClient:
    """One kept-alive connection for small requests (/echo, a short /download): status, length."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._host = host

    @classmethod
    async def open(cls, endpoint: Endpoint, binding: Binding, timeout_s: float) -> SmallClient:
        sock = await connect_socket(endpoint, binding, timeout_s)
        reader, writer = await asyncio.open_connection(sock=sock, limit=HEADER_LIMIT * 4)
        return cls(reader, writer, host_header(endpoint))

    async def get(self, path: str) -> tuple[int, int]:
        """GET path; (status, body bytes) once the whole body has arrived."""
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: {self._host}\r\n\r\n".encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip() or 0)
        received = 0
        while received < length:
            chunk = await self._reader.read(min(READ_BUFFER_BYTES, length - received))
            if not chunk:
                raise ConnectionResetError("the target closed the connection mid-body")
            received += len(chunk)
        return _status(head), received

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            return  # already reset: nothing more to release
