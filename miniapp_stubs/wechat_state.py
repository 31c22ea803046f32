"""In-memory state of the WeChat platform emulator: users, one-time codes, tokens, quotas.

Every method either returns the JSON body WeChat would answer or raises ``WeChatError`` with
WeChat's own errcode. Time comes from the injected ``clock`` so tests never wait.
"""

from __future__ import annotations

import base64
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from miniapp_stubs.wechat_face import FaceVerifications
from miniapp_stubs.wechat_rules import (
    DEFAULT_RISKY_WORDS,
    SEC_CHECK_V1_MAX_BYTES,
    SEC_CHECK_V2_MAX_CHARS,
    WeChatError,
    check_keywords,
    check_send_options,
    check_template_data,
    find_risky_word,
    sec_check_verdict,
)

CODE_TTL = 300.0  # wx.login and phone codes live 5 minutes
TOKEN_TTL = 7200
OLD_TOKEN_GRACE = 300.0  # a superseded access_token keeps working 5 minutes
SEC_SCENES = frozenset({1, 2, 3, 4})
# subscribeMessage.send's only documented limit is a count of calls a day (接口限制 / 次数限制:
# 开通支付能力的是3kw/日，没开通的是1kw/日), counted per Beijing day; beyond it, 45009 until
# midnight. No per-second rate or concurrency limit is documented, so none is emulated.
SUBSCRIBE_SENDS_PER_DAY = 30_000_000
BEIJING = 8 * 3600
RECENT_VISIT_SECONDS = 7200.0
FAULT_APIS = frozenset(
    {"token", "jscode2session", "subscribe_send", "msg_sec_check", "face_getinfo", "phone_number"}
)
FAULT_MESSAGES = {
    40001: "invalid credential, access_token is invalid or not latest",
    42001: "access_token expired",
    40164: "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist",
    45009: "reach max api daily quota limit",
}
_ID_ALPHABET = string.ascii_letters + string.digits + "-_"


def _random_id(length: int, prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length - len(prefix)))


def new_openid() -> str:
    """A random openid shaped like WeChat's: 28 characters starting with ``o``."""
    return _random_id(28, "o")


def new_rid() -> str:
    """A request id as WeChat appends to errmsg: ``623ea70a-74b9b592-3e3d489a``."""
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _unknown_openid(http_status: int = 400) -> WeChatError:
    return WeChatError(40003, "invalid openid", http_status)


@dataclass
class WxUser:
    openid: str
    unionid: str
    session_key: str = ""
    last_visit: float = 0.0  # the last wx.login: when the user last opened the mini-program


@dataclass
class OneTimeCode:
    """A wx.login code (``value`` = session_key) or a phone code (``value`` = phone)."""

    openid: str
    issued_at: float
    value: str
    country_code: str = "86"
    used: bool = False


@dataclass
class SentMessage:
    msgid: int
    touser: str
    template_id: str
    page: str | None
    data: dict[str, dict[str, str]]
    miniprogram_state: str
    lang: str
    sent_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "msgid": self.msgid,
            "touser": self.touser,
            "template_id": self.template_id,
            "page": self.page,
            "data": self.data,
            "miniprogram_state": self.miniprogram_state,
            "lang": self.lang,
            "sent_at": _iso(self.sent_at),
        }


@dataclass(frozen=True)
class TemplateSpec:
    """A template as added in the mini-program's console: its fixed keywords, and whether it
    is a long-term (长期订阅) one, open to government and public-service mini-programs."""

    keywords: frozenset[str]
    long_term: bool = False


class EmulatorState:
    """All state of one emulator instance; nothing is shared between instances."""

    def __init__(self, appid: str, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.appid = appid
        self.secret = secret
        self.clock = clock
        self.users: dict[str, WxUser] = {}
        self.login_codes: dict[str, OneTimeCode] = {}
        self.phone_codes: dict[str, OneTimeCode] = {}
        self.tokens: dict[str, float] = {}  # access_token -> expires_at
        self.current_tokens: dict[str, str] = {}  # "plain" | "stable" -> latest token
        self.quotas: dict[str, dict[str, int]] = {}  # openid -> template_id -> sends left
        self.messages: list[SentMessage] = []
        # v1 always flags its documented test strings as well; v2 documents none, so it
        # flags only the words set here (and holds the review words for a person to read)
        self.risky_words: list[str] = []
        self.review_words: list[str] = []
        self.face = FaceVerifications(clock)
        # the console's templates and the app's pages; a template not registered has its
        # values checked only, and with no pages registered any page is taken
        self.templates: dict[str, TemplateSpec] = {}
        self.pages: frozenset[str] = frozenset()
        self.faults: dict[str, list[int]] = {}  # api -> errcodes its next calls answer
        self.sends_per_day = SUBSCRIBE_SENDS_PER_DAY  # the mini-program's (with WeChat Pay)
        self.sends_today = (-1, 0)  # (Beijing day number, subscribeMessage.send calls)

    def reset(self, keep_tokens: bool = False) -> None:
        """Forget users, codes, quotas, messages and risky words (and tokens unless kept)."""
        for table in (self.users, self.login_codes, self.phone_codes, self.quotas):
            table.clear()
        self.messages.clear()
        self.risky_words = []
        self.review_words = []
        self.face.reset()
        self.faults.clear()
        if not keep_tokens:
            self.tokens.clear()
            self.current_tokens.clear()

    # -- the phone's side (wx.login, getPhoneNumber button, requestSubscribeMessage) --

    def login(self, openid: str | None = None) -> tuple[str, str]:
        """What ``wx.login`` does: returns (openid, code); the session_key rotates."""
        openid = openid or new_openid()
        user = self.users.get(openid)
        if user is None:
            user = self.users[openid] = WxUser(openid, unionid=_random_id(28, "o"))
        user.session_key = base64.b64encode(secrets.token_bytes(16)).decode()
        user.last_visit = self.clock()
        code = _random_id(32)
        self._prune(self.login_codes)
        self.login_codes[code] = OneTimeCode(openid, self.clock(), user.session_key)
        return openid, code

    def issue_phone_code(self, openid: str, phone: str, country_code: str = "86") -> str:
        """What the getPhoneNumber button gives the page: a code for getuserphonenumber."""
        self.user(openid, http_status=404)
        if not (phone.isdigit() and 5 <= len(phone) <= 15 and country_code.isdigit()):
            raise WeChatError(47001, "data format error: phone must be 5-15 digits")
        code = secrets.token_hex(32)
        self._prune(self.phone_codes)
        self.phone_codes[code] = OneTimeCode(openid, self.clock(), phone, country_code)
        return code

    def accept_subscriptions(self, openid: str, template_ids: Any) -> dict[str, int]:
        """What accepting ``wx.requestSubscribeMessage`` does: one more send per template."""
        self.user(openid, http_status=404)
        if not isinstance(template_ids, list) or not template_ids:
            raise WeChatError(47001, "data format error: template_ids must be a non-empty list")
        if not all(isinstance(t, str) and t for t in template_ids):
            raise WeChatError(47001, "data format error: template ids must be strings")
        user_quotas = self.quotas.setdefault(openid, {})
        for template_id in template_ids:
            user_quotas[template_id] = user_quotas.get(template_id, 0) + 1
        return dict(user_quotas)

    def quotas_for(self, openid: str) -> dict[str, int]:
        self.user(openid, http_status=404)
        return dict(self.quotas.get(openid, {}))

    def messages_for(self, openid: str | None = None) -> list[dict[str, Any]]:
        """Subscribe messages sent (to ``openid``, or to anyone), oldest first."""
        return [m.as_json() for m in self.messages if openid is None or m.touser == openid]

    def set_review_words(self, words: Any) -> list[str]:
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            raise WeChatError(47001, "data format error: words must be a list of strings")
        self.review_words = list(words)
        return list(self.review_words)

    def set_risky_words(self, words: Any) -> list[str]:
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            raise WeChatError(47001, "data format error: words must be a list of strings")
        self.risky_words = list(words)
        return list(self.risky_words)

    def register_templates(self, templates: Any, pages: Any = None) -> dict[str, Any]:
        """The console's side: ``templates`` {template_id: {keywords, long_term?}}; ``pages``
        the app's page paths (kept by reset, as the console keeps them)."""
        if not isinstance(templates, dict):
            raise WeChatError(47001, "data format error: templates must be an object")
        for template_id, spec in templates.items():
            keywords = spec.get("keywords") if isinstance(spec, dict) else None
            if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
                raise WeChatError(47001, f"data format error: {template_id}.keywords")
            long_term = spec.get("long_term") is True
            self.templates[template_id] = TemplateSpec(frozenset(keywords), long_term)
        if pages is not None:
            if not isinstance(pages, list) or not all(isinstance(p, str) for p in pages):
                raise WeChatError(47001, "data format error: pages must be a list of strings")
            self.pages = frozenset(pages)
        return {"templates": sorted(self.templates), "pages": sorted(self.pages)}

    def add_faults(self, api: Any, errcodes: Any) -> dict[str, list[int]]:
        """Make the next calls of ``api`` (one of FAULT_APIS) answer these errcodes, in order:
        40001/42001 (token refused), 40164 (IP not whitelisted), 45009 (daily quota) ..."""
        if api not in FAULT_APIS:
            raise WeChatError(47001, f"data format error: api must be one of {sorted(FAULT_APIS)}")
        if not isinstance(errcodes, list) or not all(isinstance(c, int) for c in errcodes):
            raise WeChatError(47001, "data format error: errcodes must be a list of integers")
        self.faults.setdefault(api, []).extend(errcodes)
        return {k: list(v) for k, v in self.faults.items()}

    def take_fault(self, api: str) -> None:
        """Answer the next injected errcode of ``api``, if any."""
        queued = self.faults.get(api)
        if queued:
            errcode = queued.pop(0)
            raise WeChatError(errcode, FAULT_MESSAGES.get(errcode, "injected"))

    def user(self, openid: Any, http_status: int = 400) -> WxUser:
        user = self.users.get(openid) if isinstance(openid, str) else None
        if user is None:
            raise _unknown_openid(http_status)
        return user

    # -- the server's side: WeChat's own APIs --

    def check_app(self, appid: str | None, secret: str | None) -> None:
        if not appid:
            raise WeChatError(41002, "appid missing")
        if appid != self.appid:
            raise WeChatError(40013, "invalid appid")
        if not secret:
            raise WeChatError(41004, "appsecret missing")
        if secret != self.secret:
            raise WeChatError(40125, "invalid appsecret")

    def code_to_session(
        self, appid: str | None, secret: str | None, js_code: str | None, grant_type: str | None
    ) -> dict[str, Any]:
        """GET /sns/jscode2session: appid and secret, no access token."""
        self.take_fault("jscode2session")
        self.check_app(appid, secret)
        if grant_type != "authorization_code":
            raise WeChatError(40002, "invalid grant_type")
        if not js_code:
            raise WeChatError(41008, "missing code")
        entry = self._take_code(self.login_codes, js_code, used=(40163, "code been used"))
        user = self.users[entry.openid]
        return {"openid": user.openid, "session_key": entry.value, "unionid": user.unionid}

    def _prune(self, codes: dict[str, OneTimeCode]) -> None:
        # Codes are stored oldest first, so dropping the expired head keeps memory bounded
        # under load at O(1) amortized; a dropped code answers 40029 as an expired one does.
        now = self.clock()
        while codes:
            oldest = next(iter(codes))
            if now - codes[oldest].issued_at <= CODE_TTL:
                return
            del codes[oldest]

    def _take_code(
        self, codes: dict[str, OneTimeCode], code: str, used: tuple[int, str]
    ) -> OneTimeCode:
        entry = codes.get(code)
        if entry is None:
            raise WeChatError(40029, "invalid code")
        if entry.used:
            raise WeChatError(*used)
        if self.clock() - entry.issued_at > CODE_TTL:
            raise WeChatError(40029, "invalid code")
        entry.used = True
        return entry

    def issue_token(
        self,
        appid: str | None,
        secret: str | None,
        grant_type: str | None,
        stable: bool,
        force_refresh: bool = False,
    ) -> dict[str, Any]:
        """GET /cgi-bin/token (``stable=False``) and POST /cgi-bin/stable_token."""
        self.take_fault("token")
        if grant_type != "client_credential":
            raise WeChatError(40002, "invalid grant_type")
        self.check_app(appid, secret)
        kind = "stable" if stable else "plain"
        now = self.clock()
        current = self.current_tokens.get(kind)
        if current is not None:
            left = self.tokens.get(current, now) - now
            if stable and not force_refresh and left > OLD_TOKEN_GRACE:
                return {"access_token": current, "expires_in": int(left)}
            if stable and force_refresh:
                self.tokens.pop(current, None)  # revoked at once: answers 40001 from now on
            else:
                self.tokens[current] = min(self.tokens[current], now + OLD_TOKEN_GRACE)
        token = secrets.token_urlsafe(48)
        self.tokens[token] = now + TOKEN_TTL
        self.current_tokens[kind] = token
        return {"access_token": token, "expires_in": TOKEN_TTL}

    def check_token(self, token: str | None) -> None:
        if not token:
            raise WeChatError(41001, "access_token missing")
        expires_at = self.tokens.get(token)
        if expires_at is None:
            raise WeChatError(40001, "invalid credential, access_token is invalid or not latest")
        if self.clock() >= expires_at:
            raise WeChatError(42001, "access_token expired")

    def send_subscribe_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /cgi-bin/message/subscribe/send: consumes one quota of (touser, template)."""
        self._count_send()
        touser = self.user(body.get("touser")).openid
        template_id = body.get("template_id")
        if not isinstance(template_id, str) or not template_id:
            raise WeChatError(40037, "invalid template_id")
        data = check_template_data(body.get("data"))
        spec = self.templates.get(template_id)
        if spec is not None:
            check_keywords(data, spec.keywords)
        check_send_options(body)
        self._check_page(body.get("page"))
        user_quotas = self.quotas.get(touser, {})
        if user_quotas.get(template_id, 0) <= 0:
            raise WeChatError(43101, "user refuse to accept the msg")
        if spec is None or not spec.long_term:  # a long-term acceptance is never used up
            user_quotas[template_id] -= 1
        message = SentMessage(
            msgid=len(self.messages) + 1,
            touser=touser,
            template_id=template_id,
            page=body.get("page"),
            data=data,
            miniprogram_state=body.get("miniprogram_state") or "formal",
            lang=body.get("lang") or "zh_CN",
            sent_at=self.clock(),
        )
        self.messages.append(message)
        return {"errcode": 0, "errmsg": "ok", "msgid": message.msgid}

    def _count_send(self) -> None:
        """One more call today; 45009 once the day's count is spent."""
        today = int(self.clock() + BEIJING) // 86400
        day, calls = self.sends_today
        calls = calls if day == today else 0
        if calls >= self.sends_per_day:
            raise WeChatError(45009, FAULT_MESSAGES[45009])
        self.sends_today = (today, calls + 1)

    def _check_page(self, page: Any) -> None:
        """41030: the page must be one of the released app's pages (query string allowed)."""
        known = not self.pages or not isinstance(page, str) or not page
        if not known and page.split("?", 1)[0] not in self.pages:
            raise WeChatError(41030, "invalid page")

    def check_content(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /wxa/msg_sec_check: version 2 when ``version == 2``, else the legacy v1."""
        content = body.get("content")
        if not isinstance(content, str):
            raise WeChatError(47001, "data format error")
        version = body.get("version")
        if version == 2:
            return self._check_content_v2(body, content)
        if version not in (None, 1):
            raise WeChatError(47001, "data format error")
        if len(content.encode()) > SEC_CHECK_V1_MAX_BYTES:
            raise WeChatError(45002, "content size out of limit")
        if find_risky_word(content, [*DEFAULT_RISKY_WORDS, *self.risky_words]):
            raise WeChatError(87014, "risky content")
        return {"errcode": 0, "errmsg": "ok"}

    def _check_content_v2(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        user = self.user(body.get("openid"))
        # v2's openid must be of a user who opened the mini-program in the last 2 hours
        if self.clock() - user.last_visit > RECENT_VISIT_SECONDS:
            raise WeChatError(61010, "code is expired")
        if body.get("scene") not in SEC_SCENES:
            raise WeChatError(40129, "invalid scene")
        if len(content) > SEC_CHECK_V2_MAX_CHARS:
            raise WeChatError(45002, "content size out of limit")
        extras = [body.get(k) for k in ("title", "nickname", "signature")]
        text = "\n".join([content, *(e for e in extras if isinstance(e, str))])
        risky = find_risky_word(text, self.risky_words)
        review = None if risky else find_risky_word(text, self.review_words)
        verdict = sec_check_verdict(risky, review)
        return {"errcode": 0, "errmsg": "ok", **verdict, "trace_id": new_rid()}

    def phone_number(self, code: Any) -> dict[str, Any]:
        """POST /wxa/business/getuserphonenumber: each code once, within 5 minutes."""
        if not isinstance(code, str) or not code:
            raise WeChatError(40029, "invalid code")
        entry = self._take_code(self.phone_codes, code, used=(40029, "invalid code"))
        full = entry.value if entry.country_code == "86" else f"+{entry.country_code}{entry.value}"
        phone_info = {
            "phoneNumber": full,
            "purePhoneNumber": entry.value,
            "countryCode": entry.country_code,
            "watermark": {"timestamp": int(entry.issued_at), "appid": self.appid},
        }
        return {"errcode": 0, "errmsg": "ok", "phone_info": phone_info}
