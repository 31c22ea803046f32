"""The error registry: one class per code, each code once, each in the OpenAPI document, and
each answered in its one shape (the error body, or WeChat Pay's for a callback refusal)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.web import Application

import server.app  # noqa: F401  (imports every capability, so every errors.py)
from handlers.base import APIHandler, public
from handlers.payments import CallbackHandler
from miniapp_stubs.client import ApiSession
from server.platform.errors import GENERIC, REGISTRY, APIError, NotFound, registered
from server.wechat.errors import CallbackRejected

CJK = re.compile(r"[\u4e00-\u9fff]")


def _subclasses(cls: type[APIError]) -> Iterator[type[APIError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_class_names_its_own_code_once() -> None:
    classes = [c for c in _subclasses(APIError) if c.__module__.startswith("server.")]
    for cls in classes:
        assert "code" in cls.__dict__, f"{cls.__qualname__} has no code of its own"
        assert REGISTRY[cls.code] is cls
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.code), cls.code
        assert CJK.search(cls.message), f"{cls.code}: the message is not Chinese"
        assert 400 <= cls.status < 600
        assert cls.status in GENERIC, f"{cls.code}: no generic kind for {cls.status}"
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)) == len(REGISTRY)
    assert [e.code for e in registered()] == sorted(REGISTRY, key=lambda c: (REGISTRY[c].status, c))


def test_a_second_class_with_a_known_code_fails_at_definition() -> None:
    with pytest.raises(TypeError, match="case_not_found"):

        class Again(NotFound):
            code = "case_not_found"

    assert REGISTRY["case_not_found"].__module__ == "server.cases.errors"


def test_no_raising_site_writes_a_code() -> None:
    """Codes live in the errors modules only: nowhere else is ``code=`` passed to an error."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sites = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("server", "handlers")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "errors.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\b(?<!_)code=", line)
    ]
    assert sites == []


def _codes_in(response: dict[str, Any], spec: dict[str, Any]) -> set[str]:
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    found: set[str] = set()
    for content in response.get("content", {}).values():
        found |= set(content.get("examples", {}))
        for part in content["schema"].get("allOf", []):
            code = part.get("properties", {}).get("error", {}).get("properties", {}).get("code")
            found |= set(code["enum"]) if code else set()
    return found


@pytest.mark.gen_test
async def test_every_code_is_in_the_openapi_documents_responses(api_url: str) -> None:
    spec = (await ApiSession(api_url).get("/api/v1/openapi.json")).body
    documented: dict[str, set[int]] = {}
    for item in spec["paths"].values():
        for op in item.values():
            for status, response in op["responses"].items():
                for code in _codes_in(response, spec):
                    documented.setdefault(code, set()).add(int(status))
    missing = sorted(set(REGISTRY) - set(documented))
    assert missing == []
    for code, statuses in documented.items():
        assert statuses == {REGISTRY[code].status}, code
    notify = spec["paths"]["/api/v1/payments/wechat/notify"]["post"]["responses"]
    assert set(notify["401"]["content"]["application/json"]["examples"]) == {
        "callback_signature_invalid",
        "callback_stale",
    }


class _Raise(APIHandler):
    @public
    async def get(self, code: str) -> None:
        raise REGISTRY[code]()


class _Refuse(CallbackHandler):
    @public
    async def post(self, code: str) -> None:
        async def handle(headers: dict[str, str], body: bytes) -> None:
            raise REGISTRY[code]()

        await self.answer(handle)


@pytest.mark.gen_test
async def test_every_registered_error_is_answered_in_its_one_shape(
    app: Application, api_url: str
) -> None:
    app.wildcard_router.add_rules([(r"/raise/(\w+)", _Raise), (r"/refuse/(\w+)", _Refuse)])
    s = ApiSession(api_url)
    for code, cls in REGISTRY.items():
        if issubclass(cls, CallbackRejected):
            res = await s.post(f"/refuse/{code}", {})
            assert (res.status, res.body) == (cls.status, {"code": "FAIL", "message": cls.message})
            continue
        res = await s.get(f"/raise/{code}")
        assert res.status == cls.status, code
        assert set(res.body) == {"error"}, code
        error = res.body["error"]
        assert (error["code"], error["message"]) == (code, cls.message)
        assert set(error) == {"code", "message", "request_id"}
