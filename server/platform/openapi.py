"""The OpenAPI 3.1 document, generated from the routing table and the pydantic models."""

from __future__ import annotations

import inspect
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from tornado.web import RequestHandler

from models.common import ErrorOut
from server.platform.errors import APIError, registered
from server.platform.idempotency import KEY_PATTERN

METHODS = ("get", "post", "put", "patch", "delete")
_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<regex>[^)]*)\)")
_ERRORS = {
    400: "请求格式有误",
    401: "未登录或登录失效",
    403: "无权操作",
    404: "不存在或不属于你",
    405: "不支持该请求方法",
    409: "状态冲突",
    413: "内容过大",
    414: "请求地址过长",
    415: "内容类型不支持",
    422: "内容校验失败",
    429: "过于频繁",
    431: "请求头过大",
    500: "服务器内部错误",
    503: "服务暂时不可用",
}
_CALLBACK_OK = {"code": {"type": "string", "const": "FAIL"}, "message": {"type": "string"}}


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
    ordinary: list[type[APIError]],
) -> dict[str, Any]:
    fn = getattr(handler, method)
    meta = getattr(fn, "__api__", {})
    doc = inspect.getdoc(fn) or ""
    summary, _, description = doc.partition("\n")
    op: dict[str, Any] = {
        "operationId": f"{handler.__name__}.{method}",
        "summary": summary.strip(),
        "parameters": _parameters(meta, params, refs, defs),
    }
    if description.strip():
        op["description"] = description.strip()
    body = _request_body(meta, refs, defs)
    if body is not None:
        op["requestBody"] = body
    callback = getattr(handler, "refuses", None) is not None
    op["responses"] = {**_successes(meta, refs, callback), **_error_responses(handler, ordinary)}
    op["parameters"] += _headers(meta)
    if callback:
        op["parameters"] += _CALLBACK_HEADERS
        op["requestBody"] = {"required": True, "content": {"application/json": _NOTIFICATION}}
    roles = meta.get("roles")
    if roles is None:
        op["security"] = []
    else:
        op["x-roles"] = sorted(str(r) for r in roles)
    return op


def _successes(meta: dict[str, Any], refs: dict[Any, Any], callback: bool) -> dict[str, Any]:
    """The declared success status, and any other (``also``) with its model; 204 is empty."""
    answers = {meta.get("status", 200): meta.get("response"), **meta.get("also", {})}
    if callback:  # WeChat Pay's notifications: accepted is an empty 204
        answers = {204: None}
    out: dict[str, Any] = {}
    for status, model in sorted(answers.items()):
        ok: dict[str, Any] = {"description": "成功", "headers": _RESPONSE_HEADERS}
        if meta.get("idempotent"):
            ok["headers"] = {**_RESPONSE_HEADERS, **_REPLAYED}
        if model is not None:
            ok["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
        out[str(status)] = ok
    return out


def _headers(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The request headers every operation reads, and ``Idempotency-Key`` where honoured."""
    out = [
        {
            "name": "X-Request-Id",
            "in": "header",
            "required": False,
            "description": "追踪编号：8 至 64 位字母、数字或 ._-，原样回传；否则由服务器生成",
            "schema": {"type": "string"},
        }
    ]
    if meta.get("idempotent"):
        out.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "幂等键：同一用户以同一键重复请求，得到第一次的结果（24 小时内）；"
                "空值视同未提供",
                "schema": {"type": "string", "pattern": f"^$|{KEY_PATTERN.pattern}"},
            }
        )
    return out


_CALLBACK_HEADERS = [
    {"name": n, "in": "header", "required": True, "schema": {"type": "string"}}
    for n in ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial")
]
_RESOURCE = {
    "type": "object",
    "required": ["algorithm", "ciphertext", "nonce"],
    "properties": {
        "algorithm": {"type": "string", "const": "AEAD_AES_256_GCM"},
        "ciphertext": {"type": "string"},
        "nonce": {"type": "string"},
        "associated_data": {"type": "string"},
        "original_type": {"type": "string"},
    },
}
_NOTIFICATION = {  # WeChat Pay API v3's notification, signed; its resource is encrypted
    "schema": {
        "type": "object",
        "required": ["id", "event_type", "resource_type", "resource"],
        "properties": {
            "id": {"type": "string"},
            "create_time": {"type": "string"},
            "event_type": {"type": "string", "examples": ["TRANSACTION.SUCCESS"]},
            "resource_type": {"type": "string", "const": "encrypt-resource"},
            "summary": {"type": "string"},
            "resource": _RESOURCE,
        },
    }
}
_RESPONSE_HEADERS = {
    "X-Request-Id": {"description": "本次请求的追踪编号", "schema": {"type": "string"}}
}
_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "true：同一 Idempotency-Key 的第一次结果",
        "schema": {"type": "string", "const": "true"},
    }
}


def _parameters(
    meta: dict[str, Any], params: list[tuple[str, str]], refs: dict[Any, Any], defs: dict[str, Any]
) -> list[dict[str, Any]]:
    """The path parameters, then the fields of the query model."""
    out: list[dict[str, Any]] = [
        {
            "name": n,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": f"^{r}$"},
        }
        for n, r in params
    ]
    if meta.get("query"):
        name = refs[(meta["query"], "validation")]["$ref"].rsplit("/", 1)[1]
        props, required = defs[name]["properties"], defs[name].get("required", [])
        out += [
            {"name": n, "in": "query", "required": n in required, "schema": s}
            for n, s in props.items()
        ]
    return out


def _request_body(
    meta: dict[str, Any], refs: dict[Any, Any], defs: dict[str, Any]
) -> dict[str, Any] | None:
    """A JSON body, or a multipart upload (which wins when a handler declares both)."""
    body: dict[str, Any] | None = None
    if meta.get("body"):
        body = {
            "required": True,
            "content": {"application/json": {"schema": refs[(meta["body"], "validation")]}},
        }
    if meta.get("form"):
        name = refs[(meta["form"], "validation")]["$ref"].rsplit("/", 1)[1]
        body = _multipart(defs[name])
    return body


def _by_status(errors: list[type[APIError]]) -> dict[int, list[type[APIError]]]:
    grouped: dict[int, list[type[APIError]]] = {}
    for e in errors:
        grouped.setdefault(e.status, []).append(e)
    return grouped


def _refusals(routes: list[tuple[str, type[RequestHandler]]]) -> tuple[type[APIError], ...]:
    """The callback refusals (answered in WeChat Pay's shape) the routes declare."""
    declared = (getattr(h, "refuses", None) for _, h in routes)
    return tuple({r for r in declared if r is not None})


def _error_responses(
    handler: type[RequestHandler], ordinary: list[type[APIError]]
) -> dict[str, Any]:
    """Every status an operation may answer with an error: any operation refers to the shared
    error responses (each lists its codes); a callback answers its refusals, a 500 and a 503
    in WeChat Pay's shape instead, and only the edge's refusals in ours."""
    refuses = getattr(handler, "refuses", None)
    statuses = sorted({e.status for e in ordinary})
    shared = {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses}
    if refuses is None:
        return shared
    refusals = [e for e in registered() if issubclass(e, refuses)]
    by_status = _by_status(refusals)
    by_status.update({s: by_status.get(s, []) for s in (500, 503)})
    schema = {"type": "object", "required": ["code", "message"], "properties": _CALLBACK_OK}
    out: dict[str, Any] = {s: shared[s] for s in map(str, EDGE_STATUSES)}
    for status, errors in sorted(by_status.items()):
        fail: dict[str, Any] = {"schema": schema, "examples": _examples(errors, True)}
        if status in EDGE_STATUSES:  # too many connections: answered by the edge, our shape
            fail["schema"] = {"anyOf": [schema, {"$ref": "#/components/schemas/ErrorOut"}]}
        out[str(status)] = {
            "description": "拒收通知（微信支付稍后重新通知）",
            "headers": _RESPONSE_HEADERS,
            "content": {"application/json": fail},
        }
    return out


EDGE_STATUSES = (413, 414, 431, 503)  # server/platform/edge.py, before any handler


def _examples(errors: list[type[APIError]], callback: bool = False) -> dict[str, Any]:
    """One example per code, named by the code: the body that code is answered with."""
    return {
        e.code: {
            "summary": e.message,
            "value": {"code": "FAIL", "message": e.message}
            if callback
            else {"error": {"code": e.code, "message": e.message}},
        }
        for e in sorted(errors, key=lambda e: e.code)
    }


def _shared_responses(ordinary: list[type[APIError]], error_ref: dict[str, Any]) -> dict[str, Any]:
    """One response per error status; its ``code`` is one of the codes of that status."""
    out: dict[str, Any] = {}
    for status, errors in sorted(_by_status(ordinary).items()):
        codes = {"type": "string", "enum": sorted(e.code for e in errors)}
        narrowed = {"properties": {"error": {"properties": {"code": codes}}}}
        content = {"schema": {"allOf": [error_ref, narrowed]}, "examples": _examples(errors)}
        out[f"Error{status}"] = {
            "description": _ERRORS[status],
            "headers": _RESPONSE_HEADERS,
            "content": {"application/json": content},
        }
    return out


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


_PARAM = re.compile(r"\{(\w+)\}")


def _add_links(paths: dict[str, Any], defs: dict[str, Any]) -> None:
    """Links from each answer to the operations its ids open: its ``id`` to the paths below
    its own, and an ``<x>_id`` to the paths taking ``{<x>_id}``; the request's own path
    parameters are carried along (so stateful testing can chain create, read and act)."""
    for path, ops in paths.items():
        for op in ops.values():
            for status, answer in op["responses"].items():
                fields = _answer_fields(answer, defs)
                if status.startswith("2") and fields:
                    links = _links_of(path, fields, paths)
                    if links:
                        answer["links"] = links


def _answer_fields(answer: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    ref = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    if not ref:
        return set()
    return set(defs.get(ref.rsplit("/", 1)[1], {}).get("properties", {}))


def _links_of(path: str, fields: set[str], paths: dict[str, Any]) -> dict[str, Any]:
    own = set(_PARAM.findall(path))
    links: dict[str, Any] = {}
    for target, ops in paths.items():
        wanted = set(_PARAM.findall(target)) - own
        if target == path or len(wanted) != 1:
            continue
        (name,) = wanted
        below = target.startswith(path + "/{" + name + "}")
        source = "id" if below and "id" in fields else name if name in fields else None
        if source is None:
            continue
        params = {p: f"$request.path.{p}" for p in own & set(_PARAM.findall(target))}
        params[name] = f"$response.body#/{source}"
        for op in ops.values():
            links[op["operationId"]] = {"operationId": op["operationId"], "parameters": params}
    return links


def build_openapi(routes: list[tuple[str, type[RequestHandler]]]) -> dict[str, Any]:
    refusals = _refusals(routes)
    ordinary = [e for e in registered() if not issubclass(e, refusals)]
    refs, schema = models_json_schema(_models(routes), ref_template="#/components/schemas/{model}")
    defs = schema.get("$defs", {})
    paths: dict[str, Any] = {}
    for pattern, handler in routes:
        path, params = openapi_path(pattern)
        paths[path] = {
            m: _operation(handler, m, params, refs, defs, ordinary) for m in route_methods(handler)
        }
    _add_links(paths, defs)
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
            "responses": _shared_responses(ordinary, refs[(ErrorOut, "serialization")]),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }
