"""The HTTP edge: what is answered before a request reaches a handler.

Tornado's own limits drop the connection (a body over ``max_body_size`` gets a bare 400, a
header block over ``max_header_size`` no answer at all). Here those limits are ours, checked
as soon as the request line and headers have arrived, and answered in the API's error shape
with an ``X-Request-Id``: 414 for a request line, 431 for headers, 413 for a body (before any
of it is read; a body sent anyway is drained and dropped, so that the client, still sending,
reads the answer rather than a reset). Past ``max_connections`` a new connection gets a 503.
Tornado's own limits stay behind ours, far enough to leave room for them.

Behind a proxy (``server.behind_proxy``) the client's address and scheme are taken from
``X-Real-Ip``/``X-Forwarded-For`` and ``X-Scheme``/``X-Forwarded-Proto`` here, as Tornado's
``xheaders`` would, but only when a request carries them: Tornado's validated the socket's own
address on every request (``getaddrinfo``) through one more delegate, about 5 % of /healthz.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable
from typing import Any

from tornado import httputil, iostream
from tornado.httpserver import HTTPServer

from server.platform.config import ServerSettings
from server.platform.errors import (
    APIError,
    HeadersTooLarge,
    PayloadTooLarge,
    RequestLineTooLong,
    TooManyConnections,
)

log = logging.getLogger("microcourt.edge")

DRAIN_FACTOR = 4  # a refused body up to this many times max_body_bytes is drained, not reset
HEADER_SLACK = 16  # Tornado's header buffer, in multiples of ours: beyond it, dropped


def edge_server(app: httputil.HTTPServerConnectionDelegate, server: ServerSettings) -> HTTPServer:
    """The HTTP server of ``app`` with the edge's limits (used by serve and by the tests)."""
    return EdgeServer(
        app,
        limits=server,
        max_body_size=server.max_body_bytes * DRAIN_FACTOR,
        max_header_size=server.max_header_bytes * HEADER_SLACK,
        idle_connection_timeout=server.header_timeout_seconds,
        body_timeout=server.body_timeout_seconds,
    )


class EdgeServer(HTTPServer):
    def initialize(  # type: ignore[override]
        self, *args: Any, limits: ServerSettings, **kwargs: Any
    ) -> None:
        self.limits = limits
        super().initialize(*args, **kwargs)

    def handle_stream(self, stream: iostream.IOStream, address: tuple[Any, ...]) -> None:
        if len(self._connections) >= self.limits.max_connections:
            log.warning("connection refused: %d open", len(self._connections))
            _refuse_connection(stream)
            return
        super().handle_stream(stream, address)

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        inner = super().start_request(server_conn, request_conn)
        return _Guard(inner, request_conn, self.limits)


def _refuse_connection(stream: iostream.IOStream) -> None:
    busy = TooManyConnections()
    head, data = _response(busy, _request_id(None))
    lines = [f"HTTP/1.1 {busy.status} Service Unavailable", *(f"{k}: {v}" for k, v in head)]
    future = stream.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
    future.add_done_callback(lambda _: stream.close())


def _request_id(headers: httputil.HTTPHeaders | None) -> str:
    from handlers.base import request_id_of  # the handlers' own rule, one place

    return request_id_of(headers.get("X-Request-Id", "") if headers else "")


def _response(error: APIError, request_id: str) -> tuple[list[tuple[str, str]], bytes]:
    body = error.to_json()
    body["error"]["request_id"] = request_id
    data = json.dumps(body, ensure_ascii=False).encode()
    head = [
        ("Content-Type", "application/json; charset=UTF-8"),
        ("Content-Length", str(len(data))),
        ("X-Request-Id", request_id),
        ("Cache-Control", "no-store"),
        ("Connection", "close"),
    ]
    return head, data


def _too_large(
    start: httputil.RequestStartLine,
    headers: httputil.HTTPHeaders,
    limits: ServerSettings,
    body_limit: int,
) -> APIError | None:
    """What the request line and headers alone show is too large, if anything."""
    if len(start.path) > limits.max_request_line_bytes:
        return RequestLineTooLong()
    if sum(len(k) + len(v) + 4 for k, v in headers.get_all()) > limits.max_header_bytes:
        return HeadersTooLarge()
    length = headers.get("Content-Length", "")
    if length.isdigit() and int(length) > body_limit:
        return PayloadTooLarge(details={"max_bytes": body_limit})
    return None


def _forwarded(context: Any, headers: httputil.HTTPHeaders) -> None:
    """The client's address and scheme as the proxy says (Tornado's ``xheaders`` rules: the
    last ``X-Forwarded-For`` entry, overridden by ``X-Real-Ip``; kept only if an address)."""
    ip = headers.get("X-Real-Ip") or headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            pass
        else:
            context.remote_ip = ip
    scheme = headers.get("X-Scheme") or headers.get("X-Forwarded-Proto")
    if scheme:
        scheme = scheme.rsplit(",", 1)[-1].strip()
        if scheme in ("http", "https"):
            context.protocol = scheme


def _body_limit(headers: httputil.HTTPHeaders, limits: ServerSettings) -> int:
    """Uploads up to ``max_body_bytes``; any other body up to the JSON limit."""
    multipart = headers.get("Content-Type", "").lower().startswith("multipart/form-data")
    return limits.max_body_bytes if multipart else limits.max_json_body_bytes


class _Guard(httputil.HTTPMessageDelegate):
    """Passes a request on to the application unless a limit refuses it."""

    def __init__(
        self,
        inner: httputil.HTTPMessageDelegate,
        conn: httputil.HTTPConnection,
        limits: ServerSettings,
    ) -> None:
        self.inner, self.conn, self.limits = inner, conn, limits
        self.forwarded = self.refused = False
        self.received = 0
        self.limit = limits.max_body_bytes
        self.headers: httputil.HTTPHeaders | None = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        # not a coroutine: a request let through costs no coroutine and no await
        assert isinstance(start_line, httputil.RequestStartLine)
        self.headers, self.limit = headers, _body_limit(headers, self.limits)
        error = _too_large(start_line, headers, self.limits, self.limit)
        if error is not None:
            return self._refuse(error, start_line)
        self.forwarded = True
        if not self.limits.behind_proxy or not _FORWARDING.intersection(headers):
            return self.inner.headers_received(start_line, headers)
        # the request copies the address and scheme from the connection's context as it is
        # made (in the inner delegate); the next request on the connection sees the socket's
        context = self.conn.context  # type: ignore[attr-defined]  # HTTP1Connection's
        own = context.remote_ip, context.protocol
        _forwarded(context, headers)
        try:
            return self.inner.headers_received(start_line, headers)
        finally:
            context.remote_ip, context.protocol = own

    async def _refuse(self, error: APIError, start: httputil.RequestStartLine | None) -> None:
        self.refused = True
        rid = _request_id(self.headers)
        log.info("refused at the edge: %s %s request_id=%s", error.status, error.code, rid)
        head, data = _response(error, rid)
        line = httputil.ResponseStartLine("HTTP/1.1", error.status, _REASONS[error.status])
        await self.conn.write_headers(line, httputil.HTTPHeaders(dict(head)), data)
        length = self.headers.get("Content-Length", "0") if self.headers else "0"
        drainable = self.limits.max_body_bytes * DRAIN_FACTOR  # Tornado's own limit
        if start is None or not length.isdigit() or int(length) > drainable:
            self.conn.finish()  # Tornado closes the connection: nothing is drained

    def data_received(self, chunk: bytes) -> Any:
        if self.refused:
            return None  # drained and dropped
        self.received += len(chunk)
        if self.received > self.limit:  # a chunked body, whose length came unannounced
            return self._refuse(PayloadTooLarge(details={"max_bytes": self.limit}), None)
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if self.refused:
            self.conn.finish()
            self.conn.close()  # type: ignore[attr-defined]  # HTTP1Connection; said ``close``
            return
        self.inner.finish()

    def on_connection_close(self) -> None:
        if self.forwarded:
            self.inner.on_connection_close()


_FORWARDING = frozenset(("X-Real-Ip", "X-Forwarded-For", "X-Scheme", "X-Forwarded-Proto"))
_REASONS = {413: "Payload Too Large", 414: "URI Too Long", 431: "Request Header Fields Too Large"}
