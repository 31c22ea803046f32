"""Tornado handlers of the WeChat emulator: WeChat's own paths and the ``/_emulator`` controls.

WeChat's paths answer HTTP 200 with ``{"errcode", "errmsg"}`` on failure, as the real platform
does (wechatpy raises on a non-zero errcode); control paths use HTTP statuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import tornado.web

from miniapp_stubs.wechat_rules import WeChatError
from miniapp_stubs.wechat_state import EmulatorState, new_rid

JSONObject = dict[str, Any]


class JSONHandler(tornado.web.RequestHandler):
    """Base: JSON out, JSON bodies in, errors as ``{"errcode", "errmsg"}``."""

    state: EmulatorState

    def initialize(self, state: EmulatorState) -> None:
        self.state = state

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")

    def send_json(self, payload: JSONObject, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload, ensure_ascii=False))

    def json_body(self, allow_empty: bool = False) -> JSONObject:
        if not self.request.body.strip():
            if allow_empty:
                return {}
            raise WeChatError(44002, "empty post data")
        try:
            body = json.loads(self.request.body)
        except ValueError:
            raise WeChatError(47001, "data format error") from None
        if not isinstance(body, dict):
            raise WeChatError(47001, "data format error")
        return body

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.send_json({"errcode": -1, "errmsg": self._reason}, status_code)


class WeChatAPIHandler(JSONHandler):
    """A path of api.weixin.qq.com."""

    def answer(self, action: Callable[[], JSONObject]) -> None:
        try:
            payload = action()
        except WeChatError as exc:
            payload = {"errcode": exc.errcode, "errmsg": f"{exc.errmsg}, rid: {new_rid()}"}
        self.send_json(payload)

    def authorized_body(self, api: str | None = None) -> JSONObject:
        """Check ``?access_token=`` first, as WeChat does, then parse the body; an errcode
        injected for ``api`` answers first."""
        if api is not None:
            self.state.take_fault(api)
        self.state.check_token(self.get_query_argument("access_token", None))
        return self.json_body()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            errcode, errmsg = (43002, "require POST method")
            if self.request.method == "POST":
                errcode, errmsg = (43001, "require GET method")
            self.send_json({"errcode": errcode, "errmsg": errmsg}, status_code)
            return
        super().write_error(status_code, **kwargs)


class Code2SessionHandler(WeChatAPIHandler):
    def get(self) -> None:
        """GET /sns/jscode2session: 200 {openid, session_key, unionid} or errcode."""
        arg = self.get_query_argument
        self.answer(
            lambda: self.state.code_to_session(
                arg("appid", None),
                arg("secret", None),
                arg("js_code", None),
                arg("grant_type", None),
            )
        )


class AccessTokenHandler(WeChatAPIHandler):
    def get(self) -> None:
        """GET /cgi-bin/token: 200 {access_token, expires_in} or errcode."""
        arg = self.get_query_argument
        self.answer(
            lambda: self.state.issue_token(
                arg("appid", None), arg("secret", None), arg("grant_type", None), stable=False
            )
        )


class StableTokenHandler(WeChatAPIHandler):
    def post(self) -> None:
        """POST /cgi-bin/stable_token: 200 {access_token, expires_in} or errcode."""
        self.answer(self._issue)

    def _issue(self) -> JSONObject:
        body = self.json_body()
        return self.state.issue_token(
            body.get("appid"),
            body.get("secret"),
            body.get("grant_type"),
            stable=True,
            force_refresh=body.get("force_refresh") is True,
        )


class SubscribeSendHandler(WeChatAPIHandler):
    def post(self) -> None:
        """POST /cgi-bin/message/subscribe/send: 200 {errcode 0, msgid} or errcode."""
        self.answer(
            lambda: self.state.send_subscribe_message(self.authorized_body("subscribe_send"))
        )


class MsgSecCheckHandler(WeChatAPIHandler):
    def post(self) -> None:
        """POST /wxa/msg_sec_check: 200 {result: {suggest, label}, detail, trace_id} or errcode."""
        self.answer(lambda: self.state.check_content(self.authorized_body("msg_sec_check")))


class PhoneNumberHandler(WeChatAPIHandler):
    def post(self) -> None:
        """POST /wxa/business/getuserphonenumber: 200 {phone_info} or errcode."""
        self.answer(
            lambda: self.state.phone_number(self.authorized_body("phone_number").get("code"))
        )


class FaceGetInfoHandler(WeChatAPIHandler):
    def post(self) -> None:
        """POST /cityservice/face/identify/getinfo: 200 {identify_ret, openid, ...} or errcode."""
        self.answer(lambda: self.state.face.get_info(self.authorized_body("face_getinfo")))


class ControlHandler(JSONHandler):
    """A ``/_emulator`` path: what the phone or a test does; errors use HTTP statuses."""

    def answer(self, action: Callable[[], JSONObject]) -> None:
        try:
            payload = action()
        except WeChatError as exc:
            self.send_json({"errcode": exc.errcode, "errmsg": exc.errmsg}, exc.http_status)
            return
        self.send_json(payload)

    def openid_arg(self, body: JSONObject) -> str:
        openid = body.get("openid")
        if not isinstance(openid, str) or not openid:
            raise WeChatError(47001, "data format error: openid required")
        return openid


class LoginControl(ControlHandler):
    def post(self) -> None:
        """POST /_emulator/wx/login {openid?}: 200 {openid, code}; 400 bad body."""
        self.answer(self._login)

    def _login(self) -> JSONObject:
        wanted = self.json_body(allow_empty=True).get("openid") or None
        if wanted is not None and not isinstance(wanted, str):
            raise WeChatError(47001, "data format error: openid must be a string")
        openid, code = self.state.login(wanted)
        return {"openid": openid, "code": code}


class PhoneCodeControl(ControlHandler):
    def post(self) -> None:
        """POST /_emulator/wx/phone-code {openid, phone, country_code?}: 200 {code}; 400; 404."""
        self.answer(self._issue)

    def _issue(self) -> JSONObject:
        body = self.json_body()
        phone, country_code = body.get("phone"), body.get("country_code", "86")
        if not isinstance(phone, str) or not isinstance(country_code, str):
            raise WeChatError(47001, "data format error: phone must be a string")
        code = self.state.issue_phone_code(self.openid_arg(body), phone, country_code)
        return {"code": code}


class SubscribeAcceptControl(ControlHandler):
    def post(self) -> None:
        """POST /_emulator/subscribe/accept {openid, template_ids}: 200 {openid, quotas}."""
        self.answer(self._accept)

    def _accept(self) -> JSONObject:
        body = self.json_body()
        openid = self.openid_arg(body)
        quotas = self.state.accept_subscriptions(openid, body.get("template_ids"))
        return {"openid": openid, "quotas": quotas}


class SubscribeQuotasControl(ControlHandler):
    def get(self) -> None:
        """GET /_emulator/subscribe/quotas?openid=: 200 {openid, quotas}; 404 unknown user."""
        openid = self.get_query_argument("openid", "")
        self.answer(lambda: {"openid": openid, "quotas": self.state.quotas_for(openid)})


class SubscribeMessagesControl(ControlHandler):
    def get(self) -> None:
        """GET /_emulator/subscribe-messages?openid=: 200 {messages}, oldest first.

        Without ``openid``, every message sent to anyone (each carries ``touser``).
        """
        openid = self.get_query_argument("openid", None) or None
        self.send_json({"messages": self.state.messages_for(openid)})


class FaceVerifyControl(ControlHandler):
    def post(self) -> None:
        """POST /_emulator/face/verify {openid, name, id_number, outcome}: 200 {verify_result}
        (what wx.startFacialRecognitionVerify gives the page); 400 bad body; 404 unknown user."""
        self.answer(self._verify)

    def _verify(self) -> JSONObject:
        body = self.json_body()
        openid = self.state.user(self.openid_arg(body), http_status=404).openid
        return {"verify_result": self.state.face.verify(openid, body)}


class TemplatesControl(ControlHandler):
    def post(self) -> None:
        """POST /_emulator/subscribe/templates {templates: {id: {keywords, long_term?}},
        pages?}: the console's templates and the app's pages; 200 {templates, pages}; 400."""
        self.answer(self._register)

    def _register(self) -> JSONObject:
        body = self.json_body()
        return self.state.register_templates(body.get("templates"), body.get("pages"))


class FaultsControl(ControlHandler):
    def post(self) -> None:
        """POST /_emulator/wx/faults {api, errcodes}: the next calls of that API answer these
        errcodes; 200 {faults}; 400."""
        self.answer(self._add)

    def _add(self) -> JSONObject:
        body = self.json_body()
        return {"faults": self.state.add_faults(body.get("api"), body.get("errcodes"))}


class RiskyWordsControl(ControlHandler):
    def get(self) -> None:
        """GET /_emulator/content/risky-words: 200 {words}."""
        self.send_json({"words": list(self.state.risky_words)})

    def post(self) -> None:
        """POST /_emulator/content/risky-words {words}: replaces the list; 200 {words}; 400."""
        self.answer(lambda: {"words": self.state.set_risky_words(self.json_body().get("words"))})


class ReviewWordsControl(ControlHandler):
    def get(self) -> None:
        """GET /_emulator/content/review-words: 200 {words}."""
        self.send_json({"words": list(self.state.review_words)})

    def post(self) -> None:
        """POST /_emulator/content/review-words {words}: msgSecCheck v2 answers ``review`` for
        them; replaces the list; 200 {words}; 400."""
        self.answer(lambda: {"words": self.state.set_review_words(self.json_body().get("words"))})


class ResetControl(ControlHandler):
    def post(self) -> None:
        """POST /_emulator/reset {keep_tokens?}: clears all state; 200 {"ok": true}."""
        self.answer(self._reset)

    def _reset(self) -> JSONObject:
        body = self.json_body(allow_empty=True)
        self.state.reset(keep_tokens=body.get("keep_tokens") is True)
        return {"ok": True}


class NotFoundHandler(JSONHandler):
    """Every other path and method: 404 ``{"errcode": -1, "errmsg": ...}``."""

    def prepare(self) -> None:
        self.send_json({"errcode": -1, "errmsg": f"no such path: {self.request.path}"}, 404)


def wechat_handlers(state: EmulatorState) -> list[tuple[str, type[JSONHandler], JSONObject]]:
    """The WeChat (not WeChat Pay) routes, without the catch-all 404."""
    kwargs: JSONObject = {"state": state}
    routes: list[tuple[str, type[JSONHandler]]] = [
        (r"/sns/jscode2session", Code2SessionHandler),
        (r"/cgi-bin/token", AccessTokenHandler),
        (r"/cgi-bin/stable_token", StableTokenHandler),
        (r"/cgi-bin/message/subscribe/send", SubscribeSendHandler),
        (r"/wxa/msg_sec_check", MsgSecCheckHandler),
        (r"/wxa/business/getuserphonenumber", PhoneNumberHandler),
        (r"/cityservice/face/identify/getinfo", FaceGetInfoHandler),
        (r"/_emulator/face/verify", FaceVerifyControl),
        (r"/_emulator/wx/faults", FaultsControl),
        (r"/_emulator/subscribe/templates", TemplatesControl),
        (r"/_emulator/wx/login", LoginControl),
        (r"/_emulator/wx/phone-code", PhoneCodeControl),
        (r"/_emulator/subscribe/accept", SubscribeAcceptControl),
        (r"/_emulator/subscribe/quotas", SubscribeQuotasControl),
        (r"/_emulator/subscribe-messages", SubscribeMessagesControl),
        (r"/_emulator/content/risky-words", RiskyWordsControl),
        (r"/_emulator/content/review-words", ReviewWordsControl),
        (r"/_emulator/reset", ResetControl),
    ]
    return [(pattern, handler, kwargs) for pattern, handler in routes]
