"""What WeChat Pay v3 checks in request bodies, and its error answers.

Errors are ``{"code", "message", "detail"?}`` with the HTTP status WeChat Pay documents:
400 PARAM_ERROR / INVALID_REQUEST / ORDER_CLOSED / ORDERPAID / APPID_MCHID_NOT_MATCH /
MCH_NOT_EXISTS / NO_STATEMENT_EXIST / STATEMENT_CREATING, 401 SIGN_ERROR,
403 OUT_TRADE_NO_USED, 404 ORDER_NOT_EXIST / RESOURCE_NOT_EXISTS, 429 FREQUENCY_LIMITED,
500 SYSTEM_ERROR.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

BEIJING = dt.timezone(dt.timedelta(hours=8))
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class PayError(Exception):
    """A WeChat Pay error answer."""

    def __init__(
        self, status: int, code: str, message: str, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


def param_error(field: str, issue: str, location: str = "body") -> PayError:
    # WeChat Pay names the JSON pointer of the bad input and what is wrong with it.
    message = f"输入源“/{location}{field}”映射到值字段“{field.rsplit('/', 1)[-1]}”{issue}"
    return PayError(400, "PARAM_ERROR", message, {"field": field, "location": location})


def invalid_request(message: str) -> PayError:
    return PayError(400, "INVALID_REQUEST", message)


def sign_error(issue: str) -> PayError:
    detail = {"detail": {"issue": issue}, "field": "signature", "location": "authorization"}
    return PayError(401, "SIGN_ERROR", "签名错误，请检查后再试", detail)


def beijing(ts: float) -> str:
    """An RFC 3339 time in Beijing time, as WeChat Pay writes them: 2026-11-23T10:00:00+08:00."""
    return dt.datetime.fromtimestamp(int(ts), BEIJING).isoformat()


def _text(body: dict[str, Any], field: str, max_len: int, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise param_error(f"/{field}", "必填性规定不匹配")
    if len(value) > max_len:
        raise param_error(f"/{field}", f"字符串长度超过{max_len}")
    return value


def parse_time(value: Any, field: str) -> float:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise param_error(f"/{field}", "不符合rfc3339标准格式")
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def notify_url(value: Any, field: str = "notify_url") -> str:
    """https, no query string; plain http is accepted for loopback hosts (development)."""
    if not isinstance(value, str) or not value:
        raise param_error(f"/{field}", "必填性规定不匹配")
    parts = urlsplit(value)
    loopback_http = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if len(value) > 255 or not parts.netloc or (parts.scheme != "https" and not loopback_http):
        raise param_error(f"/{field}", "不是合法的https地址")
    if parts.query or parts.fragment:
        raise param_error(f"/{field}", "不能携带参数")
    return value


def _amount(body: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise param_error("/amount", "必填性规定不匹配")
    clean: dict[str, Any] = {}
    for name in fields:
        value = amount.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise param_error(f"/amount/{name}", "必须是大于0的整数")
        clean[name] = value
    currency = amount.get("currency", "CNY")
    if currency != "CNY":
        raise param_error("/amount/currency", "仅支持CNY")
    clean["currency"] = "CNY"
    return clean


def jsapi_order(body: dict[str, Any]) -> dict[str, Any]:
    """The checked fields of POST /v3/pay/transactions/jsapi, in a canonical form."""
    order: dict[str, Any] = {
        "appid": _text(body, "appid", 32),
        "mchid": _text(body, "mchid", 32),
        "description": _text(body, "description", 127),
        "out_trade_no": _text(body, "out_trade_no", 32),
        "attach": _text(body, "attach", 128, required=False),
        "notify_url": notify_url(body.get("notify_url")),
        "amount": _amount(body, ("total",)),
    }
    if not OUT_TRADE_NO.fullmatch(order["out_trade_no"]):
        raise param_error("/out_trade_no", "只能是数字、大小写字母_-|*，6-32个字符")
    payer = body.get("payer")
    openid = payer.get("openid") if isinstance(payer, dict) else None
    if not isinstance(openid, str) or not 1 <= len(openid) <= 128:
        raise param_error("/payer/openid", "必填性规定不匹配")
    order["openid"] = openid
    expire = body.get("time_expire")
    order["time_expire"] = None if expire is None else parse_time(expire, "time_expire")
    return order


def refund_request(body: dict[str, Any]) -> dict[str, Any]:
    """The checked fields of POST /v3/refund/domestic/refunds."""
    transaction_id = _text(body, "transaction_id", 32, required=False)
    out_trade_no = _text(body, "out_trade_no", 32, required=False)
    if not (transaction_id or out_trade_no):
        raise param_error(
            "/out_trade_no", "必填性规定不匹配：transaction_id和out_trade_no必须二选一"
        )
    refund: dict[str, Any] = {
        "transaction_id": transaction_id,
        "out_trade_no": out_trade_no,
        "out_refund_no": _text(body, "out_refund_no", 64),
        "reason": _text(body, "reason", 80, required=False),
        "funds_account": body.get("funds_account"),
        "amount": _amount(body, ("refund", "total")),
    }
    if not OUT_REFUND_NO.fullmatch(refund["out_refund_no"]):
        raise param_error("/out_refund_no", "只能是数字、大小写字母_-|*@")
    if body.get("notify_url") is not None:
        refund["notify_url"] = notify_url(body["notify_url"])
    return refund


def bill_date(value: str | None) -> dt.date:
    if not value or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise param_error("/bill_date", "格式应为yyyy-MM-DD", location="query")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise param_error("/bill_date", "不是合法的日期", location="query") from None


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier (the month's last day if shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    for last in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")
