"""The application factory: ``make_app(settings, db)``, used by ``serve`` and by the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tornado import web

from handlers import admin, auth, courts, me, system
from handlers.base import API404
from server.auth import AuthService
from server.clock import Clock, SystemClock
from server.config import Settings
from server.crypto import FieldCipher, Keys, Passwords, TokenSigner, resolve_keys
from server.db import Database
from server.observe import log_request
from server.openapi import build_openapi
from server.users import UserService
from server.wechat import WeChatAdapter

HANDLER_MODULES = (system, auth, me, admin, courts)


@dataclass
class Services:
    """Everything a handler may call; built once per application."""

    settings: Settings
    db: Database
    clock: Clock
    wechat: WeChatAdapter
    users: UserService
    auth: AuthService


def build_services(
    settings: Settings,
    db: Database,
    *,
    clock: Clock | None = None,
    wechat: WeChatAdapter | None = None,
    keys: Keys | None = None,
) -> Services:
    clock = clock or SystemClock()
    keys = keys or resolve_keys(settings)
    wechat = wechat or WeChatAdapter(
        settings.wechat.appid,
        settings.wechat.secret or "emulator-secret",
        settings.wechat.api_base,
        settings.wechat.timeout_seconds,
    )
    passwords = Passwords()
    users = UserService(db, settings, FieldCipher(keys.data_key, keys.hash_key), passwords, clock)
    auth = AuthService(
        db, settings, users, TokenSigner(keys.token_secret), passwords, wechat, clock
    )
    return Services(settings=settings, db=db, clock=clock, wechat=wechat, users=users, auth=auth)


def routes() -> list[tuple[str, type[web.RequestHandler]]]:
    table: list[tuple[str, type[web.RequestHandler]]] = []
    for module in HANDLER_MODULES:
        table.extend(module.default_handlers)
    return table


def make_app(settings: Settings, db: Database, **overrides: Any) -> web.Application:
    """The Tornado application; ``overrides`` (clock, wechat, keys) are for tests and serve."""
    services = build_services(settings, db, **overrides)
    table = routes()
    return web.Application(
        [*table, (r"/api/.*", API404)],
        services=services,
        openapi=build_openapi(table),
        default_handler_class=API404,
        log_function=log_request,
        debug=settings.server.debug,
        xsrf_cookies=False,
    )
