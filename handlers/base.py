"""APIHandler: the one base of every API handler, and the permission decorators.

It resolves the caller lazily from ``Authorization: Bearer``, parses bodies and query strings
into pydantic models, and writes every error in the one shape through ``write_error``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import tornado
from pydantic import BaseModel, ValidationError
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)
from tornado import httputil, web

from models.users import Caller, Role
from server.platform.db import commits_with
from server.platform.errors import (
    GENERIC,
    APIError,
    DatabaseUnavailable,
    InternalError,
    MalformedJson,
    NoSuchEndpoint,
    PayloadTooLarge,
    RoleNotAllowed,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from server.platform.idempotency import StoredAnswer

if TYPE_CHECKING:
    from server.app import Services
    from server.identity.auth import Principal

log = logging.getLogger("microcourt.api")
M = TypeVar("M", bound=BaseModel)
Method = Callable[..., Awaitable[None]]

OBJECT_ID = r"[0-9a-f]{24}"  # path ids in routes: anything else is the JSON 404
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_DB_DOWN = (ServerSelectionTimeoutError, AutoReconnect, ConnectionFailure)


def _busy(e: BaseException) -> bool:
    """A transaction that kept losing to concurrent writers past its budget
    (``server.platform.db.CONFLICT_BUDGET``)."""
    return isinstance(e, PyMongoError) and e.has_error_label("TransientTransactionError")


_PROCESS_PREFIX = uuid.uuid4().hex[:16]
_sequence = itertools.count(1)


def _new_request_id() -> str:
    """Unique across processes (a random prefix per process) and cheap (a counter)."""
    return f"{_PROCESS_PREFIX}{next(_sequence):016x}"


_CONSTANT_HEADERS = {
    "Content-Type": "application/json; charset=UTF-8",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def _default_headers(request_id: str) -> dict[str, str]:
    """Every answer's headers, set without ``set_header``'s checks of each value (a measured
    per-request cost): the values are constants, and the request id is checked (or ours)."""
    return {"X-Request-Id": request_id, **_CONSTANT_HEADERS}


def request_id_of(incoming: str) -> str:
    """The client's ``X-Request-Id`` when it is a sane one, else a new id."""
    return incoming if incoming and _REQUEST_ID.fullmatch(incoming) else _new_request_id()


_SERVER = f"TornadoServer/{tornado.version}"
_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The ``Date`` header, formatted once a second (it has no finer resolution)."""
    global _date
    now = int(time.time())
    if now != _date[0]:
        _date = (now, httputil.format_timestamp(now))
    return _date[1]


# C0 and C1 controls but tab and line breaks, and lone surrogates (which UTF-8 cannot carry)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def control_characters(data: Any, loc: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Where a parsed body or query holds control characters (in keys or strings): text
    may hold line breaks and tabs, never NUL and the like."""
    if isinstance(data, str):
        if _CONTROL.search(data) is None:
            return []
        return [{"loc": list(loc), "msg": "control character", "type": "control_character"}]
    if isinstance(data, list):
        return [f for i, v in enumerate(data) for f in control_characters(v, (*loc, i))]
    if isinstance(data, dict):
        keys = [f for k in data for f in control_characters(k, (*loc, k))]
        return keys + [f for k, v in data.items() for f in control_characters(v, (*loc, k))]
    return []


def is_json(content_type: str) -> bool:
    """``application/json``, with no parameter but ``charset=utf-8``."""
    kind, *params = (p.strip().lower() for p in content_type.split(";"))
    return kind == "application/json" and all(p.replace(" ", "") == "charset=utf-8" for p in params)


def allowed_methods(handler: type[web.RequestHandler]) -> str:
    """The ``Allow`` header of a 405: the methods the handler implements."""
    from server.platform.openapi import route_methods

    return ", ".join(m.upper() for m in route_methods(handler))


def api_meta(fn: Any) -> dict[str, Any]:
    """The documentation and permission facts attached to a handler method."""
    meta: dict[str, Any] | None = getattr(fn, "__api__", None)
    if meta is None:
        meta = {}
        fn.__api__ = meta
    return meta


def api(
    *,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    status: int = 200,
    form: type[BaseModel] | None = None,
    also: dict[int, type[BaseModel]] | None = None,
) -> Callable[[Method], Method]:
    """Declare a method's body, query and response models (used for the OpenAPI document).

    ``form`` is for multipart uploads: the fields sent beside the ``file`` part; ``also``
    other success statuses and their models.
    """

    def decorate(fn: Method) -> Method:
        api_meta(fn).update(body=body, response=response, query=query, status=status, form=form)
        api_meta(fn)["also"] = also or {}
        return fn

    return decorate


def public(fn: Method) -> Method:
    """No sign-in needed."""
    api_meta(fn)["roles"] = None
    return fn


def needs_role(*roles: Role) -> Callable[[Method], Method]:
    """Signed-in users only; with roles given, only those roles (403 for the others)."""
    allowed = frozenset(roles)

    def decorate(fn: Method) -> Method:
        @functools.wraps(fn)
        async def wrapper(self: APIHandler, *args: Any, **kwargs: Any) -> None:
            principal = await self.authenticate()
            if allowed and principal.role not in allowed:
                raise RoleNotAllowed()
            await fn(self, *args, **kwargs)

        api_meta(wrapper)["roles"] = allowed or frozenset(Role)
        return wrapper

    return decorate


authenticated = needs_role()


def idempotent(fn: Method) -> Method:
    """Honour ``Idempotency-Key``: the work commits with the key's mark, and the first
    successful answer is stored and replayed (``server.platform.idempotency``).

    Goes inside ``@needs_role`` (the key belongs to the signed-in caller). The answer is stored
    before it is sent, so a client that saw it can always get it again.
    """

    @functools.wraps(fn)
    async def wrapper(self: APIHandler, *args: Any, **kwargs: Any) -> None:
        key = self.request.headers.get("Idempotency-Key")
        if not key:
            await fn(self, *args, **kwargs)
            return
        store = self.services.idempotency
        ident = ((await self.authenticate()).id, self.request.method or "", self.request.path, key)
        claim = await store.begin(*ident, self.received_body())
        if isinstance(claim, StoredAnswer):
            self.set_header("Idempotent-Replayed", "true")
            self.set_status(claim.status)
            self.finish(claim.body)
            return
        self._captured = None
        self._capturing = True
        holding = asyncio.create_task(store.hold(claim))
        try:
            with commits_with(store.marking(claim)):
                await fn(self, *args, **kwargs)
        except APIError as e:
            # a typed answer other than the database's: the service left nothing done (it
            # undoes what it began, e.g. an order WeChat Pay refused), so a retry may run
            await store.release(claim, undone=not isinstance(e, DatabaseUnavailable))
            raise
        except BaseException:
            await store.release(claim)
            raise
        finally:
            self._capturing = False
            holding.cancel()
        if self._captured is not None:
            try:
                await store.finish(claim, StoredAnswer(*self._captured))
            except BaseException:
                await store.release(claim)  # a key whose work committed stays marked
                raise
            self.set_status(self._captured[0])
            self.finish(self._captured[1])
        else:
            await store.release(claim)

    api_meta(wrapper)["idempotent"] = True
    return wrapper


class APIHandler(web.RequestHandler):
    principal: Principal | None = None
    request_id: str = ""
    _capturing = False
    _captured: tuple[int, str] | None = None

    @property
    def services(self) -> Services:
        services: Services = self.application.settings["services"]
        return services

    def clear(self) -> None:
        """Tornado's ``clear``, but for the ``Date`` header, formatted once a second rather
        than for every answer (a measured ~2 % of /healthz)."""
        self._headers = httputil.HTTPHeaders({"Server": _SERVER, "Date": _http_date()})
        self.set_default_headers()
        self._write_buffer = []
        self._status_code = 200
        self._reason = httputil.responses[200]

    def set_default_headers(self) -> None:
        self.request_id = request_id_of(self.request.headers.get("X-Request-Id", ""))
        self._headers.update(_default_headers(self.request_id))

    def set_status(self, status_code: int, reason: str | None = None) -> None:
        super().set_status(status_code, reason)
        if status_code == 405:  # whoever writes the body (callbacks answer in their shape)
            self.set_header("Allow", allowed_methods(type(self)))

    def received_body(self) -> bytes:
        """The request's body as received (a streamed handler keeps it elsewhere)."""
        return self.request.body

    def compute_etag(self) -> None:
        """No ETags: answers are per user and marked no-store."""
        return None

    def check_xsrf_cookie(self) -> None:
        """Bearer tokens, no cookies: nothing for XSRF to ride on."""

    #: Set by handlers that take multipart uploads and bound those bodies themselves.
    accepts_multipart = False

    @property
    def is_multipart(self) -> bool:
        content_type = self.request.headers.get("Content-Type", "")
        return content_type.lower().startswith("multipart/form-data")

    def prepare(self) -> None:
        if self.accepts_multipart and self.is_multipart:
            return  # the JSON limit is not for uploads; server.max_body_bytes still caps them
        body = self.request.body
        if body and len(body) > self.services.settings.server.max_json_body_bytes:
            raise PayloadTooLarge()

    # ---- who is calling

    async def authenticate(self) -> Principal:
        if self.principal is None:
            header = self.request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized()
            self.principal = await self.services.auth.authenticate(token.strip())
        return self.principal

    @property
    def me(self) -> Principal:
        if self.principal is None:  # only reachable from a method without @needs_role
            raise Unauthorized()
        return self.principal

    @property
    def caller(self) -> Caller:
        """The signed-in user, as services take it (after ``authenticate``)."""
        return self.me.user

    @property
    def client_ip(self) -> str:
        return str(self.request.remote_ip or "")

    # ---- input

    def parse_body(self, model: type[M]) -> M:
        if self.request.body and not is_json(self.request.headers.get("Content-Type", "")):
            raise UnsupportedMediaType("请求内容应为 JSON（Content-Type: application/json）")
        try:
            data = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MalformedJson() from None
        if not isinstance(data, dict):
            raise MalformedJson("请求内容应为 JSON 对象")
        return self._validate(model, data, self.request.body)

    def parse_query(self, model: type[M]) -> M:
        args = self.request.query_arguments
        data = {k: v[-1].decode("utf-8", "replace") for k, v in args.items()}
        return self._validate(model, data)

    @staticmethod
    def _validate(model: type[M], data: dict[str, Any], body: bytes | None = None) -> M:
        """``body``: the JSON text of ``data``, validated strictly (``5.0`` is no integer,
        ``"5"`` no number, ``1`` no boolean); query strings and form fields are text, so lax."""
        controls = control_characters(data)
        if controls:
            raise ValidationFailed("内容含有不允许的控制字符", details=controls)
        try:
            if body is not None:
                return model.model_validate_json(body, strict=True)
            return model.model_validate(data)
        except ValidationError as e:
            # The input is left out on purpose: it may hold an ID number or a password.
            details = [
                {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
                for err in e.errors()
            ]
            raise ValidationFailed(details=details) from None

    # ---- output

    def write_json(self, data: BaseModel | dict[str, Any], status: int = 200) -> None:
        if isinstance(data, BaseModel):
            text = data.model_dump_json()
        else:
            text = json.dumps(data, ensure_ascii=False, default=str)
        if self._capturing:  # @idempotent stores it first, then sends it
            self._captured = (status, text)
            return
        self.set_status(status)
        self.finish(text)

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, _DB_DOWN) or _busy(e):
            # every 503 of the database leaves its cause in the log
            log.warning(
                "database unavailable: %s %s: %s: %s",
                self.request.method,
                self.request.path,
                type(e).__name__,
                e,
            )
            e = DatabaseUnavailable()
        if isinstance(e, APIError) and not self._finished:
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, APIError):
            body = exc.to_json()
        elif status_code >= 500:
            body = InternalError().to_json()
        else:
            kind = GENERIC.get(status_code)
            code = kind.code if kind else "http_error"
            body = {"error": {"code": code, "message": self._reason or "请求有误"}}
        if isinstance(exc, web.HTTPError) and status_code == 405:
            body["error"]["message"] = "不支持该请求方法"
        if isinstance(exc, web.HTTPError) and status_code == 400:  # Tornado's own body parsing
            body["error"]["message"] = "请求格式有误"
        body["error"]["request_id"] = self.request_id
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body, ensure_ascii=False))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, APIError | web.HTTPError):
            return  # expected outcomes, already in the access log
        log.error(
            "unhandled error request_id=%s %s %s",
            self.request_id,
            self.request.method,
            self.request.path,
            exc_info=(typ, value, tb),
        )


class API404(APIHandler):
    """Anything under /api/ that no route matches: a JSON 404, never an HTML page."""

    def _missing(self, *args: Any, **kwargs: Any) -> None:
        raise NoSuchEndpoint()

    get = post = put = patch = delete = head = options = _missing
