"""The application shell: health, metrics, OpenAPI, the error shape, request ids."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate
from pymongo import AsyncMongoClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application

from handlers.base import APIHandler, public
from miniapp_stubs.client import ApiSession, MiniProgram
from server.app import make_app, routes
from server.devstack import free_port
from server.platform.openapi import openapi_path, route_methods
from tests.factories import TEST_KEYS, Phone


@pytest.mark.gen_test
async def test_health_ready_and_metrics(api_url: str) -> None:
    s = ApiSession(api_url)
    health = await s.get("/healthz")
    assert (health.status, health.body) == (200, {"status": "ok"})
    ready = await s.get("/readyz")
    assert (ready.status, ready.body) == (200, {"status": "ready"})
    metrics = await s.get("/metrics")
    assert metrics.status == 200
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert (
        'microcourt_request_seconds_count{handler="HealthHandler",method="GET",status="200"}'
        in metrics.body
    )


@pytest.fixture
def mongo_down_app(settings, clock, wechat, io_loop) -> Iterator[Application]:  # type: ignore[no-untyped-def]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", serverSelectionTimeoutMS=200
    )
    yield make_app(settings, client["x"], clock=clock, wechat=wechat, keys=TEST_KEYS)
    io_loop.run_sync(client.close)


@pytest.mark.gen_test
async def test_database_down_is_503_not_500(mongo_down_app: Application, emulator) -> None:  # type: ignore[no-untyped-def]
    sock, port = bind_unused_port()
    server = HTTPServer(mongo_down_app)
    server.add_sockets([sock])
    try:
        mp = MiniProgram(f"http://127.0.0.1:{port}", emulator.url)
        ready = await mp.get("/readyz")
        assert (ready.status, ready.error_code) == (503, "database_unavailable")
        login = await mp.login()
        assert (login.status, login.error_code) == (503, "database_unavailable")
        assert (await mp.get("/healthz")).status == 200
    finally:
        server.stop()


@pytest.mark.gen_test
async def test_openapi_document_is_valid_and_lists_every_route(api_url: str) -> None:
    res = await ApiSession(api_url).get("/api/v1/openapi.json")
    assert res.status == 200
    spec = res.body
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    for pattern, handler in routes():
        path, _ = openapi_path(pattern)
        assert path in spec["paths"], path
        assert set(spec["paths"][path]) == set(route_methods(handler)), path
    login = spec["paths"]["/api/v1/auth/wx-login"]["post"]
    assert login["security"] == []
    body_ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref == "#/components/schemas/WxLoginIn"
    verify = spec["paths"]["/api/v1/admin/lawyers/{user_id}/verify"]["post"]
    assert verify["parameters"][0]["name"] == "user_id"
    assert verify["x-roles"] == ["admin"]


@pytest.mark.gen_test
async def test_unknown_paths_and_methods_answer_in_the_error_shape(api_url: str) -> None:
    s = ApiSession(api_url)
    for method, path in [
        ("GET", "/api/v1/nothing"),
        ("POST", "/api/v2/me"),
        ("DELETE", "/api/v1/cases/1"),
        ("GET", "/elsewhere"),
    ]:
        res = await s.request(method, path)
        assert res.status == 404, path
        assert res.body["error"]["code"] == "no_such_endpoint"
        assert res.body["error"]["message"] == "接口不存在"
    res = await s.request("DELETE", "/api/v1/me")
    assert res.status == 405 and res.body["error"]["code"] == "method_not_allowed"


@pytest.mark.gen_test
async def test_request_id_is_echoed_or_made(api_url: str) -> None:
    s = ApiSession(api_url)
    mine = await s.get("/api/v1/courts", headers={"X-Request-Id": "req-12345678"})
    assert mine.headers["X-Request-Id"] == "req-12345678"
    made = await s.get("/api/v1/courts", headers={"X-Request-Id": "bad id with spaces"})
    assert len(made.headers["X-Request-Id"]) == 32
    err = await s.get("/api/v1/me")
    assert err.status == 401
    assert err.body["error"]["request_id"] == err.headers["X-Request-Id"]


@pytest.mark.gen_test
async def test_bad_bodies(phone: Phone, settings) -> None:  # type: ignore[no-untyped-def]
    mp = phone()
    await mp.login()
    cases: list[tuple[bytes, int, str]] = [
        (b"{", 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b"[]", 400, "malformed_json"),
        (b'"text"', 400, "malformed_json"),
        (b"", 400, "malformed_json"),
        (b'{"name": 5, "id_number": []}', 422, "validation_failed"),
        (b" " * (settings.server.max_json_body_bytes + 1), 413, "payload_too_large"),
    ]
    for raw, status, code in cases:
        res = await mp.request("PUT", "/api/v1/me/identity", raw=raw)
        assert (res.status, res.error_code) == (status, code), raw[:20]
    res = await mp.request("PUT", "/api/v1/me/identity", raw=b'{"name": 5, "id_number": []}')
    locs = [d["loc"] for d in res.body["error"]["details"]]
    assert ["name"] in locs and ["id_number"] in locs


class _Boom(APIHandler):
    @public
    async def get(self) -> None:
        raise RuntimeError("secret internals")


@pytest.mark.gen_test
async def test_unexpected_errors_are_500_without_a_traceback(
    app: Application, api_url: str
) -> None:
    app.wildcard_router.add_rules([(r"/boom", _Boom)])
    res = await ApiSession(api_url).get("/boom")
    assert res.status == 500
    assert res.body["error"]["code"] == "internal_error"
    assert "secret internals" not in str(res.body) and "Traceback" not in str(res.body)
