"""``async main()``: start what is configured, serve, and close everything on shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from tornado.netutil import bind_sockets

from server.app import make_app
from server.notify.sms import SmsAdapter
from server.platform.clock import SystemClock
from server.platform.config import Settings
from server.platform.crypto import resolve_keys
from server.platform.db import close, ensure_indexes
from server.platform.edge import edge_server
from server.platform.lease import Lease
from server.platform.mongo import connect
from server.platform.observe import ACCESS
from server.platform.periodic import Periodic
from server.processes import SharedEmulator, Worker
from server.wechat.miniprogram import WeChatAdapter
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_config import PayCredentials, resolve_pay_credentials

if TYPE_CHECKING:
    from server.devstack import Emulator

log = logging.getLogger("microcourt")


async def _database_uri(settings: Settings, stack: AsyncExitStack) -> str:
    if not settings.mongodb.embedded:
        return settings.mongodb.uri
    from server import devstack

    return await devstack.database_uri(settings, stack)


async def _emulator(
    settings: Settings, stack: AsyncExitStack, pay: PayCredentials, platform_key: str | None
) -> Emulator | None:
    """The WeChat + WeChat Pay emulator, started when either is not configured."""
    if not (settings.wechat.emulated or settings.wechatpay.emulated):
        return None
    from server import devstack

    return await devstack.start_emulator(settings, stack, pay, platform_key)


def _wechat(
    settings: Settings, stack: AsyncExitStack, emulator: Emulator | SharedEmulator | None
) -> WeChatAdapter:
    """The WeChat adapter, against the real platform or the emulator."""
    wx = settings.wechat
    secret, base = wx.secret, wx.api_base
    if wx.emulated and emulator is not None:
        secret, base = emulator.state.secret, emulator.url
    adapter = WeChatAdapter(wx.appid, secret, base, wx.timeout_seconds)
    stack.push_async_callback(adapter.aclose)
    return adapter


def _wechatpay(
    settings: Settings,
    stack: AsyncExitStack,
    credentials: PayCredentials,
    emulator: Emulator | SharedEmulator | None,
    port: int,
) -> WeChatPayAdapter:
    """The WeChat Pay adapter; callbacks come to our own address unless notify_base_url says."""
    host = settings.server.host
    own = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    adapter = WeChatPayAdapter.from_settings(
        settings,
        credentials,
        SystemClock(),
        api_base=emulator.url if settings.wechatpay.emulated and emulator else None,
        notify_base_url=settings.wechatpay.notify_base_url or own,
    )
    stack.push_async_callback(adapter.aclose)
    return adapter


async def main(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT or SIGTERM."""
    keys = resolve_keys(settings)
    pay, platform_key = resolve_pay_credentials(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker.from_env()  # one of ``serve --processes N`` (server/processes.py)
    async with AsyncExitStack() as stack:
        stack.callback(ACCESS.flush)  # last: the requests answered while shutting down
        uri = worker.db if worker else await _database_uri(settings, stack)
        client = connect(uri, settings.mongodb.write_concern.concern)
        stack.push_async_callback(close, client)  # promptly, even with the database gone
        db = client[settings.mongodb.database]
        await db.command("ping")
        await ensure_indexes(db)
        emulator = (
            worker.emulator if worker else await _emulator(settings, stack, pay, platform_key)
        )
        wechat = _wechat(settings, stack, emulator)
        sockets = bind_sockets(settings.server.port, settings.server.host, reuse_port=bool(worker))
        port = int(sockets[0].getsockname()[1])
        wechatpay = _wechatpay(settings, stack, pay, emulator, port)
        sms = _sms(settings, emulator, port)
        app = make_app(settings, db, wechat=wechat, wechatpay=wechatpay, keys=keys, sms=sms)
        services: Any = app.settings["services"]
        await _first_admin(settings, services)
        await _start_background(services, settings, stack)
        # what start-up made lives as long as the process: the collector need not walk it
        # again (a full collection walked ~100k objects, a pause under load)
        gc.freeze()
        server = edge_server(app, settings.server)
        server.add_sockets(sockets)
        stack.push_async_callback(server.close_all_connections)
        stack.callback(server.stop)
        print(
            f"microcourt ready: api=http://{settings.server.host}:{port} "
            f"emulator={emulator.url if emulator else settings.wechat.api_base}",
            flush=True,
        )
        if ready:
            ready.set()
        await stop.wait()
        log.info("shutting down")


def _sms(settings: Settings, emulator: Emulator | SharedEmulator | None, port: int) -> SmsAdapter:
    """Tencent Cloud SMS, or (no secret id) the emulator, which posts its delivery receipts
    to our status callback as Tencent does (a worker's parent tells its emulator where)."""
    if settings.sms.emulated and emulator is not None and not isinstance(emulator, SharedEmulator):
        sms_receipts_to(emulator, port)
    return SmsAdapter.from_settings(settings.sms, emulator.url if emulator else None)


def sms_receipts_to(emulator: Emulator, port: int) -> None:
    emulator.sms.callback_url = f"http://127.0.0.1:{port}/api/v1/sms/status-callback"


async def _start_background(services: Any, settings: Settings, stack: AsyncExitStack) -> None:
    """Revocation polling, subscribe-message sends, the live feed, the review and fee deadline
    sweeps, payment expiry, the hearing reminders, the acceptance documents still owed and the
    work-order escalations; each is stopped (and its lease released) on shutdown."""
    services.auth.start_polling()
    stack.push_async_callback(services.auth.stop_polling)
    services.outbox.start()
    stack.push_async_callback(services.outbox.stop)
    services.feed.start()
    stack.push_async_callback(services.feed.stop)
    every = settings.cases.reminder_sweep_seconds
    deadlines = settings.review.deadline_sweep_seconds
    documents = settings.cases.documents_sweep_seconds
    stack.push_async_callback(services.acceptance_documents.stop)
    for name, job, seconds in (
        ("deadline-sweep", services.review.sweep_deadlines, deadlines),
        ("hearing-reminders", services.hearings.sweep_reminders, every),
        ("fee-deadlines", services.fees.sweep_overdue, deadlines),
        ("payment-expiry", services.payments.sweep_expired, every),
        ("refund-sweep", services.refunds.sweep_processing, every),  # refunds WeChat Pay holds
        # acceptance documents still owed after a crash (the worker serves the rest at once)
        ("acceptance-documents", services.acceptance_documents.sweep, documents),
    ):
        # held across rounds while this process runs them; another takes over when it stops
        lease = Lease(services.db, name, max(3 * seconds, 30.0), services.clock)
        periodic = Periodic(name, job, seconds, lease)
        periodic.start()
        stack.push_async_callback(periodic.stop)
    stack.push_async_callback(services.workorder_sweep.lease.release)
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
