"""The WeChat platform emulator: a Tornado app on a loopback port that answers WeChat's paths.

Point wechatpy (or any WeChat client) at ``Emulator.url`` instead of ``https://api.weixin.qq.com``
and it works unchanged. The ``/_emulator/...`` control paths play the phone's part (``wx.login``,
the getPhoneNumber button, accepting ``wx.requestSubscribeMessage``) and let tests look inside.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import tornado.httpserver
import tornado.netutil
import tornado.web

from miniapp_stubs.wechat_emulator import NotFoundHandler, wechat_handlers
from miniapp_stubs.wechat_rules import WeChatError
from miniapp_stubs.wechat_state import EmulatorState

__all__ = ["Emulator", "EmulatorState", "WeChatError", "make_emulator_app", "start_emulator"]

log = logging.getLogger("miniapp_stubs.emulator")


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # The path only: WeChat's query strings carry the app secret, codes and tokens.
    log.debug("%s %s %d", handler.request.method, handler.request.path, handler.get_status())


def make_emulator_app(state: EmulatorState) -> tornado.web.Application:
    """The emulator's routes, ending with a JSON 404 for every unknown path."""
    return tornado.web.Application(
        [*wechat_handlers(state), (r".*", NotFoundHandler, {"state": state})],
        log_function=_log_request,
    )


class Emulator:
    """A running emulator: its state, port and base URL (``http://127.0.0.1:PORT``)."""

    def __init__(
        self, state: EmulatorState, server: tornado.httpserver.HTTPServer, host: str, port: int
    ) -> None:
        self.state = state
        self.port = port
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self._server = server

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        self._server.stop()
        await self._server.close_all_connections()


async def start_emulator(
    appid: str,
    secret: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Callable[[], float] = time.time,
) -> Emulator:
    """Listen on ``host:port`` (0 picks a free port) in the current IOLoop."""
    state = EmulatorState(appid, secret, clock)
    sockets = tornado.netutil.bind_sockets(port, host)
    server = tornado.httpserver.HTTPServer(make_emulator_app(state))
    server.add_sockets(sockets)
    return Emulator(state, server, host, sockets[0].getsockname()[1])
