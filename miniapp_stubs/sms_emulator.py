"""The Tencent Cloud SMS emulator (SendSms, API 2021-01-11), beside the WeChat emulator.

It answers ``POST /`` as ``sms.tencentcloudapi.com`` does: the request must carry a valid
TC3-HMAC-SHA256 signature (``Authorization``, ``X-TC-Timestamp`` within 5 minutes) and the
action ``SendSms``; each number's status comes back in ``SendStatusSet`` with Tencent's
codes. It renders the approved templates with their parameters, keeps Tencent's default
per-number limits (the same content once in 30 s, 5 an hour, 10 a day), and posts a delivery
receipt (the status callback's list of reports) to ``callback_url`` after each send.

Control paths: ``GET /_emulator/sms?phone=`` what was sent to a number (every SMS without
one); ``POST /_emulator/sms/unreachable {phones}`` numbers whose receipts fail (空号);
``POST /_emulator/sms/callback {url}`` where receipts go.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import tornado.web
from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop

log = logging.getLogger("miniapp_stubs.sms")

SECRET_ID = "AKIDemulator00000000000000000000000"
SECRET_KEY = "emulator-secret-key"
SDK_APP_ID = "1400000000"
LINK_BASE = "https://wfy.example.gov.cn/w/"
DEFAULT_TEMPLATES = {
    "2100001": "您反映的问题（工单号{1}）已答复，查看答复：" + LINK_BASE + "{2}",
    "2100002": "您的工单{1}已办结，请评价：" + LINK_BASE + "{2}",
}
AUTH_RE = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<headers>[a-z;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)
PHONE_RE = re.compile(r"^\+861[3-9]\d{9}$")
BEIJING = dt.timezone(dt.timedelta(hours=8))


class SmsApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class SmsLimits:
    same_content_seconds: float = 30.0
    per_hour: int = 5
    per_day: int = 10


@dataclass
class SentSms:
    serial_no: str
    phone: str
    template_id: str
    params: list[str]
    content: str
    sent_at: float
    session_context: str = ""
    receipt: dict[str, Any] | None = None


@dataclass
class SmsState:
    clock: Callable[[], float] = time.time
    secret_id: str = SECRET_ID
    secret_key: str = SECRET_KEY
    sdk_app_id: str = SDK_APP_ID
    templates: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    limits: SmsLimits = field(default_factory=SmsLimits)
    callback_url: str | None = None
    unreachable: set[str] = field(default_factory=set)
    sent: list[SentSms] = field(default_factory=list)

    # ---- the API

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        """TC3-HMAC-SHA256 over content-type and host, as the SDK signs (5 minutes' grace)."""
        found = AUTH_RE.match(headers.get("Authorization", ""))
        if not found or found["id"] != self.secret_id or found["service"] != "sms":
            raise SmsApiError("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        stamp = headers.get("X-TC-Timestamp", "")
        if not stamp.isdigit() or abs(now - int(stamp)) > 300:
            raise SmsApiError("AuthFailure.SignatureExpire", "Signature expired.")
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                f"content-type:{headers.get('Content-Type', '')}\nhost:{headers.get('Host', '')}\n",
                "content-type;host",
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{found['date']}/sms/tc3_request"
        to_sign = "\n".join(
            ["TC3-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = _hmac(("TC3" + self.secret_key).encode(), found["date"])
        key = _hmac(_hmac(key, "sms"), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, found["sig"]):
            raise SmsApiError("AuthFailure.SignatureFailure", "The provided credentials failed.")

    def send_sms(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """SendSms: a status per number (``Code`` "Ok" or Tencent's error code)."""
        if params.get("SmsSdkAppId") != self.sdk_app_id:
            raise SmsApiError("FailedOperation.ParametersOtherError", "SmsSdkAppId invalid.")
        if not params.get("SignName"):
            raise SmsApiError("FailedOperation.SignatureIncorrectOrUnapproved", "sign missing")
        template = self.templates.get(str(params.get("TemplateId")))
        if template is None:
            raise SmsApiError("FailedOperation.TemplateIncorrectOrUnapproved", "template")
        values = [str(v) for v in params.get("TemplateParamSet") or []]
        if len(values) != template.count("{"):
            raise SmsApiError("InvalidParameterValue.TemplateParameterFormatError", "params")
        content = f"【{params['SignName']}】" + _render(template, values)
        numbers = params.get("PhoneNumberSet") or []
        return [self._one(str(n), params, values, content) for n in numbers]

    def _one(
        self, number: str, params: dict[str, Any], values: list[str], content: str
    ) -> dict[str, Any]:
        status = {"PhoneNumber": number, "Fee": 0, "IsoCode": "CN", "SerialNo": ""}
        status["SessionContext"] = params.get("SessionContext", "")
        if not PHONE_RE.match(number):
            bad = "InvalidParameterValue.IncorrectPhoneNumber"
            return {**status, "Code": bad, "Message": "invalid mobile number"}
        phone, now = number[3:], self.clock()
        limited = self._limit(phone, content, now)
        if limited:
            return {**status, "Code": limited, "Message": "rate limited"}
        serial = f"2433:{secrets.randbelow(10**20):020d}"
        sms = SentSms(serial, phone, str(params["TemplateId"]), values, content, now)
        sms.session_context = str(params.get("SessionContext", ""))
        self.sent.append(sms)
        if self.callback_url:
            IOLoop.current().spawn_callback(self._report, sms)
        return {**status, "SerialNo": serial, "Fee": 1, "Code": "Ok", "Message": "send success"}

    def _limit(self, phone: str, content: str, now: float) -> str | None:
        mine = [s for s in self.sent if s.phone == phone]
        window = self.limits.same_content_seconds
        if any(s.content == content and now - s.sent_at < window for s in mine):
            return "LimitExceeded.PhoneNumberThirtySecondLimit"
        if sum(1 for s in mine if now - s.sent_at < 3600) >= self.limits.per_hour:
            return "LimitExceeded.PhoneNumberOneHourLimit"
        today = dt.datetime.fromtimestamp(now, BEIJING).date()
        count = sum(
            1 for s in mine if dt.datetime.fromtimestamp(s.sent_at, BEIJING).date() == today
        )
        if count >= self.limits.per_day:
            return "LimitExceeded.PhoneNumberDailyLimit"
        return None

    # ---- delivery receipts

    def receipt_of(self, sms: SentSms) -> dict[str, Any]:
        failed = sms.phone in self.unreachable
        at = dt.datetime.fromtimestamp(self.clock(), BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        return {
            "user_receive_time": at,
            "nationcode": "86",
            "mobile": sms.phone,
            "report_status": "FAIL" if failed else "SUCCESS",
            "errmsg": "MK:0004" if failed else "DELIVRD",
            "description": "空号" if failed else "用户短信送达成功",
            "sid": sms.serial_no,
        }

    async def _report(self, sms: SentSms) -> None:
        sms.receipt = self.receipt_of(sms)
        try:
            await AsyncHTTPClient().fetch(
                str(self.callback_url),
                method="POST",
                body=json.dumps([sms.receipt]),
                headers={"Content-Type": "application/json"},
                raise_error=False,
            )
        except OSError as e:  # the server is gone: Tencent would retry; tests look at `sent`
            log.info("SMS receipt not delivered: %s", e)

    def messages_for(self, phone: str | None) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.sent if phone is None or s.phone == phone]


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _render(template: str, values: list[str]) -> str:
    for i, v in enumerate(values, start=1):
        template = template.replace("{" + str(i) + "}", v)
    return template


class _Handler(tornado.web.RequestHandler):
    def initialize(self, sms: SmsState) -> None:
        self.sms = sms

    def send_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(payload, ensure_ascii=False))


class SmsApiHandler(_Handler):
    def post(self) -> None:
        """POST / (X-TC-Action: SendSms): {"Response": {SendStatusSet, RequestId}} or an
        Error, always HTTP 200 as Tencent Cloud answers."""
        request_id = secrets.token_hex(16)
        try:
            self.sms.verify(self.request.headers, self.request.body, time.time())
            if self.request.headers.get("X-TC-Action") != "SendSms":
                raise SmsApiError("InvalidAction", "action not found")
            statuses = self.sms.send_sms(json.loads(self.request.body or b"{}"))
        except (SmsApiError, ValueError) as e:
            code = getattr(e, "code", "InvalidParameter")
            error = {"Code": code, "Message": getattr(e, "message", str(e))}
            self.send_json({"Response": {"Error": error, "RequestId": request_id}})
            return
        self.send_json({"Response": {"SendStatusSet": statuses, "RequestId": request_id}})


class SmsListControl(_Handler):
    def get(self) -> None:
        """GET /_emulator/sms?phone=: 200 {messages}, oldest first, each with its receipt."""
        phone = self.get_query_argument("phone", None) or None
        self.send_json({"messages": self.sms.messages_for(phone)})


class SmsUnreachableControl(_Handler):
    def post(self) -> None:
        """POST /_emulator/sms/unreachable {phones}: their receipts fail; 200 {phones}."""
        phones = json.loads(self.request.body or b"{}").get("phones")
        if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
            self.send_json({"error": "phones must be a list of strings"}, 400)
            return
        self.sms.unreachable = set(phones)
        self.send_json({"phones": sorted(self.sms.unreachable)})


class SmsCallbackControl(_Handler):
    def post(self) -> None:
        """POST /_emulator/sms/callback {url}: where delivery receipts go; 200 {url}."""
        url = json.loads(self.request.body or b"{}").get("url")
        if url is not None and not isinstance(url, str):
            self.send_json({"error": "url must be a string"}, 400)
            return
        self.sms.callback_url = url or None
        self.send_json({"url": self.sms.callback_url})


def sms_handlers(sms: SmsState) -> list[tuple[str, type[_Handler], dict[str, Any]]]:
    kwargs: dict[str, Any] = {"sms": sms}
    routes: list[tuple[str, type[_Handler]]] = [
        (r"/", SmsApiHandler),
        (r"/_emulator/sms", SmsListControl),
        (r"/_emulator/sms/unreachable", SmsUnreachableControl),
        (r"/_emulator/sms/callback", SmsCallbackControl),
    ]
    return [(pattern, handler, kwargs) for pattern, handler in routes]
