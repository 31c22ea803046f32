"""Test fixtures: one real SecantusDB per session, a fresh database per test, the WeChat
emulator in-process on a free port, an injected clock, a second process's application, and
factories for users and staff. What tests build from these lives in tests/factories.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.web import Application

from miniapp_stubs.client import MiniProgram, StaffConsole
from miniapp_stubs.emulator import Emulator, PayOptions, start_emulator
from server.app import Services, make_app
from server.devstack import EmbeddedDatabase
from server.notify.sms import SmsAdapter
from server.platform.clock import FixedClock
from server.platform.config import Settings, load_settings
from server.platform.crypto import Passwords
from server.platform.db import Database, ensure_indexes
from server.platform.edge import edge_server
from server.platform.mongo import connect
from server.wechat.miniprogram import WeChatAdapter
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_config import PayCredentials, load_private, private_pem, public_pem
from tests.factories import (
    EMULATOR_SECRET,
    PAY_APIV3_KEY,
    PAY_MCHID,
    PAY_SERIAL,
    SELF_ID,
    STAFF_PASSWORD,
    START,
    TEST_KEYS,
    PayKeys,
    id_number,
    new_key,
    run_aside,
)

for name in [k for k in os.environ if k.startswith("MICROCOURT_")]:
    del os.environ[name]  # the developer's own environment must not leak into the tests


@pytest.fixture
def filer(
    litigant: Callable[..., Awaitable[MiniProgram]],
) -> Callable[[], Awaitable[MiniProgram]]:
    """Factory: 张三, signed in with the verified identity SELF_ID (the usual plaintiff)."""

    async def make() -> MiniProgram:
        mp = await litigant(identity=False)
        assert (await mp.verify_identity("张三", SELF_ID, "13800138000")).status == 200
        return mp

    return make


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real SecantusDB server for the whole session."""
    embedded = EmbeddedDatabase("secantusd-py", tmp_path_factory.mktemp("secantus"), 60)
    uri = run_aside(embedded.start())
    yield uri
    run_aside(embedded.stop())


@pytest.fixture(scope="session")
def staff_password_hash() -> str:
    return str(run_aside(Passwords().hash(STAFF_PASSWORD)))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(server={"data_dir": tmp_path})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def db(io_loop: IOLoop, mongo_uri: str) -> Iterator[Database]:
    """A database of its own for each test, dropped afterwards."""
    client = connect(mongo_uri)  # durable, as serve connects
    database = client[f"t_{uuid.uuid4().hex[:12]}"]
    io_loop.run_sync(lambda: ensure_indexes(database))
    yield database

    async def close() -> None:
        await client.drop_database(database.name)
        await client.close()

    io_loop.run_sync(close)


@pytest.fixture(scope="session")
def pay_keys() -> PayKeys:
    """The test merchant's and the emulated platform's keys, made once per session."""
    return PayKeys(private_pem(new_key()), private_pem(new_key()))


@pytest.fixture
def emulator(
    io_loop: IOLoop, settings: Settings, clock: FixedClock, pay_keys: PayKeys
) -> Iterator[Emulator]:
    """The WeChat + WeChat Pay emulator; the WeChat Pay side runs on the test clock and knows
    the test merchant (PAY_MCHID) with its key and APIv3 key."""
    options = PayOptions(
        clock=lambda: clock.now().timestamp(), platform_private_key_pem=pay_keys.platform
    )

    async def start() -> Emulator:
        return await start_emulator(settings.wechat.appid, EMULATOR_SECRET, pay=options)

    emu: Emulator = io_loop.run_sync(start)
    # face verifications carry the time they passed, which the server checks on its clock
    emu.state.face.clock = lambda: clock.now().timestamp()
    # the console's templates, each with the fixed keywords config maps (47003 otherwise)
    emu.state.register_templates(
        {
            t.template_id: {"keywords": list(t.fields), "long_term": t.long_term}
            for t in settings.notifications.templates.values()
        }
    )
    merchant = load_private(pay_keys.merchant)
    emu.pay.add_merchant(
        PAY_MCHID, settings.wechatpay.appid, public_pem(merchant), PAY_SERIAL, PAY_APIV3_KEY
    )
    yield emu
    io_loop.run_sync(emu.stop)


@pytest.fixture
def pay_credentials(settings: Settings, emulator: Emulator, pay_keys: PayKeys) -> PayCredentials:
    return PayCredentials(
        mchid=PAY_MCHID,
        appid=settings.wechatpay.appid,
        serial_no=PAY_SERIAL,
        private_key_pem=pay_keys.merchant,
        apiv3_key=PAY_APIV3_KEY,
        platform_public_key_pem=emulator.platform_public_key_pem,
        platform_public_key_id=emulator.platform_public_key_id,
    )


@pytest.fixture
def wechatpay(
    io_loop: IOLoop,
    settings: Settings,
    emulator: Emulator,
    pay_credentials: PayCredentials,
    clock: FixedClock,
    base_url: str,
) -> Iterator[WeChatPayAdapter]:
    """The WeChat Pay adapter against the emulator, on the test clock; callbacks are meant for
    the API under test (notify_base_url is its address)."""
    adapter = WeChatPayAdapter.from_settings(
        settings,
        pay_credentials,
        clock,
        api_base=emulator.url,
        notify_base_url=base_url.replace("localhost", "127.0.0.1"),
    )
    yield adapter
    io_loop.run_sync(adapter.aclose)


@pytest.fixture
def wechat(io_loop: IOLoop, settings: Settings, emulator: Emulator) -> Iterator[WeChatAdapter]:
    adapter = WeChatAdapter(settings.wechat.appid, EMULATOR_SECRET, emulator.url)
    yield adapter
    io_loop.run_sync(adapter.aclose)


@pytest.fixture
def app(
    io_loop: IOLoop,
    settings: Settings,
    db: Database,
    clock: FixedClock,
    wechat: WeChatAdapter,
    wechatpay: WeChatPayAdapter,
    emulator: Emulator,
) -> Iterator[Application]:
    sms = SmsAdapter.from_settings(settings.sms, emulator.url)  # 1+N: the SMS emulator
    made = make_app(
        settings, db, clock=clock, wechat=wechat, wechatpay=wechatpay, keys=TEST_KEYS, sms=sms
    )
    yield made
    # the acceptance documents' worker, if a test left it serving
    io_loop.run_sync(made.settings["services"].acceptance_documents.stop)


@pytest.fixture
def other_app(
    io_loop: IOLoop, settings: Settings, db: Database, clock: FixedClock, emulator: Emulator
) -> Iterator[Application]:
    """A second server process's application on the same database (its own adapter and
    workers)."""
    wechat = WeChatAdapter(settings.wechat.appid, EMULATOR_SECRET, emulator.url)
    made = make_app(settings, db, clock=clock, wechat=wechat, keys=TEST_KEYS)
    yield made
    io_loop.run_sync(made.settings["services"].acceptance_documents.stop)
    io_loop.run_sync(wechat.aclose)


@pytest.fixture
def services(app: Application) -> Services:
    found: Services = app.settings["services"]
    return found


@pytest.fixture
def http_server(
    request: pytest.FixtureRequest, io_loop: Any, _unused_port: Any, app: Application
) -> Iterator[HTTPServer]:
    """pytest-tornado's server, with the edge that ``serve`` puts in front of the app."""
    server = edge_server(app, app.settings["services"].settings.server)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=request.config.option.async_test_timeout)


@pytest.fixture
def api_url(http_server: object, base_url: str) -> str:
    """The API's URL, with the server listening (pytest-tornado's http_server)."""
    return base_url.replace("localhost", "127.0.0.1")


@pytest.fixture
def phone(api_url: str, emulator: Emulator) -> Callable[[], MiniProgram]:
    """A fresh mini-program on a fresh phone (not signed in)."""
    return lambda: MiniProgram(api_url, emulator.url)


@pytest.fixture
def litigant(phone: Callable[[], MiniProgram]) -> Callable[..., Awaitable[MiniProgram]]:
    """Factory: a signed-in litigant, with a verified identity unless told otherwise."""
    counter = iter(range(100, 999))

    async def make(identity: bool = True, name: str = "张三") -> MiniProgram:
        mp = phone()
        res = await mp.login()
        assert res.status == 200, res.body
        if identity:
            res = await mp.verify_identity(name, id_number(seq=str(next(counter))), "13800138000")
            assert res.status == 200, res.body
        return mp

    return make


@pytest.fixture
def staff(
    api_url: str, db: Database, clock: FixedClock, staff_password_hash: str
) -> Callable[..., Awaitable[StaffConsole]]:
    """Factory: a signed-in staff member (clerk, judge or admin) of a court."""
    counter = iter(range(1, 10_000))

    async def make(
        role: str = "clerk",
        court_id: str | None = "bj-chaoyang",
        supervisor: bool = False,
        division_head: bool = False,
        service_desk: bool = False,
    ) -> StaffConsole:
        username = f"{role}{next(counter)}"
        await db["users"].insert_one(
            {
                "role": role,
                "username": username,
                "name": "李四",
                "court_id": court_id,
                "supervisor": supervisor,
                "division_head": division_head,
                "service_desk": service_desk,
                "active": True,
                "password_hash": staff_password_hash,
                "created_at": clock.now(),
            }
        )
        console = StaffConsole(api_url)
        res = await console.login(username, STAFF_PASSWORD)
        assert res.status == 200, res.body
        return console

    return make
