"""The WeChat platform adapter: wechatpy, run off the IOLoop, against a configurable base URL.

In development and tests the base URL is the emulator in ``miniapp_stubs``; in production
it is ``https://api.weixin.qq.com``. Nothing else changes between the two.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

log = logging.getLogger("microcourt.wechat")
T = TypeVar("T")

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
    """wechatpy's client with every base URL rooted at ``api_base``; tokens from stable_token."""

    def __init__(self, appid: str, secret: str, api_base: str, timeout: float) -> None:
        # auto_retry off: wechatpy retries a token errcode without end; we retry once
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self.api_base = api_base.rstrip("/")
        self.API_BASE_URL = f"{self.api_base}/cgi-bin/"
        self.wxa.API_BASE_URL = f"{self.api_base}/"

    def fetch_access_token(self) -> dict[str, Any]:
        # getStableAccessToken: the same token for every process until it expires.
        res = self._http.post(
            f"{self.api_base}/cgi-bin/stable_token",
            json={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            timeout=self.timeout,
        )
        res.raise_for_status()
        result: dict[str, Any] = res.json()
        if result.get("errcode"):
            raise WeChatClientException(result["errcode"], result.get("errmsg"), client=self)
        self.session.set(self.access_token_key, result["access_token"], result["expires_in"])
        self.expires_at = None
        return result


#: threads calling WeChat: for requests (sign-in, content checks ...) and for the outbox's sends
CALLS, SENDS = 8, 16


class WeChatAdapter:
    def __init__(self, appid: str, secret: str, api_base: str, timeout: float = 5.0) -> None:
        self.appid = appid
        self.api_base = api_base
        self._client = _Client(appid, secret, api_base, timeout)
        # wechatpy is blocking (requests): it gets threads of its own, never the IOLoop.
        self._pool = ThreadPoolExecutor(max_workers=CALLS, thread_name_prefix="wechat")
        # The outbox's concurrent sends get threads of their own: a burst of pushes must not
        # queue a party's content check (a request waiting on it) behind it.
        self._send_pool = ThreadPoolExecutor(max_workers=SENDS, thread_name_prefix="wechat-send")
        # one kept-alive connection per thread that may call WeChat (requests keeps 10, and
        # dropped the rest with a warning per send when the outbox sent 16 at once)
        adapter = HTTPAdapter(pool_maxsize=CALLS + SENDS)
        for scheme in ("http://", "https://"):
            self._client._http.mount(scheme, adapter)

    async def _run(
        self,
        fn: Callable[..., T],
        *args: Any,
        pool: ThreadPoolExecutor | None = None,
        **kwargs: Any,
    ) -> T:
        """``fn`` on a thread; a refused access token is fetched again once and ``fn`` retried."""
        try:
            return await self._once(fn, *args, pool=pool, **kwargs)
        except WeChatError as e:
            if e.errcode not in TOKEN_ERRCODES:
                raise
            log.info("wechat refused the access token (errcode %s): fetching it again", e.errcode)
            self._client.session.delete(self._client.access_token_key)
            return await self._once(fn, *args, pool=pool, **kwargs)

    async def _once(
        self,
        fn: Callable[..., T],
        *args: Any,
        pool: ThreadPoolExecutor | None = None,
        **kwargs: Any,
    ) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await loop.run_in_executor(pool or self._pool, call)
        except WeChatClientException as e:
            code = int(e.errcode) if e.errcode is not None else None
            if code in OPERATOR_ERRCODES:
                log.error("wechat errcode %s: %s", code, OPERATOR_ERRCODES[code])
            raise WeChatError(code, str(e.errmsg)) from None
        except requests.RequestException as e:
            log.warning("wechat unreachable: %s", type(e).__name__)
            raise WeChatError(None, "unreachable") from None

    async def code_to_session(self, code: str) -> Session:
        """code2Session: appid, secret and the code, and no access token (wechatpy's
        ``wxa.code_to_session`` adds one, so a token outage would stop every sign-in)."""
        result = await self._once(self._code_to_session, code)
        if not result.get("openid") or not result.get("session_key"):
            raise WeChatError(None, "code2session answered without openid")
        return Session(result["openid"], result["session_key"], result.get("unionid"))

    def _code_to_session(self, code: str) -> dict[str, Any]:
        client = self._client
        params = {
            "appid": client.appid,
            "secret": client.secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }
        res = client._http.get(
            f"{client.api_base}/sns/jscode2session", params=params, timeout=client.timeout
        )
        res.raise_for_status()
        result: dict[str, Any] = res.json()
        if result.get("errcode"):
            raise WeChatClientException(result["errcode"], result.get("errmsg"), client=client)
        return result

    async def face_identify_info(self, verify_result: str) -> FaceInfo:
        """/cityservice/face/identify/getinfo: what WeChat says of a face verification."""
        result: dict[str, Any] = await self._run(
            self._client.post,
            "cityservice/face/identify/getinfo",
            data={"verify_result": verify_result},
            api_base_url=f"{self._client.api_base}/",
        )
        return FaceInfo(
            identify_ret=int(result.get("identify_ret", -1)),
            openid=str(result.get("openid") or ""),
            identify_time=int(result.get("identify_time") or 0),
            id_card_number_md5=str(result.get("id_card_number_md5") or ""),
            name_utf8_md5=str(result.get("name_utf8_md5") or ""),
        )

    async def get_phone_number(self, code: str) -> str:
        result = await self._run(
            self._client.post,
            "wxa/business/getuserphonenumber",
            data={"code": code},
            api_base_url=f"{self._client.api_base}/",
        )
        return str(result["phone_info"]["purePhoneNumber"])

    async def check_text(
        self, openid: str, content: str, scene: int = SCENE_COMMENT
    ) -> TextVerdict:
        """msgSecCheck v2 (内容安全): WeChat's verdict on a user's text before it is stored.

        v2 needs the openid of the user who wrote it (one who opened the mini-program in the
        last two hours) and a scene; WeChatError on any errcode or when unreachable.
        """
        body = {"content": content, "version": 2, "scene": scene, "openid": openid}
        result: dict[str, Any] = await self._run(
            self._client.post,
            "wxa/msg_sec_check",
            data=body,
            api_base_url=f"{self._client.api_base}/",
        )
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
        result: dict[str, Any] = await self._run(
            self._client.wxa.send_subscribe_message,
            openid,
            template_id,
            data,
            page=page or None,
            pool=self._send_pool,
        )
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._send_pool.shutdown(wait=False, cancel_futures=True)
