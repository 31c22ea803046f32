"""Typed domain errors: each carries an HTTP status, a machine code and a Chinese message.

Services raise these; ``APIHandler.write_error`` turns any of them into the one error shape
``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    status = 400
    code = "bad_request"
    message = "请求有误"

    def __init__(
        self, message: str | None = None, *, code: str | None = None, details: Any = None
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        super().__init__(f"{self.code}: {self.message}")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


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


class ServiceUnavailable(APIError):
    status = 503
    code = "service_unavailable"
    message = "服务暂时不可用，请稍后再试"
