"""A small HTTP proxy on loopback for tests: tunnels CONNECT, forwards plain requests, counts.

It behaves as an office proxy does: `CONNECT host:port` opens a tunnel (HTTPS travels
through it end to end), a request in absolute form (`POST http://host/path`) is passed on,
and with `credentials` set, anything without the matching `Proxy-Authorization` gets
407. It only ever connects to loopback addresses.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from app.services.connection.network import is_loopback_host


@dataclass
class ProxyCounts:
    """What went through the proxy."""

    tunnels: list[str] = field(default_factory=list)  # host:port of each CONNECT
    forwarded: list[str] = field(default_factory=list)  # URL of each plain request
    refused: int = 0  # 407 answers
    credentials: list[tuple[str, str]] = field(default_factory=list)  # as received


class LocalProxy:
    """Start with `await start()`; `url` is then http://127.0.0.1:PORT."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.counts = ProxyCounts()
        self.url = ""
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = [line.split(":", 1) for line in lines[1:] if ":" in line]
        by_name = {name.strip().lower(): value.strip() for name, value in headers}
        if not self._authorised(by_name.get("proxy-authorization", "")):
            self.counts.refused += 1
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b'Proxy-Authenticate: Basic realm="office"\r\n'
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            if not is_loopback_host(host):
                raise ConnectionError("this test proxy reaches loopback addresses only")
            self.counts.tunnels.append(target)
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._pipe_both(reader, writer, upstream_reader, upstream_writer)
            return
        parts = urlsplit(target)
        if not is_loopback_host(parts.hostname):
            raise ConnectionError("this test proxy reaches loopback addresses only")
        self.counts.forwarded.append(target)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        length = int(by_name.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        kept = [f"{name}:{value}" for name, value in headers
                if name.strip().lower() not in ("proxy-authorization", "proxy-connection",
                                                "connection")]
        request = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close",
                               "", ""]).encode("latin-1") + body
        upstream_reader, upstream_writer = await asyncio.open_connection(
            parts.hostname, parts.port or 80)
        upstream_writer.write(request)
        await upstream_writer.drain()
        # the answer goes back as it comes; "Connection: close" ends the exchange
        while chunk := await upstream_reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        upstream_writer.close()

    def _authorised(self, header: str) -> bool:
        if header.lower().startswith("basic "):
            with contextlib.suppress(ValueError):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                self.counts.credentials.append((user, password))
                return self.credentials is None or (user, password) == self.credentials
        return self.credentials is None

    @staticmethod
    async def _pipe_both(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         upstream_reader: asyncio.StreamReader,
                         upstream_writer: asyncio.StreamWriter) -> None:
        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.write_eof()

        try:
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()
