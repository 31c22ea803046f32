"""Typed domain errors: each class carries an HTTP status, a machine code and a Chinese message.

Services raise these; ``APIHandler.write_error`` turns any of them into the one error shape
``{"error": {"code", "message", "details"}}``. Every class that names its own ``code`` is
entered in ``REGISTRY`` when it is defined; a second class with the same code is an error at
import. Each capability keeps its errors in its own ``errors.py`` (``server/filing/errors.py``
...); the generic kinds below (one per status) and the platform's own errors live here. A
raising site passes a message only when it carries data (a time, an amount, a field's problem).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

REGISTRY: dict[str, type[APIError]] = {}


class APIError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    message: str = "请求有误"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            return
        known = REGISTRY.get(cls.code)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"error code {cls.code!r}: {known.__qualname__} and {cls.__qualname__}")
        REGISTRY[cls.code] = cls

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.message
        self.details = details
        super().__init__(f"{self.code}: {self.message}")

    @classmethod
    def at(cls, loc: list[str | int], message: str | None = None) -> Self:
        """The error for one field: its message is also the field's problem in ``details``."""
        message = message or cls.message
        return cls(message, details=[{"loc": loc, "msg": message}])

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


def registered() -> list[type[APIError]]:
    """Every registered error class by status and code (complete once the app is imported)."""
    return sorted(REGISTRY.values(), key=lambda e: (e.status, e.code))


# ---- the generic kinds, one per status (also what a bare Tornado error of that status says)


class BadRequest(APIError):
    status = 400
    code = "bad_request"
    message = "请求格式有误"


class Unauthorized(APIError):
    status = 401
    code = "unauthorized"
    message = "请先登录"


class Forbidden(APIError):
    status = 403
    code = "forbidden"
    message = "无权进行此操作"


class NotFound(APIError):
    status = 404
    code = "not_found"
    message = "请求的资源不存在"


class MethodNotAllowed(APIError):
    status = 405
    code = "method_not_allowed"
    message = "不支持该请求方法"


class Conflict(APIError):
    status = 409
    code = "conflict"
    message = "操作与当前状态冲突"


class PayloadTooLarge(APIError):
    status = 413
    code = "payload_too_large"
    message = "请求内容过大"


class UnsupportedMediaType(APIError):
    status = 415
    code = "unsupported_media_type"
    message = "不支持的内容类型"


class ValidationFailed(APIError):
    status = 422
    code = "validation_failed"
    message = "提交的内容有误"


class RateLimited(APIError):
    status = 429
    code = "rate_limited"
    message = "操作过于频繁，请稍后再试"


class InternalError(APIError):
    status = 500
    code = "internal_error"
    message = "服务器内部错误，请稍后再试"


class ServiceUnavailable(APIError):
    status = 503
    code = "service_unavailable"
    message = "服务暂时不可用，请稍后再试"


class RequestLineTooLong(APIError):
    status = 414
    code = "request_line_too_long"
    message = "请求地址过长"


class HeadersTooLarge(APIError):
    status = 431
    code = "headers_too_large"
    message = "请求头过大"


_KINDS = (
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    RequestLineTooLong,
    UnsupportedMediaType,
    ValidationFailed,
    RateLimited,
    HeadersTooLarge,
    InternalError,
    ServiceUnavailable,
)
GENERIC: dict[int, type[APIError]] = {e.status: e for e in _KINDS}  # the kind of each status


# ---- the platform's own: requests, paging, idempotency, courts, the database


class MalformedJson(BadRequest):
    code = "malformed_json"
    message = "请求内容不是有效的 JSON"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    message = "翻页参数无效"


class RoleNotAllowed(Forbidden):
    code = "role_not_allowed"
    message = "无权进行此操作"


class NoSuchEndpoint(NotFound):
    code = "no_such_endpoint"
    message = "接口不存在"


class CourtNotFound(NotFound):
    code = "court_not_found"
    message = "法院不存在"


class UnknownCourt(ValidationFailed):
    """A court named in a request body or query that does not exist (or does not fit)."""

    code = "unknown_court"
    message = "法院不存在"


class InvalidIdempotencyKey(ValidationFailed):
    code = "invalid_idempotency_key"
    message = "Idempotency-Key 应为8至128位字母、数字或 _.:-"


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"
    message = "同一 Idempotency-Key 不能用于不同的请求内容"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"
    message = "请求正在处理，请稍后重试"


class IdempotencyAnswerLost(Conflict):
    """The key's work committed but its answer was never stored: the work is not done again,
    and no answer is invented."""

    code = "idempotency_answer_lost"
    message = "该请求已处理，但结果未能保存，请刷新后查看"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    message = "数据库暂时不可用，请稍后再试"


# ---- the HTTP edge (server/platform/edge.py): answered before a handler sees the request


class TooManyConnections(ServiceUnavailable):
    code = "too_many_connections"
    message = "服务繁忙，请稍后再试"
