"""What travels between the scripted clients and the API: answers, upload bodies, query
strings, and the live feed's socket."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tornado.httputil import HTTPHeaders
from tornado.websocket import WebSocketClientConnection


@dataclass
class Response:
    status: int
    body: Any
    headers: HTTPHeaders = field(default_factory=HTTPHeaders)
    content: bytes = b""  # the raw body (downloads)

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code"))
        return None


def query_string(params: dict[str, Any]) -> str:
    return ("?" + urlencode(params)) if params else ""


def multipart(
    fields: dict[str, str],
    file_field: str,
    filename: str,
    data: bytes,
    part_type: str = "application/octet-stream",
) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, as browsers and WeChat build them."""
    boundary = f"----microcourt{uuid.uuid4().hex}"
    safe_name = filename.replace("\r", " ").replace("\n", " ").replace('"', "%22")
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{file_field}"; filename="{safe_name}"\r\n'
        f"Content-Type: {part_type}\r\n\r\n"
    ).encode()
    out += data + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


class Feed:
    """An open live feed (``GET /api/v1/ws``)."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn

    async def next(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next message, decoded; None once the server has closed the feed.

        Raises TimeoutError when nothing arrives within ``timeout`` seconds."""
        raw = await asyncio.wait_for(self.conn.read_message(), timeout)
        return None if raw is None else json.loads(raw)

    async def send(self, message: dict[str, Any]) -> None:
        await self.conn.write_message(json.dumps(message))

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code

    def close(self) -> None:
        self.conn.close()


def decode_body(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
