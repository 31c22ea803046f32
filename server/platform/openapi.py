"""The OpenAPI 3.1 document, generated from the routing table and the pydantic models."""

from __future__ import annotations

import inspect
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from tornado.web import RequestHandler

from models.common import ErrorOut

METHODS = ("get", "post", "put", "patch", "delete")
_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<regex>[^)]*)\)")
_ERRORS = {
    "400": "请求格式有误",
    "401": "未登录或登录失效",
    "403": "无权操作",
    "404": "不存在或不属于你",
    "409": "状态冲突",
    "413": "内容过大",
    "422": "内容校验失败",
    "429": "过于频繁",
}


def route_methods(handler: type[RequestHandler]) -> list[str]:
    """The HTTP methods a handler class implements itself (not Tornado's 405 defaults)."""
    return [m for m in METHODS if getattr(handler, m) is not getattr(RequestHandler, m)]


def openapi_path(pattern: str) -> tuple[str, list[tuple[str, str]]]:
    params = [(m["name"], m["regex"]) for m in _GROUP.finditer(pattern)]
    return _GROUP.sub(lambda m: "{" + m["name"] + "}", pattern).rstrip("$"), params


def _models(routes: list[tuple[str, type[RequestHandler]]]) -> list[tuple[type[BaseModel], Any]]:
    found: dict[tuple[type[BaseModel], str], None] = {(ErrorOut, "serialization"): None}
    for _, handler in routes:
        for method in route_methods(handler):
            meta = getattr(getattr(handler, method), "__api__", {})
            for key in ("body", "query", "form"):
                if meta.get(key):
                    found[(meta[key], "validation")] = None
            if meta.get("response"):
                found[(meta["response"], "serialization")] = None
    return list(found)


def _operation(
    handler: type[RequestHandler],
    method: str,
    params: list[tuple[str, str]],
    refs: dict[Any, Any],
    defs: dict[str, Any],
) -> dict[str, Any]:
    fn = getattr(handler, method)
    meta = getattr(fn, "__api__", {})
    doc = inspect.getdoc(fn) or ""
    summary, _, description = doc.partition("\n")
    op: dict[str, Any] = {
        "operationId": f"{handler.__name__}.{method}",
        "summary": summary.strip(),
        "parameters": [
            {
                "name": n,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": f"^{r}$"},
            }
            for n, r in params
        ],
    }
    if description.strip():
        op["description"] = description.strip()
    if meta.get("query"):
        name = refs[(meta["query"], "validation")]["$ref"].rsplit("/", 1)[1]
        props, required = defs[name]["properties"], defs[name].get("required", [])
        op["parameters"] += [
            {"name": n, "in": "query", "required": n in required, "schema": s}
            for n, s in props.items()
        ]
    if meta.get("body"):
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(meta["body"], "validation")]}},
        }
    if meta.get("form"):
        name = refs[(meta["form"], "validation")]["$ref"].rsplit("/", 1)[1]
        op["requestBody"] = _multipart(defs[name])
    status = str(meta.get("status", 200))
    ok: dict[str, Any] = {"description": "成功"}
    if meta.get("response"):
        ok["content"] = {"application/json": {"schema": refs[(meta["response"], "serialization")]}}
    error = {"content": {"application/json": {"schema": refs[(ErrorOut, "serialization")]}}}
    op["responses"] = {status: ok, **{c: {"description": d, **error} for c, d in _ERRORS.items()}}
    roles = meta.get("roles")
    if roles is None:
        op["security"] = []
    else:
        op["x-roles"] = sorted(str(r) for r in roles)
    return op


def _multipart(form: dict[str, Any]) -> dict[str, Any]:
    """An upload: one binary ``file`` part, plus the form's fields."""
    schema = {
        "type": "object",
        "required": ["file", *form.get("required", [])],
        "properties": {
            "file": {"type": "string", "contentMediaType": "application/octet-stream"},
            **form.get("properties", {}),
        },
    }
    return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


def build_openapi(routes: list[tuple[str, type[RequestHandler]]]) -> dict[str, Any]:
    refs, schema = models_json_schema(_models(routes), ref_template="#/components/schemas/{model}")
    defs = schema.get("$defs", {})
    paths: dict[str, Any] = {}
    for pattern, handler in routes:
        path, params = openapi_path(pattern)
        paths[path] = {
            m: _operation(handler, m, params, refs, defs) for m in route_methods(handler)
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "microcourt API",
            "version": "1.0.0",
            "description": "移动微法院后端接口：立案、案件查询、联系法官、诉讼费缴纳。",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }
