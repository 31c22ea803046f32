"""The WeChat platform adapter: WeChat's server API on the IOLoop (aiohttp), wechatpy keeping
the access token and judging each answer, against a configurable base URL.

In development and tests the base URL is the emulator in ``miniapp_stubs``; in production
it is ``https://api.weixin.qq.com``. Nothing else changes between the two.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

log = logging.getLogger("microcourt.wechat")

# errcodes of code2Session that mean "this login code is no good" rather than an outage
BAD_CODE_ERRCODES = frozenset({40029, 40163, 40226})
# 45011: this user signs in too often (their 429); 45009, the app's daily quota, is an outage
RATE_LIMIT_ERRCODES = frozenset({45011})
# The access token WeChat no longer takes (invalid, not the latest, expired): fetch it again
# once and retry; a second refusal is an outage.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# What an operator must fix: the server's IP is not in the mini-program's whitelist (40164),
# or the API's daily quota is spent (45009, reset by clearQuota or at midnight).
OPERATOR_ERRCODES: dict[int, str] = {
    40164: "this server's IP is not in the mini-program's API IP whitelist "
    "(mp.weixin.qq.com > 开发管理 > 开发设置 > IP白名单): add it",
    45009: "the daily call quota of this WeChat API is spent: wait for midnight or clear "
    "it with /cgi-bin/clear_quota",
}
SCENE_COMMENT = 2  # msgSecCheck v2 scenes: 1 profile, 2 comment, 3 forum, 4 social log


class WeChatError(Exception):
    """WeChat answered with an errcode, or could not be reached (errcode None)."""

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        super().__init__(f"wechat errcode={errcode}: {errmsg}")


@dataclass(frozen=True)
class TextVerdict:
    """msgSecCheck v2's answer: ``suggest`` is pass, review or risky; ``label`` the category
    (100 normal, 20001 political, 20006 crime ...)."""

    suggest: str
    label: int
    trace_id: str

    @property
    def risky(self) -> bool:
        return self.suggest == "risky"


def is_outage(error: WeChatError) -> bool:
    """Whether ``error`` says WeChat (or our access to it) is down rather than judging the
    request: unreachable, a token refused twice, an operator's errcode, or WeChat's -1 busy."""
    return error.errcode in (None, -1) or error.errcode in TOKEN_ERRCODES | set(OPERATOR_ERRCODES)


@dataclass(frozen=True)
class FaceInfo:
    """/cityservice/face/identify/getinfo's answer on one verify_result."""

    identify_ret: int
    openid: str
    identify_time: int
    id_card_number_md5: str
    name_utf8_md5: str


@dataclass(frozen=True)
class Session:
    openid: str
    session_key: str
    unionid: str | None = None


class _Client(WeChatClient):
    """wechatpy's client, for what it keeps and judges: the access token (in its session
    storage) and each answer (``_handle_result``: a non-zero errcode raises
    ``WeChatClientException``, the hook wechatpy's own asyncio client was built on). Its
    requests are not sent through it: see ``WeChatAdapter``."""

    def __init__(self, appid: str, secret: str, api_base: str, timeout: float) -> None:
        # auto_retry off: wechatpy retries a token errcode without end; we retry once
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self.api_base = api_base.rstrip("/")

    def judged(self, raw: bytes) -> dict[str, Any]:
        """WeChat's answer decoded, or ``WeChatClientException`` for its errcode (or for an
        answer that is not a JSON object)."""
        result = self._handle_result(_Answer(raw))
        if not isinstance(result, dict):
            raise WeChatClientException(None, "not a JSON object", client=self)
        return result


@dataclass(frozen=True)
class _Answer:
    """What ``_handle_result`` reads of a response: its body, and its request (none here)."""

    content: bytes
    request: None = None


#: connections to WeChat: for requests (sign-in, content checks ...) and for the outbox's sends
CALLS, SENDS = 32, 16
JSON = {"Content-Type": "application/json"}


class WeChatAdapter:
    """WeChat's server API on the IOLoop, through aiohttp (kept-alive connections).

    wechatpy's requests run in threads, and cost ~1.0 ms of CPU a call there against aiohttp's
    ~0.12 ms; under load those threads held the interpreter lock the IOLoop waited for:
    ``POST /messages`` answered 268 a second with its content check and 414 without
    (README, "Performance")."""

    def __init__(self, appid: str, secret: str, api_base: str, timeout: float = 5.0) -> None:
        self.appid = appid
        self.api_base = api_base
        self._client = _Client(appid, secret, api_base, timeout)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # The outbox's concurrent sends get connections of their own: a burst of pushes must
        # not queue a party's content check (a request waiting on it) behind it.
        self._http: dict[bool, aiohttp.ClientSession] = {}
        self._fetching = asyncio.Lock()  # one token fetch at a time; the rest wait for it

    def _session(self, sends: bool) -> aiohttp.ClientSession:
        found = self._http.get(sends)
        if found is None or found.closed:
            connector = aiohttp.TCPConnector(limit=SENDS if sends else CALLS)
            found = self._http[sends] = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout
            )
        return found

    async def aclose(self) -> None:
        for session in self._http.values():
            await session.close()
        self._http.clear()

    async def _call(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        token: bool = True,
        sends: bool = False,
    ) -> dict[str, Any]:
        """``path`` of WeChat's API (POST ``body`` as JSON, or GET), with the access token
        unless ``token`` is False; one refused token is fetched again and the call retried."""
        try:
            return await self._once(path, body, params, token, sends)
        except WeChatError as e:
            if not token or e.errcode not in TOKEN_ERRCODES:
                raise
            log.info("wechat refused the access token (errcode %s): fetching it again", e.errcode)
            self._client.session.delete(self._client.access_token_key)
            return await self._once(path, body, params, token, sends)

    async def _once(
        self,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        token: bool,
        sends: bool,
    ) -> dict[str, Any]:
        query = {**(params or {}), **({"access_token": await self._token()} if token else {})}
        url = f"{self._client.api_base}/{path}"
        try:
            if body is None:
                raw = await self._send("GET", url, query, None, sends)
            else:  # as wechatpy sends it: UTF-8, not escaped
                data = json.dumps(body, ensure_ascii=False).encode()
                raw = await self._send("POST", url, query, data, sends)
            return self._client.judged(raw)
        except WeChatClientException as e:
            code = int(e.errcode) if e.errcode is not None else None
            if code in OPERATOR_ERRCODES:
                log.error("wechat errcode %s: %s", code, OPERATOR_ERRCODES[code])
            raise WeChatError(code, str(e.errmsg)) from None

    async def _send(
        self, method: str, url: str, query: dict[str, str], data: bytes | None, sends: bool
    ) -> bytes:
        """The answer's body; WeChatError(None) when WeChat cannot be reached or answers an
        HTTP error."""
        try:
            async with self._session(sends).request(
                method, url, params=query, data=data, headers=JSON if data else None
            ) as res:
                res.raise_for_status()
                return await res.read()
        except (aiohttp.ClientError, OSError) as e:  # a timeout is an OSError
            log.warning("wechat unreachable: %s", type(e).__name__)
            raise WeChatError(None, "unreachable") from None

    async def _token(self) -> str:
        """The access token, from getStableAccessToken (the same token for every process
        until it expires), kept in wechatpy's storage until WeChat refuses it."""
        key = self._client.access_token_key
        if found := self._client.session.get(key):
            return str(found)
        async with self._fetching:
            found = self._client.session.get(key)
            if found:
                return str(found)
            client = self._client
            body = {"grant_type": "client_credential", "appid": client.appid}
            result = await self._once(
                "cgi-bin/stable_token", {**body, "secret": client.secret}, None, False, False
            )
            client.session.set(key, result["access_token"], result["expires_in"])
            return str(result["access_token"])

    async def code_to_session(self, code: str) -> Session:
        """code2Session: appid, secret and the code, and no access token (wechatpy's
        ``wxa.code_to_session`` adds one, so a token outage would stop every sign-in)."""
        client = self._client
        params = {
            "appid": client.appid,
            "secret": client.secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }
        result = await self._call("sns/jscode2session", params=params, token=False)
        if not result.get("openid") or not result.get("session_key"):
            raise WeChatError(None, "code2session answered without openid")
        return Session(result["openid"], result["session_key"], result.get("unionid"))

    async def face_identify_info(self, verify_result: str) -> FaceInfo:
        """/cityservice/face/identify/getinfo: what WeChat says of a face verification."""
        result = await self._call(
            "cityservice/face/identify/getinfo", {"verify_result": verify_result}
        )
        return FaceInfo(
            identify_ret=int(result.get("identify_ret", -1)),
            openid=str(result.get("openid") or ""),
            identify_time=int(result.get("identify_time") or 0),
            id_card_number_md5=str(result.get("id_card_number_md5") or ""),
            name_utf8_md5=str(result.get("name_utf8_md5") or ""),
        )

    async def get_phone_number(self, code: str) -> str:
        result = await self._call("wxa/business/getuserphonenumber", {"code": code})
        return str(result["phone_info"]["purePhoneNumber"])

    async def check_text(
        self, openid: str, content: str, scene: int = SCENE_COMMENT
    ) -> TextVerdict:
        """msgSecCheck v2 (内容安全): WeChat's verdict on a user's text before it is stored.

        v2 needs the openid of the user who wrote it (one who opened the mini-program in the
        last two hours) and a scene; WeChatError on any errcode or when unreachable.
        """
        body = {"content": content, "version": 2, "scene": scene, "openid": openid}
        result = await self._call("wxa/msg_sec_check", body)
        verdict = result.get("result") or {}
        return TextVerdict(
            suggest=str(verdict.get("suggest") or "review"),
            label=int(verdict.get("label") or 0),
            trace_id=str(result.get("trace_id") or ""),
        )

    async def send_subscribe_message(
        self, openid: str, template_id: str, data: dict[str, Any], page: str | None = None
    ) -> dict[str, Any]:
        """subscribeMessage.send: ``{errcode: 0, msgid}``; WeChatError on any errcode.

        43101 means the user has no send of this template left (or refused it).
        """
        # the body wechatpy's ``wxa.send_subscribe_message`` builds (no page: none sent)
        body = {"touser": openid, "template_id": template_id, "data": data}
        return await self._call(
            "cgi-bin/message/subscribe/send",
            {**body, **({"page": page} if page else {})},
            sends=True,
        )
