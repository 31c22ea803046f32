"""``async main()``: start what is configured, serve, and close everything on shutdown."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from contextlib import AsyncExitStack
from typing import Any

from tornado.httpserver import HTTPServer

from server.app import make_app
from server.config import Settings
from server.crypto import resolve_keys
from server.db import connect, ensure_indexes
from server.embedded import EmbeddedDatabase, free_port
from server.periodic import Periodic
from server.wechat import WeChatAdapter

log = logging.getLogger("microcourt")


async def _database_uri(settings: Settings, stack: AsyncExitStack) -> str:
    if not settings.mongodb.embedded:
        return settings.mongodb.uri
    embedded = EmbeddedDatabase(
        settings.mongodb.embedded_command,
        settings.server.data_dir,
        settings.mongodb.startup_timeout_seconds,
    )
    uri = await embedded.start()
    stack.push_async_callback(embedded.stop)
    return uri


async def _wechat(settings: Settings, stack: AsyncExitStack) -> tuple[WeChatAdapter, str]:
    """The WeChat adapter, against the real platform or an emulator started here."""
    wx = settings.wechat
    if not wx.emulated:
        adapter = WeChatAdapter(wx.appid, wx.secret, wx.api_base, wx.timeout_seconds)
        stack.callback(adapter.close)
        return adapter, wx.api_base
    from miniapp_stubs.emulator import start_emulator

    secret = secrets.token_hex(16)
    emulator = await start_emulator(wx.appid, secret)
    stack.push_async_callback(emulator.stop)
    adapter = WeChatAdapter(wx.appid, secret, emulator.url, wx.timeout_seconds)
    stack.callback(adapter.close)
    return adapter, emulator.url


async def main(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT or SIGTERM."""
    keys = resolve_keys(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        uri = await _database_uri(settings, stack)
        client = connect(uri)
        stack.push_async_callback(client.close)
        db = client[settings.mongodb.database]
        await db.command("ping")
        await ensure_indexes(db)
        wechat, wechat_url = await _wechat(settings, stack)
        app = make_app(settings, db, wechat=wechat, keys=keys)
        services: Any = app.settings["services"]
        await _first_admin(settings, services)
        await _start_background(services, settings, stack)
        port = settings.server.port or free_port(settings.server.host)
        server = HTTPServer(
            app, xheaders=settings.server.behind_proxy, max_body_size=settings.server.max_body_bytes
        )
        server.listen(port, settings.server.host)
        stack.push_async_callback(server.close_all_connections)
        stack.callback(server.stop)
        print(
            f"microcourt ready: api=http://{settings.server.host}:{port} emulator={wechat_url}",
            flush=True,
        )
        if ready:
            ready.set()
        await stop.wait()
        log.info("shutting down")


async def _start_background(services: Any, settings: Settings, stack: AsyncExitStack) -> None:
    """Revocation polling, subscribe-message sends, the live feed, the deadline sweep, the
    hearing reminders and the work-order escalations; each is stopped (and its lease
    released) on shutdown."""
    services.auth.start_polling()
    stack.push_async_callback(services.auth.stop_polling)
    services.outbox.start()
    stack.push_async_callback(services.outbox.stop)
    services.feed.start()
    stack.push_async_callback(services.feed.stop)
    sweep = Periodic(
        "deadline-sweep", services.review.sweep_deadlines, settings.review.deadline_sweep_seconds
    )
    sweep.start()
    stack.push_async_callback(sweep.stop)
    every = settings.cases.reminder_sweep_seconds
    reminders = Periodic("hearing-reminders", services.hearings.sweep_reminders, every)
    reminders.start()
    stack.push_async_callback(reminders.stop)
    stack.push_async_callback(services.workorder_sweep.release_lease)
    escalations = Periodic(
        "workorder-sweep", services.workorder_sweep.run_once, settings.workorders.sweep_seconds
    )
    escalations.start()
    stack.push_async_callback(escalations.stop)


async def _first_admin(settings: Settings, services: Any) -> None:
    if settings.admin_password:
        await services.users.ensure_admin(settings.admin_password)
    elif not await services.users.by_username("admin"):
        log.warning("no admin user yet: set MICROCOURT_ADMIN_PASSWORD to create one")
