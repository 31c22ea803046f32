"""The WeChat platform emulator: a Tornado app on a loopback port that answers WeChat's paths.

Point wechatpy (or any WeChat client) at ``Emulator.url`` instead of ``https://api.weixin.qq.com``
and it works unchanged. The ``/_emulator/...`` control paths play the phone's part (``wx.login``,
the getPhoneNumber button, accepting ``wx.requestSubscribeMessage``) and let tests look inside.

The same app answers WeChat Pay v3 (``https://api.mch.weixin.qq.com``'s ``/v3/...`` paths) for
the merchants registered with ``Emulator.pay.add_merchant``; ``/_emulator/pay/...`` plays the
payer's part (``wx.requestPayment``) and lets tests steer callbacks, refunds and failures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import tornado.httpserver
import tornado.netutil
import tornado.web

from miniapp_stubs import wechatpay_crypto as wpc
from miniapp_stubs.sms_emulator import SmsState, sms_handlers
from miniapp_stubs.wechat_emulator import NotFoundHandler, wechat_handlers
from miniapp_stubs.wechat_rules import WeChatError
from miniapp_stubs.wechat_state import EmulatorState
from miniapp_stubs.wechatpay_emulator import PayOptions, make_pay_state, wechatpay_handlers
from miniapp_stubs.wechatpay_state import PayState

__all__ = [
    "Emulator",
    "EmulatorState",
    "PayOptions",
    "PayState",
    "WeChatError",
    "make_emulator_app",
    "start_emulator",
]

log = logging.getLogger("miniapp_stubs.emulator")


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # The path only: WeChat's query strings carry the app secret, codes and tokens.
    log.debug("%s %s %d", handler.request.method, handler.request.path, handler.get_status())


def make_emulator_app(
    state: EmulatorState, pay: PayState | None = None, sms: SmsState | None = None
) -> tornado.web.Application:
    """The emulator's routes (WeChat, WeChat Pay, Tencent Cloud SMS), ending with a JSON 404."""
    pay = pay or make_pay_state(state.clock)
    sms = sms or SmsState(state.clock)
    return tornado.web.Application(
        [
            *wechat_handlers(state),
            *wechatpay_handlers(pay),
            *sms_handlers(sms),
            (r".*", NotFoundHandler, {"state": state}),
        ],
        log_function=_log_request,
    )


class Emulator:
    """A running emulator: its state, port and base URL (``http://127.0.0.1:PORT``)."""

    def __init__(
        self,
        state: EmulatorState,
        server: tornado.httpserver.HTTPServer,
        host: str,
        port: int,
        pay: PayState,
        sms: SmsState | None = None,
    ) -> None:
        self.state = state
        self.pay = pay
        self.sms = sms or SmsState(state.clock)  # Tencent Cloud SMS (1+N)
        self.port = port
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self._server = server

    @property
    def platform_public_key_pem(self) -> str:
        """WeChat Pay's platform public key (what the merchant verifies answers with)."""
        return wpc.public_pem(self.pay.notifier.platform_key)

    @property
    def platform_public_key_id(self) -> str:
        """Its id, ``PUB_KEY_ID_...``, sent as ``Wechatpay-Serial``."""
        return self.pay.notifier.platform_key_id

    async def stop(self) -> None:
        """Stop listening, cancel pending callbacks and close open connections."""
        self._server.stop()
        await self.pay.notifier.stop()
        await self._server.close_all_connections()


async def start_emulator(
    appid: str,
    secret: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Callable[[], float] = time.time,
    pay: PayOptions | None = None,
) -> Emulator:
    """Listen on ``host:port`` (0 picks a free port) in the current IOLoop."""
    state = EmulatorState(appid, secret, clock)
    pay_state = make_pay_state(clock, pay)
    sms = SmsState(clock)
    sockets = tornado.netutil.bind_sockets(port, host)
    server = tornado.httpserver.HTTPServer(make_emulator_app(state, pay_state, sms))
    server.add_sockets(sockets)
    return Emulator(state, server, host, sockets[0].getsockname()[1], pay_state, sms)
