"""The HTTP edge (server/platform/edge.py and the APIHandler's body parsing): each limit
answered in the error shape, with an X-Request-Id, and none of them by a dropped connection."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from miniapp_stubs.client import MiniProgram
from miniapp_stubs.wire import multipart
from server.platform.config import ServerSettings
from server.platform.edge import edge_server
from server.platform.observe import ACCESS, access_log
from tests.factories import KeepRecords, complaint, upload
from tests.waiting import until

Filer = Callable[[], Awaitable[MiniProgram]]
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def raw(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are and read one answer (without sending anything more)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").strip().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    writer.close()
    return int(status_line.split()[1]), headers, body


def port_of(api_url: str) -> int:
    return int(api_url.rsplit(":", 1)[1])


def own_server(app: Application, **limits: Any) -> tuple[HTTPServer, int]:
    """The app behind an edge of its own, with ``limits`` changed."""
    settings: ServerSettings = app.settings["services"].settings.server
    server = edge_server(app, settings.model_copy(update=limits))
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    return server, int(sockets[0].getsockname()[1])


@pytest.mark.gen_test
async def test_a_body_too_large_is_a_json_413_before_it_is_read(api_url: str) -> None:
    announced = 30 * 1024 * 1024
    head = (
        "POST /api/v1/filings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-Request-Id: big-body-0001\r\nContent-Length: {announced}\r\n\r\n"
    )
    status, headers, body = await raw(port_of(api_url), head.encode())  # no body sent at all
    assert status == 413 and headers["x-request-id"] == "big-body-0001"
    error = json.loads(body)["error"]
    assert error["code"] == "payload_too_large" and error["request_id"] == "big-body-0001"
    assert headers["content-type"].startswith("application/json")


@pytest.mark.gen_test
async def test_a_client_that_sends_the_whole_body_still_reads_the_413(
    filer: Filer, api_url: str
) -> None:
    mp = await filer()
    res = await mp.post("/api/v1/filings", raw=b'"' + b"x" * 30_000_000 + b'"')
    assert (res.status, res.error_code) == (413, "payload_too_large")
    assert res.headers["X-Request-Id"]
    chunked = "POST /api/v1/filings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"x" * 1_100_000
    data = chunked.encode() + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    status, _, body = await raw(port_of(api_url), data)
    assert (status, json.loads(body)["error"]["code"]) == (413, "payload_too_large")


@pytest.mark.gen_test
async def test_json_endpoints_take_json_only(filer: Filer) -> None:
    mp = await filer()
    body = json.dumps(complaint([await upload(mp)])).encode()
    for ctype in ("text/plain", "application/xml", "application/x-www-form-urlencoded", ""):
        res = await mp.post("/api/v1/filings", raw=body, headers={"Content-Type": ctype})
        assert (res.status, res.error_code) == (415, "unsupported_media_type"), ctype
    charset = {"Content-Type": "application/json; charset=UTF-8"}
    res = await mp.post("/api/v1/filings", raw=body, headers=charset)
    assert res.status == 201, res.body
    latin = {"Content-Type": "application/json; charset=latin-1"}
    assert (await mp.post("/api/v1/filings", raw=body, headers=latin)).status == 415


@pytest.mark.gen_test
async def test_control_characters_are_refused_line_breaks_kept(filer: Filer) -> None:
    mp = await filer()
    evidence = [await upload(mp)]
    for bad in ("a\x00b", "\x07", "x\x1b[31m", "\x85"):
        res = await mp.create_filing(complaint(evidence, facts=bad))
        assert (res.status, res.error_code) == (422, "validation_failed"), repr(bad)
        assert res.body["error"]["details"][0]["loc"] == ["facts"]
    res = await mp.create_filing(complaint(evidence, facts="第一段\n第二段\r\n\t第三段"))
    assert res.status == 201 and res.body["facts"] == "第一段\n第二段\r\n\t第三段"
    res = await mp.get("/api/v1/filings?cursor=a%00b")
    assert (res.status, res.error_code) == (422, "validation_failed")


@pytest.mark.gen_test
async def test_numbers_are_as_strict_in_every_body(filer: Filer) -> None:
    mp = await filer()
    evidence = [await upload(mp)]
    for amount in (100.0, "100", True):
        res = await mp.create_filing(complaint(evidence, amount_fen=amount))
        assert (res.status, res.error_code) == (422, "validation_failed"), amount
    assert (await mp.create_filing(complaint(evidence, amount_fen=100))).status == 201


@pytest.mark.gen_test
async def test_a_method_not_allowed_names_the_allowed_ones(filer: Filer, api_url: str) -> None:
    mp = await filer()
    trace = b"TRACE /api/v1/filings HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, headers, body = await raw(port_of(api_url), trace)
    assert (status, json.loads(body)["error"]["code"]) == (405, "method_not_allowed")
    assert headers["allow"] == "GET, POST"
    res = await mp.request("DELETE", "/api/v1/payments/wechat/notify")
    assert res.status == 405 and res.headers["Allow"] == "POST"
    assert res.body == {"code": "FAIL", "message": "失败"}  # the callbacks' own shape


@pytest.mark.gen_test
async def test_an_upload_is_authenticated_before_its_body_is_parsed(filer: Filer) -> None:
    mp = await filer()
    body, ctype = multipart({}, "file", "a.pdf", b"%PDF-1.4 ...")
    res = await mp.post("/api/v1/files", raw=body, headers={"Content-Type": ctype}, token="")
    assert (res.status, res.error_code) == (401, "unauthorized")
    junk = {"Content-Type": "multipart/form-data; boundary=xyz"}
    res = await mp.post("/api/v1/files", raw=b"junk", headers=junk, token="")
    assert (res.status, res.error_code) == (401, "unauthorized")


@pytest.mark.gen_test
async def test_a_long_request_line_or_header_block_is_answered(api_url: str) -> None:
    port = port_of(api_url)
    long_path = "/api/v1/filings?cursor=" + "a" * 70_000
    status, headers, body = await raw(port, f"GET {long_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert (status, json.loads(body)["error"]["code"]) == (414, "request_line_too_long")
    assert headers["x-request-id"]
    big = "".join(f"X-Pad-{i}: {'b' * 1000}\r\n" for i in range(70))
    status, _, body = await raw(port, f"GET /healthz HTTP/1.1\r\nHost: x\r\n{big}\r\n".encode())
    assert (status, json.loads(body)["error"]["code"]) == (431, "headers_too_large")


@pytest.mark.gen_test
async def test_slow_headers_time_out_and_connections_are_capped(app: Application) -> None:
    server, port = own_server(app, header_timeout_seconds=0.3, max_connections=3)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # and never the rest
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed by the server
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await until(lambda: len(server._connections) == 3)
        status, _, body = await raw(port, HEALTH)
        assert (status, json.loads(body)["error"]["code"]) == (503, "too_many_connections")
        for _, w in held:
            w.close()
    finally:
        server.stop()
        await server.close_all_connections()


@pytest.mark.gen_test(timeout=120)
async def test_half_open_connections_do_not_starve_a_normal_request(app: Application) -> None:
    server, port = own_server(app)
    held: list[Any] = []
    try:
        for _ in range(500):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /api/v1/filings HTTP/1.1\r\nHost: x\r\nContent-Len")
            held.append(writer)
        await until(lambda: len(server._connections) >= 500, timeout=60)
        started = time.monotonic()
        status, _, body = await raw(port, HEALTH)
        elapsed = time.monotonic() - started
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        print(f"\n500 half-open connections held: /healthz answered in {elapsed * 1000:.0f} ms")
        assert elapsed < 1.0, elapsed
    finally:
        for w in held:
            w.close()
        server.stop()
        await server.close_all_connections()


@pytest.mark.gen_test
async def test_behind_a_proxy_the_address_is_the_proxys_word_for_that_request_only(
    app: Application,
) -> None:
    """X-Real-Ip, else X-Forwarded-For's last entry, when it is an address; the next request
    on the same connection is the socket's again (what the access log and limits see)."""
    server, port = own_server(app, behind_proxy=True)
    keep, level = KeepRecords(), access_log.level
    access_log.addHandler(keep)
    access_log.setLevel(logging.INFO)
    sent = [
        {"X-Real-Ip": "198.18.0.7", "X-Forwarded-For": "10.0.0.1"},
        {},
        {"X-Forwarded-For": "203.0.113.5, 198.18.0.9"},
        {"X-Real-Ip": "not-an-address"},
    ]
    try:
        ACCESS.flush()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n, headers in enumerate(sent):  # one keep-alive connection
            lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(
                f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: proxied-{n:04d}\r\n"
                f"{lines}\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()
        ACCESS.flush()
    finally:
        access_log.removeHandler(keep)
        access_log.setLevel(level)
        server.stop()
        await server.close_all_connections()
    seen = {f["request_id"]: f["ip"] for r in keep.records for _, f in r.batch}  # type: ignore[attr-defined]
    assert [seen[f"proxied-{n:04d}"] for n in range(4)] == [
        "198.18.0.7",
        "127.0.0.1",
        "198.18.0.9",
        "127.0.0.1",
    ]
